"""CaiT class attention with per-task gates folded at lowering."""

import pytest
import torch

from lowering.models import InvalidSpecError, create, resolve_spec
from lowering.models.class_attention import ClassAttention, GatedLinear
from lowering.reparam import reparameterize

SMALL = dict(img_size=32, patch_size=16, depth=2, num_classes=10)


def test_only_the_class_token_queries_and_only_it_changes():
    torch.manual_seed(0)
    model = create("deit_tiny_gated_class_attn", **SMALL).eval()
    block = model.blocks_token_only[0]
    x = torch.randn(2, 5, 192)
    out = block(x)
    assert torch.equal(out[:, 1:], x[:, 1:]) and not torch.allclose(out[:, :1], x[:, :1])
    attention = ClassAttention(192, 3, 64).eval()
    full = torch.randn(1, 5, 192)
    changed = full.clone()
    changed[:, 0] += 1  # a query changes the output; the keys of other tokens stay keys
    assert attention(full).shape == (1, 1, 192) and not torch.allclose(attention(full), attention(changed))


@pytest.mark.parametrize("task", [0, 3])
def test_folding_the_gates_of_a_task_is_exact_and_leaves_no_gate_arithmetic(task):
    torch.manual_seed(0)
    model = create("deit_tiny_gated_class_attn", task=task, **SMALL).eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, GatedLinear):
                module.gate_scores.normal_(0, 2)  # trained-looking gates, different per task
    folded = reparameterize(model)
    assert not any(isinstance(module, GatedLinear) for module in folded.modules())
    assert folded.spec.gate_tasks == 0 and model.spec.gate_tasks == 4
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(folded(x), model(x), rtol=0, atol=1e-6)
    graph = torch.export.export(folded, (x[:1],)).graph
    assert not [node for node in graph.nodes if "sigmoid" in str(node.target)]
    gated_graph = torch.export.export(model, (x[:1],)).graph
    assert [node for node in gated_graph.nodes if "sigmoid" in str(node.target)]


def test_the_gates_of_each_task_differ():
    torch.manual_seed(0)
    model = create("deit_tiny_gated_class_attn", **SMALL).eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, GatedLinear):
                module.gate_scores.normal_(0, 2)
    x = torch.randn(1, 3, 32, 32)
    outputs = []
    for task in (0, 1):
        for module in model.modules():
            if isinstance(module, GatedLinear):
                module.task = task
        outputs.append(model(x))
    assert not torch.allclose(*outputs)


def test_gates_need_class_attention_and_a_task_among_them():
    with pytest.raises(InvalidSpecError, match="give class_attention_blocks too"):
        resolve_spec("deit_tiny", gate_tasks=2)
    with pytest.raises(InvalidSpecError, match="task 4 is not one of the 4 gated tasks"):
        resolve_spec("deit_tiny_gated_class_attn", task=4)
