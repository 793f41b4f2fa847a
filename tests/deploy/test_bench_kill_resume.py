"""A `vitdeploy bench` killed halfway and started again with --resume finishes the work
without repeating or losing records."""

import signal
import subprocess
import sys
import time

from bench_runner.store import ResultsStore
from tests.bench_runner.tiny_artifacts import write_tiny_onnx
from tests.manifests import write_test_manifest

REPETITIONS, THREADS = 3, (1, 2)


def _bench(artifact, results):
    return [
        sys.executable, "-m", "deploy.cli", "bench", str(artifact), "--results", str(results), "--resume",
        "--threads", ",".join(map(str, THREADS)), "--repetitions", str(REPETITIONS),
        "--warmup", "1", "--runs", "20", "--rounds", "2", "--min-seconds", "0.3",
    ]


def test_killed_bench_resumes_without_repeating_or_losing_records(tmp_path):
    artifact = write_tiny_onnx(tmp_path / "tiny.onnx")
    write_test_manifest(artifact, model={"name": "tiny_mlp"}, input_shape=(1, 16))
    results = tmp_path / "store"
    process = subprocess.Popen(_bench(artifact, results), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list(results.glob("records-*")) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    measured_before = {r.key for r in ResultsStore(results).load()}
    assert 0 < len(measured_before) < REPETITIONS * len(THREADS)

    subprocess.run(_bench(artifact, results), check=True, capture_output=True)
    keys = [r.key for r in ResultsStore(results).load()]
    assert len(keys) == len(set(keys)) == REPETITIONS * len(THREADS)
    assert measured_before <= set(keys)
