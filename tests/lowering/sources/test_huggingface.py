"""transformers folders written by save_pretrained become model inputs that export."""

import shutil
import sys

import pytest
import torch

transformers = pytest.importorskip("transformers")

from lowering.models.spec import Preprocessing  # noqa: E402
from lowering.sources.huggingface import open_huggingface  # noqa: E402
from lowering.sources.model_input import ModelSourceError  # noqa: E402

VIT_LIKE = dict(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                intermediate_size=64, num_labels=10)


def _models():
    """name -> (model class, config, image processor or None), all tiny and random."""
    return {
        "vit": (transformers.ViTForImageClassification, transformers.ViTConfig(**VIT_LIKE),
                transformers.ViTImageProcessor(image_mean=[0.1, 0.2, 0.3], image_std=[0.4, 0.5, 0.6], resample=3,
                                               size={"height": 32, "width": 32})),
        "deit": (transformers.DeiTForImageClassificationWithTeacher, transformers.DeiTConfig(**VIT_LIKE),
                 transformers.DeiTImageProcessor(size={"height": 40, "width": 40}, crop_size={"height": 32, "width": 32},
                                                 image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225])),
        "beit": (transformers.BeitForImageClassification,
                 transformers.BeitConfig(**VIT_LIKE, use_relative_position_bias=True), None),
        "swin": (transformers.SwinForImageClassification,
                 transformers.SwinConfig(image_size=32, patch_size=4, embed_dim=16, depths=[1, 1], num_heads=[2, 2],
                                         window_size=4, num_labels=10),
                 transformers.BitImageProcessor(size={"shortest_edge": 36}, crop_size={"height": 32, "width": 32},
                                                resample=2)),
        "dinov2": (transformers.Dinov2ForImageClassification,
                   transformers.Dinov2Config(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2,
                                             num_attention_heads=2, mlp_ratio=2, num_labels=10), None),
        "mobilevit": (transformers.MobileViTForImageClassification,
                      transformers.MobileViTConfig(image_size=32, patch_size=2, hidden_sizes=[16, 24, 32],
                                                   neck_hidden_sizes=[8, 8, 16, 16, 24, 32, 64], num_attention_heads=2,
                                                   num_labels=10),
                      transformers.MobileViTImageProcessor(size={"shortest_edge": 32},
                                                           crop_size={"height": 32, "width": 32})),
    }


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """name -> (folder, the saved model in eval mode with eager attention)."""
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("hf")
    folders = {}
    for name, (cls, config, processor) in _models().items():
        model = cls(config).eval()
        model.set_attn_implementation("eager")
        model.save_pretrained(root / name)
        if processor is not None:
            processor.save_pretrained(root / name)
        folders[name] = (root / name, model)
    return folders


def _loaded(folder):
    """The folder's model as transformers loads it (eager attention): its weights are
    memory-mapped, so its float sums round as those of `open_huggingface` do, not always
    as those of the model that was saved."""
    return transformers.AutoModelForImageClassification.from_pretrained(folder, attn_implementation="eager").eval()


@pytest.fixture(scope="module")
def opened(saved):
    return {name: open_huggingface(folder) for name, (folder, _) in saved.items()}


def _reference_logits(model, x, **options):
    return model(pixel_values=x, **options).logits


@pytest.mark.parametrize("name", ["vit", "deit", "beit", "swin", "dinov2", "mobilevit"])
def test_the_wrapped_model_returns_the_transformers_logits_and_exports(saved, opened, name):
    folder, built = saved[name]
    source = opened[name]
    x = torch.randn(source.example.shape, generator=torch.Generator().manual_seed(1))
    # MobileViT's processor feeds BGR: the wrapper takes RGB and flips it
    reference_input = x.flip(1) if name == "mobilevit" else x
    with torch.no_grad():
        logits = source.model(x)
        assert torch.equal(logits, _reference_logits(_loaded(folder), reference_input))
        torch.testing.assert_close(logits, _reference_logits(built, reference_input), rtol=1e-5, atol=1e-6)
        program = torch.export.export(source.model, (source.example,))
        torch.testing.assert_close(program.module()(x), logits, rtol=1e-5, atol=1e-6)
    assert logits.shape == (1, 10)


def test_the_fields_describe_the_folder(saved, opened):
    folder, _ = saved["vit"]
    source = opened["vit"]
    assert source.label == "vit"
    assert source.source == str(folder)
    assert source.source_kind == "huggingface"
    assert source.input_shape == (1, 3, 32, 32)
    assert source.spec is None and source.program is None
    assert not source.model.training
    assert source.model.model.config._attn_implementation == "eager"
    assert len(source.source_sha256) == 64


