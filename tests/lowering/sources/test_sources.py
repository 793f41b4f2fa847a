import pytest
import torch

from lowering.export import LoweringSpec, Target, lower_model
from lowering.models.checkpoint import CheckpointError
from lowering.models.spec import Preprocessing
from lowering.sources import ModelSourceError, open_model, source_kind_of
from vitdeploy.manifest import artifact_sha256

FACTORY = "tests.lowering.sources.factories:tiny_classifier"


class TwoInputs(torch.nn.Module):
    def forward(self, x, y):
        return x + y


def test_each_name_is_told_apart_without_reading_it(tmp_path):
    assert source_kind_of("deit_tiny") == "registry"
    assert source_kind_of("models/tiny.pt2") == "exported-program"
    assert source_kind_of(str(tmp_path)) == "huggingface"
    assert source_kind_of("pkg.mod:build") == "factory" and source_kind_of("timm:tiny_vit_5m_224") == "factory"


def test_a_registry_model_comes_in_with_its_spec_and_preprocessing():
    model = open_model("vit_tiny", overrides={"depth": 1, "num_classes": 10}, img_size=32)
    assert (model.source_kind, model.label, model.input_shape) == ("registry", "vit_tiny", (1, 3, 32, 32))
    assert model.spec.depth == 1 and model.preprocessing == model.spec.preprocessing
    assert model.source == "random:seed=0" and model.image_format.img_size == 32


def test_an_exported_program_comes_in_as_saved(tmp_path):
    module = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 4, stride=4), torch.nn.Flatten(), torch.nn.Linear(16, 3)).eval()
    path = tmp_path / "small.pt2"
    torch.export.save(torch.export.export(module, (torch.zeros(1, 3, 8, 8),)), str(path))
    model = open_model(str(path), mean=(0.1, 0.2, 0.3))
    assert (model.source_kind, model.label, model.input_shape) == ("exported-program", "small", (1, 3, 8, 8))
    assert model.source_sha256 == artifact_sha256(path) and model.program is not None
    assert model.preprocessing.mean == (0.1, 0.2, 0.3) and model.preprocessing.std == Preprocessing().std
    x = torch.randn(1, 3, 8, 8)
    assert torch.equal(model.model(x), module(x))
    with pytest.raises(ModelSourceError, match=r"exported for input shape \(1, 3, 8, 8\), not \(1, 3, 16, 16\)"):
        open_model(str(path), input_shape=(1, 3, 16, 16))
    with pytest.raises(ModelSourceError, match="drop --checkpoint"):
        open_model(str(path), checkpoint=tmp_path / "w.pth")


def test_a_program_with_dynamic_shapes_needs_an_input_shape(tmp_path):
    module = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 2)).eval()
    batch = torch.export.Dim("batch", min=1, max=8)
    program = torch.export.export(module, (torch.zeros(2, 3, 2, 2),), dynamic_shapes=({0: batch},))
    path = tmp_path / "dynamic.pt2"
    torch.export.save(program, str(path))
    with pytest.raises(ModelSourceError, match=r"dynamic input dimension\(s\) 0 .*--input-shape 1,3,224,224"):
        open_model(str(path))
    model = open_model(str(path), input_shape=(1, 3, 2, 2))
    assert model.input_shape == (1, 3, 2, 2)
    x = torch.randn(1, 3, 2, 2)
    assert torch.equal(model.model(x), module(x))


def test_broken_foreign_and_multi_input_programs_are_clear_errors(tmp_path):
    with pytest.raises(ModelSourceError, match="not found"):
        open_model(str(tmp_path / "absent.pt2"))
    truncated = tmp_path / "truncated.pt2"
    module = torch.nn.Linear(4, 2).eval()
    torch.export.save(torch.export.export(module, (torch.zeros(1, 4),)), str(truncated))
    truncated.write_bytes(truncated.read_bytes()[:300])
    with pytest.raises(ModelSourceError, match="truncated, not made by torch.export.save, or saved by another torch"):
        open_model(str(truncated))
    two = tmp_path / "two.pt2"
    torch.export.save(torch.export.export(TwoInputs(), (torch.zeros(1, 3), torch.zeros(1, 3))), str(two))
    with pytest.raises(ModelSourceError, match=r"takes 2 inputs \(x \(1, 3\), y \(1, 3\)\).*only the image"):
        open_model(str(two))


