"""A sweep reports a failed cell and finishes the rest."""

from dataclasses import replace

import pytest

from deploy.config import load_sweep_config
from deploy.sweep import run_sweep

CONFIG = """
name = "two"
[[model]]
label = "good"
name = "vit_tiny"
overrides = { depth = 1, img_size = 32, num_classes = 10 }

[[model]]
label = "broken"
name = "vit_tiny"
checkpoint = "broken.pth"

[lowering]
backends = ["onnx"]

[bench]
devices = ["host"]
threads = [1]
warmup = 1
runs = 4
min_seconds = 0.0
rounds = 2

[data]
eval_limit = 32
"""


@pytest.mark.slow
def test_a_failed_cell_is_reported_and_the_rest_goes_on(tmp_path):
    (tmp_path / "broken.pth").write_bytes(b"not a checkpoint")
    path = tmp_path / "sweep.toml"
    path.write_text(CONFIG)
    config = replace(load_sweep_config(path), results=tmp_path / "results")
    outcome = run_sweep(config, log=lambda line: None)
    (failure,) = outcome.failures
    assert (failure.stage, failure.what) == ("model", "broken") and "corrupt or truncated" in failure.error
    assert [p.parent.name for p in outcome.artifacts] == ["good"]
    assert "## host, 1 thread" in outcome.report_markdown["host"]
    assert "| good |" in outcome.report_markdown["host"]


@pytest.mark.slow
def test_a_failing_target_is_isolated_from_the_others(tmp_path, monkeypatch):
    from vitdeploy.errors import VitdeployError
    from lowering.export import BACKENDS
    from vitdeploy.manifest import read_manifest

    build = BACKENDS["onnx"].build

    def refuse_fp16(job):
        if job.target.quant == "fp16":
            raise VitdeployError("fp16 refused for this test")
        return build(job)

    monkeypatch.setitem(BACKENDS, "onnx", replace(BACKENDS["onnx"], build=refuse_fp16))
    path = tmp_path / "sweep.toml"
    path.write_text(CONFIG.replace('backends = ["onnx"]', 'backends = ["onnx"]\nquant = ["fp32", "fp16"]'))
    config = load_sweep_config(path)
    config = replace(config, results=tmp_path / "results", models=config.models[:1], devices=())
    outcome = run_sweep(config, log=lambda line: None)
    assert [(f.stage, f.what) for f in outcome.failures if f.stage == "lower"] == [("lower", "good onnx/fp16")]
    assert [read_manifest(p).quant for p in outcome.artifacts] == ["fp32"]
