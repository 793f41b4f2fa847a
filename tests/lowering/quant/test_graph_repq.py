"""RepQ-ViT's fold on exported graphs: exact in float where it applies, the graph untouched
where it does not, and fixed ranges that reach the runtimes' int8."""

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from lowering.export import CalibrationSet, Target, lower_model
from lowering.int8_ranges import lowering_groups
from lowering.quant.graph_repq import fold_post_layer_norm, fold_sites
from lowering.sources import open_model

GRAPHS = Path(__file__).resolve().parents[2] / "fixtures" / "timm_graphs"
INDEX = json.loads((GRAPHS / "index.json").read_text())


def _calibration(shape, count: int = 8) -> CalibrationSet:
    images = torch.randn((count,) + tuple(shape[1:]), generator=torch.Generator().manual_seed(0))
    return CalibrationSet(images, f"{count} random images")


def _outputs(module, images):
    with torch.no_grad():
        return torch.cat([module(image[None]) for image in images])


@pytest.mark.parametrize("name, folded", [("vit", 5), ("cait", 7), ("swin", 11), ("tinyvit", 8)])
def test_the_fold_is_exact_in_float_on_the_timm_graphs(name, folded):
    model = open_model(str(GRAPHS / f"{name}.pt2"))
    fold = fold_post_layer_norm(model, _calibration(model.input_shape))
    assert len(fold.folded) == folded
    images = torch.randn((3,) + model.input_shape[1:], generator=torch.Generator().manual_seed(1))
    before, after = _outputs(model.model, images), _outputs(fold.model.model, images)
    torch.testing.assert_close(after, before, atol=1e-5 * before.abs().max().item(), rtol=0)
    changed = [name for name, value in fold.model.program.state_dict.items()
               if not torch.equal(value, model.program.state_dict[name])]
    assert changed and all(n.endswith(("weight", "bias")) for n in changed)
    # Every linear after a folded LayerNorm gets the fold's per-tensor input range.
    assert set(fold.calibrator.ranges) == {path for site in fold.folded for path in site.linear_paths}


def test_the_fold_names_why_it_left_a_layer_norm_alone():
    program = open_model(str(GRAPHS / "swin.pt2")).program
    _, unfolded = fold_sites(program)
    reasons = dict(unfolded)
    assert "aten.add" in reasons["patch_embed.norm"]  # the residual stream itself
    assert reasons["layers.1.downsample.norm"] == "layers.1.downsample.reduction has no weight and bias of its own"


def test_a_model_without_layer_norm_is_left_exactly_as_it_was():
    model = open_model(str(GRAPHS / "efficientvit_m.pt2"))
    fold = fold_post_layer_norm(model, _calibration(model.input_shape, 2))
    assert fold.folded == () and fold.calibrator.ranges == {}
    assert all(torch.equal(value, model.program.state_dict[name]) for name, value in fold.model.program.state_dict.items())


class _Padded(nn.Module):
    """LayerNorm, then a padding of the tokens, then a linear."""

    def __init__(self, pad: int):
        super().__init__()
        self.pad = pad
        self.norm, self.linear = nn.LayerNorm(4), nn.Linear(4, 2)

    def forward(self, x):
        return self.linear(nn.functional.pad(self.norm(x), (0, 0, 0, self.pad)))


@pytest.mark.parametrize("pad, applies", [(0, True), (1, False)])
def test_padding_blocks_the_fold_unless_it_pads_nothing(pad, applies):
    program = torch.export.export(_Padded(pad).eval(), (torch.randn(1, 3, 4),))
    sites, unfolded = fold_sites(program)
    assert (len(sites), len(unfolded)) == ((1, 0) if applies else (0, 1))
    if not applies:
        assert unfolded == [("norm", "its output also feeds aten.pad")]


@pytest.fixture(scope="module")
def encoder_artifacts(tmp_path_factory):
    """ExecuTorch and ONNX int8 of a pre-norm encoder with outlier LayerNorm channels,
    through RepQ-ViT's fold."""
    model = open_model("tests.lowering.sources.factories:pre_norm_encoder")
    calibration = _calibration(model.input_shape, 16)
    targets = (Target("executorch", "int8"), Target("onnx", "int8"))
    verification = torch.randn((32,) + model.input_shape[1:], generator=torch.Generator().manual_seed(2))
    (group,) = lowering_groups(model, targets, calibration, "repq")
    spec = group.lowering_spec(verification_images=verification, use_cache=False)
    return group, lower_model(group.model, spec, out_dir=tmp_path_factory.mktemp("repq"))


def test_the_fold_reaches_both_runtimes_and_the_manifest_says_where(encoder_artifacts):
    group, artifacts = encoder_artifacts
    assert group.note.startswith("RepQ-ViT fold: 5 LayerNorm(s) into 9 linear(s)")
    for artifact in artifacts:
        assert artifact.manifest.passed, artifact.manifest.failure_text
        record = artifact.manifest.quantization["calibrator"]
        assert [site["layer_norm"] for site in record["folded_into_weights"]] == [
            "blocks.0.norm1", "blocks.0.norm2", "blocks.1.norm1", "blocks.1.norm2", "norm"]
        assert record["folded_into_weights"][0]["linears"] == ["blocks.0.query", "blocks.0.key", "blocks.0.value"]
        assert record["not_folded"] == [] and record["float_operators"]["aten.softmax"] == 2
    # One observer feeds the query, key and value projections: all three got our range.
    assert len(group.calibrator.fixed) == 9

