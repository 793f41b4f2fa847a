import torch
from torch import nn

from lowering.export.passes.constants import fold_constants
from tests.lowering.export.passes.conftest import export, ops, same_function


class RuntimeMask(nn.Module):
    """A Hugging Face style all-true attention mask built at run time from constants."""

    def forward(self, x):
        positions = torch.arange(x.shape[-1])
        keep = positions[None, :] >= 0
        additive = torch.where(keep, torch.zeros(()), torch.finfo(x.dtype).min)
        return (x + additive).softmax(-1)


class RelativeBias(nn.Module):
    """Swin's relative-position bias: a table indexed by constant indices, viewed 4-D."""

    def __init__(self):
        super().__init__()
        self.table = nn.Parameter(torch.randn(9, 2))
        self.register_buffer("index", torch.randint(0, 9, (16,)))

    def forward(self, scores):
        return scores + self.table[self.index].view(4, 4, 2).permute(2, 0, 1).unsqueeze(0)


def test_fold_constants_precomputes_what_depends_on_constants_alone():
    x = torch.randn(2, 5)
    program = export(RuntimeMask(), x)
    folded = fold_constants(program.run_decompositions({}))
    assert {"aten.arange", "aten.where"} & set(ops(program))
    assert not {"aten.arange", "aten.ge", "aten.where"} & set(ops(folded))
    assert torch.equal(folded.module()(x), program.module()(x))


def test_a_gathered_bias_becomes_one_row_major_constant():
    scores = torch.randn(1, 2, 4, 4)
    program = export(RelativeBias(), scores)
    folded = fold_constants(program)
    assert ops(folded) == ["aten.add"]
    assert all(value.is_contiguous() and value.stride() == torch.empty(value.shape).stride()
               for value in folded.constants.values())
    same_function(program, folded, scores, atol=0)


def test_a_program_with_nothing_to_fold_is_left_as_it_is():
    program = export(nn.Linear(3, 4), torch.randn(2, 3))
    assert fold_constants(program) is program


class BuiltInPlace(nn.Module):
    """Hugging Face BEiT's relative-position index: built with zeros and in-place writes."""

    def __init__(self):
        super().__init__()
        self.table = nn.Parameter(torch.randn(5))

    def forward(self, x):
        index = torch.zeros(4, dtype=torch.long)
        index.add_(2)
        return x + self.table[index]


def test_a_value_written_in_place_is_not_folded():
    program = export(BuiltInPlace(), torch.randn(4))
    assert any(name.endswith("_") for name in ops(program))
    assert fold_constants(program) is program
