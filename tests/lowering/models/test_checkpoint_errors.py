"""Bad checkpoints and bad names get errors that name the problem."""

import shutil

import pytest
import torch
from safetensors.torch import save_file

from lowering.models import CheckpointError, InvalidSpecError, UnknownModelError, create

SMALL = dict(depth=2, img_size=32)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        create("vit_tiny", checkpoint=tmp_path / "absent.pth")


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_truncated_file(tmp_path, suffix):
    model = create("vit_tiny", **SMALL)
    path = tmp_path / f"model{suffix}"
    if suffix == ".pth":
        torch.save(model.state_dict(), path)
    else:
        save_file(model.state_dict(), str(path))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        create("vit_tiny", checkpoint=path)


@pytest.mark.parametrize("garbage", [b"not a checkpoint", b"this is not a checkpoint at all" * 10])
def test_garbage_file(tmp_path, garbage):
    path = tmp_path / "model.pth"
    path.write_bytes(garbage)
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        create("vit_tiny", checkpoint=path)


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "model.pth"
    torch.save({"model": create("vit_tiny", **SMALL)}, path)
    with pytest.raises(CheckpointError, match="plain state dict"):
        create("vit_tiny", checkpoint=path)


def test_unknown_format(tmp_path):
    path = tmp_path / "model.ckpt"
    path.write_bytes(b"x")
    with pytest.raises(CheckpointError, match=r"\.safetensors"):
        create("vit_tiny", checkpoint=path)


def test_other_architecture_lists_missing_and_unexpected_keys(tmp_path):
    path = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7), "fc.weight": torch.zeros(10, 512)}, path)
    with pytest.raises(CheckpointError) as info:
        create("vit_tiny", checkpoint=path)
    message = str(info.value)
    assert "missing keys" in message and "cls_token" in message
    assert "unexpected keys (2)" in message and "conv1.weight" in message


def test_shape_mismatch_is_named(tmp_path):
    path = tmp_path / "model.pth"
    torch.save(create("vit_tiny", num_classes=10, **SMALL).state_dict(), path)
    with pytest.raises(CheckpointError, match=r"head.weight: checkpoint \(10, 192\) vs model \(5, 192\)"):
        create("vit_tiny", checkpoint=path, num_classes=5)


def test_distilled_checkpoint_into_plain_model_names_the_extra_keys(tmp_path):
    path = tmp_path / "model.pth"
    torch.save(create("deit_tiny_distilled", **SMALL).state_dict(), path)
    with pytest.raises(CheckpointError, match="dist_token"):
        create("deit_tiny", checkpoint=path)


def test_training_checkpoint_wrapper_is_unwrapped(tmp_path):
    model = create("deit_tiny", num_classes=10, **SMALL)
    path = tmp_path / "model.pth"
    torch.save({"model": model.state_dict(), "epoch": torch.tensor(3)}, path)
    loaded = create("deit_tiny", checkpoint=path)
    images = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(images), model(images))


def test_unknown_model_lists_close_matches():
    with pytest.raises(UnknownModelError, match="did you mean.*vit_tiny"):
        create("vit_tinny")


def test_unknown_override_lists_valid_ones():
    with pytest.raises(InvalidSpecError, match="valid: .*depth"):
        create("vit_tiny", layers=3)


def test_image_size_must_be_a_multiple_of_the_patch():
    with pytest.raises(InvalidSpecError, match="multiple of patch_size"):
        create("vit_tiny", img_size=30)


def test_fixture_copy_is_readable_after_copying(tmp_path):
    from pathlib import Path

    source = Path(__file__).parents[2] / "fixtures" / "timm" / "vit_tiny_d1_32px.safetensors"
    shutil.copy(source, tmp_path / "user.safetensors")
    assert create("vit_tiny", checkpoint=tmp_path / "user.safetensors").spec.num_classes == 10


def test_checkpoint_of_another_width_infers_head_width(tmp_path):
    model = create("vit_tiny", embed_dim=48, depth=2, img_size=32, num_classes=4)
    path = tmp_path / "narrow.pth"
    torch.save(model.state_dict(), path)
    loaded = create("vit_tiny", checkpoint=path)
    assert (loaded.spec.embed_dim, loaded.spec.num_heads, loaded.spec.head_dim) == (48, 3, 16)
    images = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(images), model(images))
