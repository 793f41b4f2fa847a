"""Parameter and MAC counts match the published figures."""

from lowering.models import VisionTransformer, count_macs, count_params, create, resolve_spec


def test_deit_tiny_224_counts():
    model = create("deit_tiny")
    assert count_params(model) == 5_717_416
    assert round(count_macs(model, (1, 3, 224, 224)) / 1e9, 2) == 1.25


def test_macs_are_counted_per_image():
    model = create("vit_tiny", depth=2, img_size=32)
    assert count_macs(model, (4, 3, 32, 32)) == 4 * count_macs(model, (1, 3, 32, 32))


def test_macs_of_a_block_match_the_closed_form():
    spec = resolve_spec("vit_tiny", depth=1, img_size=64, num_classes=10)
    tokens, dim = spec.num_patches + 1, spec.embed_dim
    patch = spec.num_patches * dim * 3 * 16 * 16
    block = tokens * dim * 3 * dim + 2 * tokens * tokens * dim + tokens * dim * dim
    block += 2 * tokens * dim * 4 * dim
    head = dim * 10
    assert count_macs(VisionTransformer(spec), (1, 3, 64, 64)) == patch + block + head