def test_a_factory_brings_its_pretrained_cfg_and_lowers_like_any_model(artifact_cache):
    model = open_model(FACTORY)
    assert (model.source_kind, model.label, model.input_shape) == ("factory", "tiny_classifier", (1, 3, 16, 16))
    assert model.preprocessing == Preprocessing((0.4, 0.5, 0.6), (0.2, 0.25, 0.3), 1.0, "bilinear")
    assert model.source_sha256 is not None and model.spec is None
    artifacts = lower_model(model, LoweringSpec(targets=(Target("onnx", "fp32"), Target("executorch", "fp32"))),
                            cache=artifact_cache)
    for artifact in artifacts:
        manifest = artifact.manifest
        assert manifest.passed and manifest.verification["max_abs_error"] < 1e-5
        assert (manifest.model.name, manifest.model.source_kind, manifest.output_shape) == (
            "tiny_classifier", "factory", (1, 5))
        assert manifest.model.params == sum(p.numel() for p in model.model.parameters())
        assert manifest.model.macs > 0 and manifest.model.preprocessing["mean"] == [0.4, 0.5, 0.6]
    assert artifacts[1].manifest.delegation["num_delegates"] >= 1


def test_a_factory_checkpoint_loads_strictly(tmp_path):
    path = tmp_path / "weights.pth"
    state = open_model(FACTORY).model.state_dict()
    torch.save({k: v + 1 for k, v in state.items()}, path)
    loaded = open_model(FACTORY, checkpoint=path)
    assert torch.equal(loaded.model.head.bias, state["head.bias"] + 1)
    assert loaded.source_sha256 != open_model(FACTORY).source_sha256
    torch.save({k: v for k, v in state.items() if not k.startswith("head.")}, path)
    with pytest.raises(CheckpointError, match="head.weight"):
        open_model(FACTORY, checkpoint=path)


@pytest.mark.parametrize("name, message", [
    ("tests.lowering.sources.no_such_module:build", "cannot import 'tests.lowering.sources.no_such_module'"),
    ("tests.lowering.sources.factories:absent", "has no attribute 'absent'"),
    ("tests.lowering.sources.factories:raises", "raised RuntimeError: no weights for you"),
    ("tests.lowering.sources.factories:not_a_module", "returned int, not a torch.nn.Module"),
    ("tests.lowering.sources.factories:without_input_size", r"does not say its input size.*--input-shape"),
])
def test_factories_that_cannot_give_a_model_are_clear_errors(name, message):
    with pytest.raises(ModelSourceError, match=message):
        open_model(name)


def test_a_factory_takes_an_input_shape_and_overrides_are_for_the_registry():
    model = open_model("tests.lowering.sources.factories:without_input_size", input_shape=(1, 3, 4, 4))
    assert model.input_shape == (1, 3, 4, 4) and model.preprocessing == Preprocessing()
    with pytest.raises(ModelSourceError, match="overrides apply to registry models"):
        open_model(FACTORY, overrides={"depth": 2})


def test_timm_where_it_does_not_import_says_how_to_export_a_program_instead():
    pytest.importorskip("torch")
    try:
        import timm  # noqa: F401
    except Exception:
        with pytest.raises(ModelSourceError, match=r"timm is not importable here.*torch.export.save.*\.pt2"):
            open_model("timm:tiny_vit_5m_224")
    else:
        pytest.skip("timm imports here; the shortcut is then an ordinary factory")