def test_module_paths_read_like_the_transformers_model(opened):
    assert "model.vit.layers.0.attention" in dict(opened["vit"].model.named_modules())


def test_the_teacher_model_averages_both_heads(saved, opened):
    x = torch.randn(opened["deit"].example.shape)
    with torch.no_grad():
        output = _loaded(saved["deit"][0])(pixel_values=x)
        assert torch.equal(opened["deit"].model(x), (output.cls_logits + output.distillation_logits) / 2)


@pytest.mark.parametrize("name, expected, shape", [
    ("vit", Preprocessing(mean=(0.1, 0.2, 0.3), std=(0.4, 0.5, 0.6), crop_pct=1.0, interpolation="bicubic"),
     (1, 3, 32, 32)),
    ("deit", Preprocessing(crop_pct=0.8, interpolation="bicubic"), (1, 3, 32, 32)),
    ("swin", Preprocessing(mean=(0.48145466, 0.4578275, 0.40821073), std=(0.26862954, 0.26130258, 0.27577711),
                           crop_pct=32 / 36, interpolation="bilinear"), (1, 3, 32, 32)),
    ("mobilevit", Preprocessing(mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), crop_pct=1.0, interpolation="bicubic"),
     (1, 3, 32, 32)),
    ("beit", Preprocessing(mean=(0.5,) * 3, std=(0.5,) * 3, crop_pct=1.0, interpolation="bilinear"), (1, 3, 32, 32)),
])
def test_the_preprocessing_comes_from_the_preprocessor_config(opened, name, expected, shape):
    assert opened[name].preprocessing == expected
    assert opened[name].input_shape == shape


def test_the_center_crop_size_is_the_input_and_the_resize_gives_crop_pct(tmp_path, saved):
    folder = tmp_path / "deit-big-crop"
    shutil.copytree(saved["deit"][0], folder)
    transformers.DeiTImageProcessor(size={"height": 64, "width": 64}, crop_size={"height": 48, "width": 48},
                                    resample=2).save_pretrained(folder)
    source = open_huggingface(folder)
    assert source.input_shape == (1, 3, 48, 48)
    assert source.preprocessing.crop_pct == 0.75
    assert source.preprocessing.interpolation == "bilinear"


def test_an_image_size_interpolates_the_position_embeddings(saved):
    folder, _ = saved["vit"]
    source = open_huggingface(folder, img_size=48)
    assert source.input_shape == (1, 3, 48, 48)
    x = torch.randn(source.example.shape)
    with torch.no_grad():
        assert torch.equal(source.model(x), _reference_logits(_loaded(folder), x, interpolate_pos_encoding=True))
        program = torch.export.export(source.model, (source.example,))
        torch.testing.assert_close(program.module()(x), source.model(x), rtol=1e-5, atol=1e-6)


def test_the_sha256_is_of_the_files_and_changes_with_them(tmp_path, saved, opened):
    folder, model = saved["vit"]
    assert open_huggingface(folder).source_sha256 == opened["vit"].source_sha256
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    assert open_huggingface(copy).source_sha256 == opened["vit"].source_sha256

    changed = tmp_path / "changed"
    shutil.copytree(folder, changed)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state["classifier.bias"] += 1
    model.save_pretrained(changed, state_dict=state)
    assert open_huggingface(changed).source_sha256 != opened["vit"].source_sha256

    (copy / "preprocessor_config.json").write_text((copy / "preprocessor_config.json").read_text().replace("0.1", "0.15"))
    assert open_huggingface(copy).source_sha256 != opened["vit"].source_sha256


def test_sharded_and_pytorch_bin_weights_load(tmp_path, saved, opened):
    folder, model = saved["vit"]
    x = torch.randn(opened["vit"].example.shape)
    sharded = tmp_path / "sharded"
    model.save_pretrained(sharded, max_shard_size="20KB")
    assert (sharded / "model.safetensors.index.json").is_file()
    binary = tmp_path / "binary"
    binary.mkdir()
    shutil.copy(folder / "config.json", binary)
    torch.save(model.state_dict(), binary / "pytorch_model.bin")
    with torch.no_grad():
        for other in (sharded, binary):
            assert torch.equal(open_huggingface(other).model(x), opened["vit"].model(x))

    shard = sorted(sharded.glob("model-*.safetensors"))[-1]
    before = open_huggingface(sharded).source_sha256
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state["classifier.bias"] += 1
    model.save_pretrained(sharded, state_dict=state, max_shard_size="20KB")
    assert shard.is_file() and open_huggingface(sharded).source_sha256 != before


