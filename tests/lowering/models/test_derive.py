"""Weight inheritance: a smaller ViT derived from a bigger checkpoint (`vitdeploy derive`)."""

import pytest
import torch

from deploy.cli import main
from lowering.models import create
from lowering.models.checkpoint import CheckpointError
from lowering.models.derive import derive_state, source_shape, uniform_layers

SMALL = dict(img_size=32, patch_size=16, depth=4, num_classes=10)


@pytest.fixture
def state():
    torch.manual_seed(0)
    return create("deit_tiny", **SMALL).state_dict()


def test_uniform_layers_keep_the_first_and_the_last_block():
    assert uniform_layers(12, 4) == [0, 4, 7, 11]
    assert uniform_layers(12, 12) == list(range(12))
    assert uniform_layers(12, 1) == [11]
    with pytest.raises(CheckpointError, match="between 1 and the source's 12"):
        uniform_layers(12, 13)


def test_deriving_the_same_shape_is_the_identity(state):
    derived = derive_state(state, depth=4, num_heads=3, mlp_ratio=4.0)
    assert derived.keys() == state.keys()
    assert all(torch.equal(derived[key], state[key]) for key in state)


def test_the_heads_and_features_with_the_largest_weights_are_kept_in_order(state):
    for key in ("attn.qkv.weight", "attn.proj.weight", "mlp.fc1.weight", "mlp.fc2.weight"):
        state[f"blocks.3.{key}"] = state[f"blocks.3.{key}"].clone()
    qkv, proj = state["blocks.3.attn.qkv.weight"], state["blocks.3.attn.proj.weight"]
    for part in range(3):  # head 1 gets no weight: it must go
        qkv[part * 192 + 64 : part * 192 + 128] = 0
    proj[:, 64:128] = 0
    state["blocks.3.mlp.fc1.weight"][:5] *= 100  # hidden features 0-4 matter most
    derived = derive_state(state, depth=2, num_heads=2, mlp_ratio=1.0)
    assert sorted({key.split(".")[1] for key in derived if key.startswith("blocks.")}) == ["0", "1"]
    assert torch.equal(derived["blocks.1.attn.qkv.weight"][:64], qkv[:64])  # query rows of head 0, then head 2
    assert torch.equal(derived["blocks.1.attn.qkv.weight"][64:128], qkv[128:192])
    assert torch.equal(derived["blocks.1.attn.proj.weight"], torch.cat([proj[:, :64], proj[:, 128:]], dim=1))
    assert torch.equal(derived["blocks.1.mlp.fc1.weight"][:5], state["blocks.3.mlp.fc1.weight"][:5])
    assert derived["blocks.1.mlp.fc2.weight"].shape == (192, 192)
    assert torch.equal(derived["blocks.0.norm1.weight"], state["blocks.0.norm1.weight"])


def test_a_derived_checkpoint_loads_like_any_other_and_runs(state, tmp_path, capsys):
    source = tmp_path / "big.pth"
    torch.save(state, source)
    out = tmp_path / "small.pth"
    assert main(["derive", str(source), "--depth", "2", "--heads", "2", "--mlp-ratio", "2", "--out", str(out)]) == 0
    assert "depth 4 -> 2 (blocks 0, 3), heads 3 -> 2, hidden 768 -> 384" in capsys.readouterr().out
    model = create("deit_tiny", checkpoint=out)
    assert (model.spec.depth, model.spec.num_heads, model.spec.head_dim, model.spec.mlp_ratio) == (2, 2, 64, 2.0)
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 10)


def test_a_branched_checkpoint_or_an_impossible_shape_is_refused(state):
    branched = create("deit_tiny", branches=2, **SMALL).state_dict()
    with pytest.raises(CheckpointError, match="reparameterize it first"):
        source_shape(branched)
    with pytest.raises(CheckpointError, match="num_heads 4 must be between 1 and the source's 3"):
        derive_state(state, depth=2, num_heads=4, mlp_ratio=1.0)
    with pytest.raises(CheckpointError, match="mlp_ratio 4.001"):
        derive_state(state, depth=2, num_heads=2, mlp_ratio=4.001)
