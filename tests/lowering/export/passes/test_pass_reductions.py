import torch
from torch import nn

from lowering.export.passes.reductions import TOKEN_REDUCTIONS
from tests.lowering.export.passes.conftest import export, ops, same_function


class Pooled(nn.Module):
    def forward(self, x):
        tokens = x.flatten(2).transpose(1, 2)
        return tokens.mean(1) + tokens.sum(-1, keepdim=True).mean((0, 1))


class GlobalPool(nn.Module):
    def forward(self, x):
        return x.mean((2, 3), keepdim=True)


def test_means_and_sums_over_tokens_become_linears():
    x = torch.randn(2, 4, 3, 5)
    program = export(Pooled(), x)
    passed = TOKEN_REDUCTIONS(program)
    assert not {"aten.mean", "aten.sum"} & set(ops(passed)) and ops(passed).count("aten.linear") == 3
    same_function(program, passed, x)


def test_the_mean_xnnpack_takes_is_left_as_it_is():
    program = export(GlobalPool(), torch.randn(1, 4, 3, 5))
    assert TOKEN_REDUCTIONS(program) is program
