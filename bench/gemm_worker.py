"""Times GEMMs at one thread count in a process of its own: `python -m bench.gemm_worker PLAN ROWS`.

`bench.matmul.run_matmuls` writes PLAN (JSON: threads, rounds, per-call minimums,
kernels, shapes, and the .pte of each XNNPACK shape) and starts one worker per thread
count, because ExecuTorch's thread pool is sized once per process and OpenBLAS reads its
environment once, at import. The worker times every kernel x shape, interleaved in
rounds, and writes one row per timed call to ROWS (JSON).
"""

from __future__ import annotations

import json
import sys
import time

import torch
from threadpoolctl import threadpool_limits

from vitdeploy.runtimes import RUNTIMES

SETTLE_SECONDS = 0.3


def program_key(dtype: str, m: int, k: int, n: int) -> str:
    """How PLAN names the .pte of one XNNPACK GEMM."""
    return f"{dtype}:{m}x{k}x{n}"


def _call(library: str, dtype: str, m: int, k: int, n: int, programs: dict, threads: int):
    generator = torch.Generator().manual_seed(0)
    if library == "xnnpack":
        method = RUNTIMES["executorch"].open(programs[program_key(dtype, m, k, n)], threads).method
        a = torch.randn(m, k, generator=generator)
        return lambda: method.execute([a])
    if dtype == "int8":
        a = torch.randint(-128, 128, (m, k), dtype=torch.int8, generator=generator)
        b = torch.randint(-128, 128, (k, n), dtype=torch.int8, generator=generator)
        return lambda: torch._int_mm(a, b)
    a = torch.randn(m, k, generator=generator)
    b = torch.randn(k, n, generator=generator)
    if library == "numpy":
        a_np, b_np = a.numpy(), b.numpy()
        return lambda: a_np @ b_np
    return lambda: torch.mm(a, b)


def _time_calls(call, min_calls: int, min_seconds: float) -> list[float]:
    for _ in range(3):
        call()
    samples = []
    started = time.perf_counter()
    while len(samples) < min_calls or time.perf_counter() - started < min_seconds:
        start = time.perf_counter_ns()
        call()
        samples.append((time.perf_counter_ns() - start) / 1e6)
    return samples


def run(plan: dict) -> list[dict]:
    """Every kernel x shape of `plan` timed in `plan["rounds"]` interleaved rounds."""
    threads = plan["threads"]
    torch.set_num_threads(threads)
    rows = []
    with threadpool_limits(limits=threads):
        calls = {(library, dtype, *shape): _call(library, dtype, *shape[1:], plan["programs"], threads)
                 for library, dtype in plan["kernels"] for shape in plan["shapes"]}
        for round_number in range(plan["rounds"]):
            for library, dtype in plan["kernels"]:
                # The previous library's threads spin-wait for a while after their last
                # call (OpenBLAS, OpenMP); let them sleep before timing the next one.
                time.sleep(SETTLE_SECONDS)
                for name, m, k, n in plan["shapes"]:
                    call = calls[(library, dtype, name, m, k, n)]
                    for sample in _time_calls(call, plan["min_calls"], plan["min_seconds"]):
                        rows.append({"library": library, "dtype": dtype, "shape": name, "m": m, "k": k, "n": n,
                                     "threads": threads, "round": round_number, "ms": sample,
                                     "gflops": 2 * m * k * n / (sample / 1e3) / 1e9})
    return rows


def main(argv: list[str]) -> int:
    plan_path, rows_path = argv
    with open(plan_path) as handle:
        plan = json.load(handle)
    rows = run(plan)
    with open(rows_path, "w") as handle:
        json.dump(rows, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
