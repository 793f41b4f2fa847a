"""Where the time goes per operator type, from each runtime's own profiler, in this
process (used to explain the ratios on the host):

    onnx_op_profile(path, threads, runs) -> [{"op_type", "calls_per_run", "ms_per_run", "share"}]
    executorch_op_profile(path, threads, runs) -> the same, from ETDump
    executorch_op_profiles_at({label: path}, threads, runs) -> {label: rows}, in a worker process
    op_profiles({label: Artifact}, runs) -> [{"artifact", "op_type", ...}] for either runtime
    op_profile_table(rows, top) -> Markdown: op types down, artifacts across

ExecuTorch's XNNPACK delegate reports each of its operators to ETDump by XNNPACK's name
("Fully Connected (NC, F32) GEMM #12"); the numbered instances are summed per name. An
operator run by the portable kernels appears as its kernel ("native_call_expand_copy.out");
the OPERATOR_CALL event around it is left out, so that no time is counted twice.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
# ETDump events that only enclose others: the method, a delegate call, a portable kernel call.
WRAPPER_EVENTS = ("Method::execute", "DELEGATE_CALL", "OPERATOR_CALL")


def onnx_op_profile(path: Path, threads: int | None = 1, runs: int = 20) -> list[dict]:
    """Per-op-type time over `runs` inferences after 3 warm-ups, largest first (`threads`
    None: ONNX Runtime's default)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.enable_profiling = True
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    meta = session.get_inputs()[0]
    feed = {meta.name: np.random.default_rng(0).standard_normal([int(d) for d in meta.shape]).astype(np.float32)}
    for _ in range(3):
        session.run(None, feed)
    profile_path = Path(session.end_profiling())
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    for _ in range(runs):
        session.run(None, feed)
    profile_path.unlink(missing_ok=True)
    profile_path = Path(session.end_profiling())
    events = json.loads(profile_path.read_text())
    profile_path.unlink(missing_ok=True)
    totals: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            op_type = event.get("args", {}).get("op_name", "?")
            totals[op_type][0] += 1
            totals[op_type][1] += event["dur"] / 1e3
    return _per_run(totals, runs)


def executorch_op_profile(path: Path, threads: int | None = 1, runs: int = 20) -> list[dict]:
    """Per-op-type time over `runs` inferences after 3 warm-ups, largest first, from an
    ETDump of the program (the delegate call and the method itself left out). ExecuTorch's
    thread pool is sized once per process (`lowering.runtime.prepare_runtime`):
    `threads` must match it, or be None to take it as it is."""
    import torch
    from executorch.devtools import Inspector
    from executorch.extension.pybindings import portable_lib

    from lowering.runtime import prepare_runtime

    prepare_runtime("executorch", threads)
    program = portable_lib._load_for_executorch(str(path), enable_etdump=True, debug_buffer_size=0)
    meta = program.method_meta("forward").input_tensor_meta(0)
    images = torch.from_numpy(np.random.default_rng(0).standard_normal(list(meta.sizes())).astype(np.float32))
    for _ in range(3 + runs):
        program.forward((images,))
    with tempfile.TemporaryDirectory() as folder:
        dump = Path(folder) / "profile.etdp"
        program.write_etdump_result_to_file(str(dump))
        events = Inspector(etdump_path=str(dump)).to_dataframe()
    totals: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    for block, name, times in zip(events["event_block_name"], events["event_name"], events["raw"]):
        if block != "Execute" or name in WRAPPER_EVENTS:
            continue
        op_type = re.sub(r" #\d+$", "", name)
        totals[op_type][0] += runs
        totals[op_type][1] += float(np.sum(times[3:]))
    return _per_run(totals, runs)


def executorch_op_profiles_at(programs: dict[str, Path], threads: int, runs: int = 20) -> dict[str, list[dict]]:
    """`executorch_op_profile` of each .pte ({label: path}) at `threads`, in one worker
    process (`bench.op_profile_worker`), whatever this process's pool was sized to."""
    with tempfile.TemporaryDirectory(prefix="vitdeploy-op-profile-") as scratch:
        plan, out = Path(scratch) / "plan.json", Path(scratch) / "profiles.json"
        plan.write_text(json.dumps({"threads": threads, "runs": runs,
                                    "programs": {label: str(path) for label, path in programs.items()}}))
        done = subprocess.run([sys.executable, "-m", "bench.op_profile_worker", str(plan), str(out)], cwd=REPO,
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"op profile worker at {threads} thread(s) failed:\n{done.stderr[-3000:]}")
        return json.loads(out.read_text())


def _per_run(totals: dict[str, list[float]], runs: int) -> list[dict]:
    overall = sum(total for _, total in totals.values()) or 1.0
    rows = [{"op_type": op, "calls_per_run": calls / runs, "ms_per_run": total / runs, "share": total / overall}
            for op, (calls, total) in totals.items()]
    return sorted(rows, key=lambda row: -row["ms_per_run"])


def op_profiles(artifacts: dict, runs: int, threads: int | None = 1) -> list[dict]:
    """Per-op-type profiles of lowered artifacts ({label: lowering.export.Artifact}),
    each by its own runtime's profiler, labelled with "artifact"."""
    profilers = {"executorch": executorch_op_profile, "onnx": onnx_op_profile}
    return [{"artifact": label, **row}
            for label, artifact in artifacts.items()
            for row in profilers[artifact.target.backend](artifact.path, threads=threads, runs=runs)]


def op_profile_table(rows: list[dict], top: int = 6) -> str:
    """Milliseconds per inference (calls) of the `top` op types of each artifact, one
    column per artifact, and each artifact's total."""
    from bench.tables import markdown_table

    labels = list(dict.fromkeys(row["artifact"] for row in rows))
    cells = {(row["artifact"], row["op_type"]): row for row in rows}
    kinds: list[str] = []
    for label in labels:
        kinds += [row["op_type"] for row in rows if row["artifact"] == label][:top]
    kinds = list(dict.fromkeys(kinds))

    def cell(label: str, kind: str) -> str:
        row = cells.get((label, kind))
        return f"{row['ms_per_run']:.2f} ({row['calls_per_run']:.0f})" if row else "-"

    table = [{"op type": kind, **{label: cell(label, kind) for label in labels}} for kind in kinds]
    table.append({"op type": "all ops", **{label: f"{sum(r['ms_per_run'] for r in rows if r['artifact'] == label):.2f}"
                                           for label in labels}})
    return markdown_table(table, [("op type", "op type")] + [(label, label) for label in labels])