def test_without_transformers_the_error_says_how_to_install_it(monkeypatch, saved):
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(ModelSourceError, match=r"transformers is not installed: pip install 'vitdeploy\[hf\]'"):
        open_huggingface(saved["vit"][0])


def test_a_folder_without_config_json(tmp_path):
    with pytest.raises(ModelSourceError, match=rf"{tmp_path} has no config.json"):
        open_huggingface(tmp_path)


def test_a_folder_without_weights(tmp_path, saved):
    shutil.copy(saved["vit"][0] / "config.json", tmp_path)
    with pytest.raises(ModelSourceError, match=r"has a config.json but no weights \(model.safetensors"):
        open_huggingface(tmp_path)


def test_a_config_json_that_is_not_a_transformers_config(tmp_path, saved):
    shutil.copytree(saved["vit"][0], tmp_path / "m")
    (tmp_path / "m" / "config.json").write_text("{}")
    with pytest.raises(ModelSourceError, match=r"config.json is not a transformers config"):
        open_huggingface(tmp_path / "m")


@pytest.mark.parametrize("architecture", ["BertModel", "ViTModel"])
def test_an_architecture_without_an_image_classification_head(tmp_path, architecture):
    if architecture == "BertModel":
        model = transformers.BertModel(transformers.BertConfig(hidden_size=32, num_hidden_layers=1,
                                                               num_attention_heads=2, intermediate_size=32,
                                                               vocab_size=100))
    else:
        model = transformers.ViTModel(transformers.ViTConfig(**VIT_LIKE))
    model.save_pretrained(tmp_path)
    with pytest.raises(ModelSourceError, match=rf"architecture {architecture} has no image-classification head"):
        open_huggingface(tmp_path)


@pytest.mark.parametrize("weights", ["model.safetensors", "pytorch_model.bin"])
def test_corrupt_weights(tmp_path, saved, weights):
    folder, model = saved["vit"]
    shutil.copy(folder / "config.json", tmp_path)
    if weights == "model.safetensors":
        data = (folder / weights).read_bytes()
        (tmp_path / weights).write_bytes(data[: len(data) // 2])
    else:
        (tmp_path / weights).write_bytes(b"not a checkpoint at all" * 10)
    with pytest.raises(ModelSourceError, match=r"could not be loaded \(.*\): if a file is corrupt or truncated"):
        open_huggingface(tmp_path)


def test_weights_of_another_model_are_refused(tmp_path, saved):
    shutil.copy(saved["vit"][0] / "config.json", tmp_path)
    shutil.copy(saved["deit"][0] / "model.safetensors", tmp_path)
    with pytest.raises(ModelSourceError, match=r"do not fit ViTForImageClassification: \d+ parameter"):
        open_huggingface(tmp_path)


def test_a_size_the_model_cannot_take(tmp_path):
    config = transformers.LevitConfig(image_size=64, hidden_sizes=[16, 24, 32], num_attention_heads=[1, 2, 2],
                                      depths=[1, 1, 1], key_dim=[8, 8, 8], num_labels=10)
    transformers.LevitForImageClassificationWithTeacher(config).save_pretrained(tmp_path)
    assert open_huggingface(tmp_path).input_shape == (1, 3, 64, 64)
    with pytest.raises(ModelSourceError, match=r"does not take a 1x3x96x96 input .*: give the image size"):
        open_huggingface(tmp_path, img_size=96)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["vit", "deit", "beit", "swin"])
def test_vitdeploy_lower_builds_every_backend_from_the_folder(saved, name, tmp_path, capsys):
    from deploy.cli import main
    from vitdeploy.manifest import read_manifest

    folder, _ = saved[name]
    argv = ["lower", str(folder), "--backend", "executorch,onnx,coreml", "--quant", "fp32,int8", "--out", str(tmp_path)]
    assert main(argv) == 0, capsys.readouterr().err
    manifests = [read_manifest(p) for p in sorted(tmp_path.iterdir()) if not p.name.endswith(".manifest.json")]
    assert sorted((m.backend, m.quant) for m in manifests) == [
        ("coreml", "fp32"), ("executorch", "fp32"), ("executorch", "int8"), ("onnx", "fp32"), ("onnx", "int8")]
    for manifest in manifests:
        assert manifest.passed, (manifest.backend, manifest.quant, manifest.failure_text)
        assert (manifest.model.name, manifest.model.source_kind) == (name, "huggingface")
        assert manifest.output_shape == (1, 10) and manifest.model.params > 0
        if manifest.quant == "fp32" and manifest.backend != "coreml":
            assert manifest.verification["max_abs_error"] <= 1e-4
