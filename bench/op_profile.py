"""Where the time goes per operator type: ONNX Runtime's own profiler over an artifact,
in this process (used to explain the reparameterization ratios on the host).

    onnx_op_profile(path, threads, runs) -> [{"op_type", "calls", "total_ms", "share"}]
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np


def onnx_op_profile(path: Path, threads: int = 1, runs: int = 20) -> list[dict]:
    """Per-op-type time over `runs` inferences after 3 warm-ups, largest first."""
    import onnxruntime as ort

    options = ort.SessionOptions()
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
    overall = sum(total for _, total in totals.values()) or 1.0
    rows = [{"op_type": op, "calls_per_run": calls / runs, "ms_per_run": total / runs, "share": total / overall}
            for op, (calls, total) in totals.items()]
    return sorted(rows, key=lambda row: -row["ms_per_run"])
