"""A sweep reports a failed cell and finishes the rest."""

from dataclasses import replace

import pytest

from deploy.config import load_sweep_config
from deploy.sweep import run_sweep

SETTINGS = """[lowering]
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

GOOD_MODEL = """
name = "two"
[[model]]
label = "good"
name = "vit_tiny"
overrides = { depth = 1, img_size = 32, num_classes = 10 }
"""

CONFIG = GOOD_MODEL + """
[[model]]
label = "broken"
name = "vit_tiny"
checkpoint = "broken.pth"
""" + SETTINGS


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


SOURCES_CONFIG = """
name = "sources"
[[model]]
label = "registry"
name = "vit_tiny"
overrides = { depth = 1, img_size = 16, num_classes = 5, patch_size = 8 }

[[model]]
label = "program"
name = "small.pt2"

[[model]]
label = "factory"
name = "tests.lowering.sources.factories:tiny_classifier"
""" + SETTINGS


@pytest.mark.slow
def test_programs_and_factories_go_through_the_sweep_beside_registry_models(tmp_path):
    import torch

    from tests.lowering.sources.factories import tiny_classifier

    exported = tiny_classifier()
    with torch.no_grad():
        exported.head.bias += 1  # other weights than the factory's, so a different artifact
    program = torch.export.export(exported, (torch.zeros(1, 3, 16, 16),))
    torch.export.save(program, str(tmp_path / "small.pt2"))
    path = tmp_path / "sweep.toml"
    path.write_text(SOURCES_CONFIG)
    config = replace(load_sweep_config(path), results=tmp_path / "results")
    assert config.models[1].name == str(tmp_path / "small.pt2")
    outcome = run_sweep(config, log=lambda line: None)
    assert outcome.failures == ()
    assert sorted(p.parent.name for p in outcome.artifacts) == ["factory", "program", "registry"]
    table = outcome.report_markdown["host"]
    params = sum(p.numel() for p in tiny_classifier().parameters())
    rows = {line.split(" | ")[0][2:]: line for line in table.splitlines() if line.startswith("| ")}
    assert "| 16 |" in rows["registry"]
    for label in ("program", "factory"):
        assert f"| 16 | {params} |" in rows[label]


def test_a_sweep_names_a_missing_program_or_registry_only_settings_on_other_sources(tmp_path):
    from deploy.config import ConfigError

    path = tmp_path / "sweep.toml"
    path.write_text(SOURCES_CONFIG)
    with pytest.raises(ConfigError, match=r"model file .*small.pt2 does not exist"):
        load_sweep_config(path)
    (tmp_path / "small.pt2").write_bytes(b"")
    path.write_text(SOURCES_CONFIG.replace('name = "small.pt2"', 'name = "small.pt2"\ntrain = true'))
    with pytest.raises(ConfigError, match=r"apply to registry models; small.pt2 is not one \(exported-program\)"):
        load_sweep_config(path)


@pytest.mark.slow
def test_artifacts_of_a_runtime_the_device_lacks_are_named_in_one_note(tmp_path, monkeypatch):
    import bench_runner.devices as devices

    opened = devices.open_device

    def without_executorch(profile):
        device = opened(profile)
        device.runtimes = frozenset({"onnxruntime"})
        return device

    monkeypatch.setattr(devices, "open_device", without_executorch)
    path = tmp_path / "sweep.toml"
    path.write_text(GOOD_MODEL + SETTINGS.replace('backends = ["onnx"]', 'backends = ["executorch", "onnx"]\nquant = ["fp32", "dynamic-int8"]'))
    outcome = run_sweep(replace(load_sweep_config(path), results=tmp_path / "results"), log=lambda line: None)
    (note,) = [note for note in outcome.notes if "not installed" in note]
    assert note.startswith("host: executorch is not installed there; not measured: good/") and "(2 artifacts)" in note
    assert "| good |" in outcome.report_markdown["host"]
