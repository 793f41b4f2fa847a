"""Section 5: what `vitdeploy demo` costs a user, in wall time. Three runs in a row in
child processes sharing one new, empty vitdeploy cache (VITDEPLOY_CACHE): cold (nothing
cached: training, lowering, verification, measuring), then the same command again (the
README's command run twice: everything is found, nothing is measured again), then a new
results folder over the warm cache (trained weights and artifacts reused, measured anew)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.measure import Budget, Section
from bench.tables import markdown_table

RUNS = (
    ("cold", "empty", "results"),
    ("again", "warm", "results"),
    ("new results folder", "warm", "results-2"),
)


def _timed_demo(arguments: list[str], environment: dict[str, str], log: Path) -> float:
    started = time.perf_counter()
    with log.open("w") as output:
        finished = subprocess.run([sys.executable, "-m", "deploy.cli", "demo", *arguments], env=environment,
                                  stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    if finished.returncode != 0:
        tail = "".join(log.read_text(errors="replace").splitlines(keepends=True)[-20:])
        raise RuntimeError(f"vitdeploy demo {' '.join(arguments)} exited with {finished.returncode}:\n{tail}")
    return seconds


def run(budget: Budget) -> Section:
    rows = []
    with tempfile.TemporaryDirectory(prefix="vitdeploy-demo-time-") as folder:
        root = Path(folder)
        environment = {**os.environ, "VITDEPLOY_CACHE": str(root / "cache")}
        for name, cache, results in RUNS:
            arguments = ["--results", str(root / results)] + (["--quick"] if budget.quick else [])
            seconds = _timed_demo(arguments, environment, root / f"{results}-{len(rows)}.log")
            rows.append({"run": name, "cache": cache, "results_folder": results, "quick": budget.quick,
                         "wall_seconds": seconds})
    markdown = ("`vitdeploy demo`" + (" --quick" if budget.quick else "") + " three times in a row over one new, "
                "empty cache, each in its own process (wall time includes starting Python and importing torch):\n\n"
                + markdown_table(rows, (("run", "run"), ("cache", "cache"), ("results folder", "results_folder"),
                                        ("wall s", "wall_seconds"))))
    return Section("demo_time", markdown, {"demo_time": rows})
