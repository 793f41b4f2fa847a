import pytest
import torch
from torch import nn

from lowering.export.passes.split_linears import equal_chunks, split_wide_linears
from tests.lowering.export.passes.conftest import export, module_paths, ops, same_function, written_by


class Network(nn.Module):
    def __init__(self, hidden=64):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(8, hidden), nn.GELU(), nn.Linear(hidden, 8)
        self.wide = nn.Linear(8, 48)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x))).sum(-1, keepdim=True) + self.wide(x)


@pytest.mark.parametrize(
    ("units", "unit_width", "chunks"),
    [(768, 1, 1), (2304, 1, 3), (3072, 1, 4), (1000, 1, 2), (3, 192, 1), (9, 192, 3), (12, 192, 3), (7, 192, 7)],
)
def test_equal_chunks_are_the_fewest_within_the_width(units, unit_width, chunks):
    assert equal_chunks(units, unit_width, max_width=768) == chunks


def test_wide_linears_are_split_by_hidden_and_output_chunks_at_their_own_paths():
    x = torch.randn(1, 20, 8)
    program = export(Network(), x)
    passed = split_wide_linears(max_width=16, from_tokens=16)(program)
    # fc1 and fc2 in 4 chunks of 16 hidden features, `wide` in 3 chunks of 16 outputs
    assert ops(passed).count("aten.linear") == 4 + 4 + 3 and ops(passed).count("aten.gelu") == 4
    assert "aten.cat" in ops(passed)
    assert module_paths(written_by(passed, "split_linears")) == {"fc1", "act", "fc2", "wide"}
    same_function(program, passed, x)


def test_few_tokens_or_narrow_linears_are_left_as_they_are():
    program = export(Network(), torch.randn(1, 15, 8))
    assert split_wide_linears(max_width=16, from_tokens=16)(program) is program
    assert split_wide_linears(max_width=64, from_tokens=1)(program) is program


def test_the_settings_are_part_of_the_identity():
    assert split_wide_linears(768, 16).identity == {"version": 1, "max_width": 768, "from_tokens": 16}
