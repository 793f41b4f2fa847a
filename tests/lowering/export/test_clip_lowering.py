"""CLIP's image encoder lowers with its embedding as the output, judged by cosine similarity."""

import torch

from lowering.export import CalibrationSet, LoweringSpec, Target, lower_model
from lowering.models import create

TARGETS = tuple(Target(*t.split("/")) for t in
                ("executorch/fp32", "executorch/int8", "onnx/fp32", "onnx/int8", "coreml/fp32"))


def test_the_clip_image_encoder_lowers_to_every_backend_with_its_embedding_as_output(artifact_cache):
    torch.manual_seed(0)
    model = create("vit_tiny_clip", img_size=32, depth=2).eval()
    assert model.spec.output == "embedding" and model.head.bias is None
    assert list(model.state_dict())[:5] == ["cls_token", "pos_embed", "patch_embed.proj.weight",
                                            "patch_embed.proj.bias", "norm_pre.weight"]
    images = torch.randn(16, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    spec = LoweringSpec(targets=TARGETS, calibration=CalibrationSet(images, "random normal x16, seed 3"))
    artifacts = {str(a.target): a.manifest for a in lower_model(model, spec, cache=artifact_cache)}
    for target, manifest in artifacts.items():
        verification = manifest.verification
        if target == "coreml/fp32":
            assert verification["spec_check"]["passed"], verification
            continue
        assert verification["passed"], (target, verification)
        assert verification["cosine_similarity"] >= (0.99999 if target.endswith("fp32") else 0.9), target
    assert artifacts["executorch/fp32"].delegation["num_delegates"] == 1
