"""Sweep configurations are validated with errors that name the file, key and fix."""

from pathlib import Path

import pytest

from deploy.commands.demo import DEMO_CONFIG
from deploy.config import ConfigError, load_sweep_config
from deploy.sweep import device_budgets_ms
from lowering.models import resolve_spec

MODEL = """
[[model]]
label = "a"
name = "vit_tiny"
overrides = { depth = 2, img_size = 32, num_classes = 10 }
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sweep.toml"
    path.write_text(text)
    return path


def test_shipped_demo_config_is_valid():
    config = load_sweep_config(DEMO_CONFIG)
    assert [m.label for m in config.models] == ["vit-12x1", "rep-6x2", "rep-4x3", "rep-3x4"]
    assert config.devices == ("host", "qemu-arm64")
    assert config.baseline == "vit-12x1"
    assert config.device_measurement["qemu-arm64"]["runs"] < config.measurement["runs"]


def test_minimal_config_takes_defaults(tmp_path):
    config = load_sweep_config(_write(tmp_path, MODEL))
    assert config.backends == ("executorch", "onnx") and config.quant == ("fp32",)
    assert config.devices == ("host",) and config.dataset == "digits"


@pytest.mark.parametrize(
    "text, message",
    [
        ("colour = 1\n" + MODEL, "unknown key.*colour"),
        ("", "no \\[\\[model\\]\\] entries"),
        (MODEL + MODEL, "labels must be unique; repeated: a"),
        (MODEL + '[lowering]\nbackends = ["tflite"]\n', "unknown backend.*tflite.*valid: executorch"),
        (MODEL + '[lowering]\nbackends = ["onnx"]\nquant = ["w8a8"]\n', "quantization mode.*w8a8"),
        (MODEL + '[bench]\ndevices = ["pixel-99"]\n', "device 'pixel-99'"),
        (MODEL + '[bench]\nbaseline = "b"\n', "baseline 'b' is not a model label"),
        (MODEL + '[bench.device.host]\nrunz = 3\n', "bench.device.host.*unknown key.*runz"),
        (MODEL + '[training]\nepochz = 3\n', "training.*unknown key.*epochz"),
        (MODEL.replace("vit_tiny", "vit_tinny"), "did you mean vit_tiny"),
        (MODEL.replace('name = "vit_tiny"', 'name = "vit_tiny"\ntrain = true') + '[data]\ndataset = "imgs"\n',
         "trains on the embedded dataset"),
    ],
)
def test_bad_configs_are_named(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_sweep_config(_write(tmp_path, text))


def test_invalid_toml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_sweep_config(_write(tmp_path, "[[model]\n"))
    with pytest.raises(ConfigError, match="not found"):
        load_sweep_config(tmp_path / "absent.toml")


def test_checkpoint_paths_are_taken_from_the_config_folder(tmp_path):
    text = MODEL.replace("overrides", 'checkpoint = "weights/a.pth"\noverrides')
    config = load_sweep_config(_write(tmp_path, text))
    assert config.models[0].checkpoint == tmp_path / "weights" / "a.pth"


def test_int8_ranges_must_be_known(tmp_path):
    assert load_sweep_config(_write(tmp_path, MODEL + '[lowering]\nint8_ranges = "repq"\n')).int8_ranges == "repq"
    with pytest.raises(ConfigError, match="int8_ranges must be one of runtime, repq"):
        load_sweep_config(_write(tmp_path, MODEL + '[lowering]\nint8_ranges = "magic"\n'))


def test_latency_budgets_for_every_device_and_one(tmp_path):
    text = MODEL + '[bench]\ndevices = ["host", "qemu-arm64"]\nbudget_ms = 25\n[bench.device.qemu-arm64]\nruns = 4\nbudget_ms = 2500.0\n'
    config = load_sweep_config(_write(tmp_path, text))
    assert config.budget_ms == 25.0 and config.device_budget_ms == {"qemu-arm64": 2500.0}
    assert config.device_measurement == {"qemu-arm64": {"runs": 4}}  # the budget is not a measurement setting


@pytest.mark.parametrize("value", ["0", "-1", '"fast"', "true"])
def test_a_budget_must_be_a_positive_number_of_milliseconds(tmp_path, value):
    with pytest.raises(ConfigError, match=r"\[bench\]: budget_ms must be a positive number"):
        load_sweep_config(_write(tmp_path, MODEL + f"[bench]\nbudget_ms = {value}\n"))


def test_a_device_budget_comes_from_the_sweep_for_it_then_for_all_then_from_its_profile(tmp_path):
    (tmp_path / "phone.toml").write_text('name = "phone"\nkind = "android"\nbudget_ms = 40\n')
    devices = f'[bench]\ndevices = ["host", "qemu-arm64", "{tmp_path / "phone.toml"}"]\n'
    assert device_budgets_ms(load_sweep_config(_write(tmp_path, MODEL + devices))) == {"phone": 40.0}
    every = MODEL + devices + "budget_ms = 25\n[bench.device.qemu-arm64]\nbudget_ms = 2500\n"
    assert device_budgets_ms(load_sweep_config(_write(tmp_path, every))) == {
        "host": 25.0, "qemu-arm64": 2500.0, "phone": 25.0}


def test_shipped_variants_config_names_every_research_variant():
    config = load_sweep_config(DEMO_CONFIG.with_name("variants.toml"))
    names = {model.name for model in config.models}
    assert names >= {"deit_tiny_relu_attn", "deit_tiny_scaling_attn", "deit_small_gqa", "deit_tiny_gated_class_attn",
                     "deit_tiny_dcal", "vit_autofocus"}
    assert all(model.train for model in config.models) and config.devices == ("host", "qemu-arm64")
    assert device_budgets_ms(config) == {"host": 25.0}
    for model in config.models:
        resolve_spec(model.name, **model.overrides)  # every override is one the registry takes
