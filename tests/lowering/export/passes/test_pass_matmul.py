import torch
from torch import nn

from lowering.export.passes.matmul import MATMUL
from tests.lowering.export.passes.conftest import export, ops, same_function


class Product(nn.Module):
    def forward(self, a, b):
        return torch.matmul(a, b)


def test_4d_matmul_becomes_bmm_over_the_folded_batch():
    a, b = torch.randn(2, 3, 5, 4), torch.randn(2, 3, 4, 6)
    program = export(Product(), a, b)
    passed = MATMUL(program)
    assert "aten.matmul" not in ops(passed) and ops(passed).count("aten.bmm") == 1
    same_function(program, passed, a, b)


def test_matrix_products_and_broadcasting_ones_are_left_as_they_are():
    for a, b in [(torch.randn(5, 4), torch.randn(4, 6)), (torch.randn(2, 3, 5, 4), torch.randn(3, 4, 6))]:
        program = export(Product(), a, b)
        assert MATMUL(program) is program
