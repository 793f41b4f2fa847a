import torch
from torch import nn

from lowering.export.passes.layer_norm import LAYER_NORM
from tests.lowering.export.passes.conftest import export, module_paths, ops, same_function, written_by


class Normed(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 16)
        self.norm = nn.LayerNorm(16)
        self.norm.weight.data.uniform_(0.5, 1.5)
        self.norm.bias.data.normal_(0, 0.1)

    def forward(self, x):
        return self.norm(self.fc(x))


def test_layer_norm_becomes_averaging_linears_at_the_norms_path():
    torch.manual_seed(0)
    x = torch.randn(2, 5, 8) * 3 + 1
    program = export(Normed(), x)
    passed = LAYER_NORM(program)
    assert "aten.layer_norm" not in ops(passed) and "aten.layer_norm" in ops(program)
    assert ops(passed).count("aten.linear") == 3 and "aten.rsqrt" in ops(passed)
    assert module_paths(written_by(passed, "layer_norm")) == {"norm"}
    same_function(program, passed, x)


def test_an_identity_affine_is_left_out():
    model = Normed()
    nn.init.ones_(model.norm.weight), nn.init.zeros_(model.norm.bias)
    passed = LAYER_NORM(export(model, torch.randn(1, 3, 8)))
    # the centred square, the epsilon, the normalization; no affine
    assert [op for op in ops(passed) if op in ("aten.mul", "aten.add")] == ["aten.mul", "aten.add", "aten.mul"]


def test_a_norm_over_two_dimensions_is_left_as_it_is():
    class TwoDims(nn.Module):
        def __init__(self):
            super().__init__()
            self.norm = nn.LayerNorm((4, 8))

        def forward(self, x):
            return self.norm(x)

    program = export(TwoDims(), torch.randn(2, 4, 8))
    assert LAYER_NORM(program) is program
