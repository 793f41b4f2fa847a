"""Deployable int8: the folded float model, PT2E observers fixed to our ranges, and the
same ranges as ONNX Runtime tensor overrides."""

import contextlib
import io

import numpy as np
import pytest
import torch

from lowering.quant import QuantConfig, calibrate
from lowering.quant.deployable import NotDeployableError, deployable_int8, linear_input_ranges

LINEARS_PER_BLOCK = ("attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2")


@pytest.fixture
def calibrated(model, images):
    return calibrate(model, images, QuantConfig.repq(8, 8), "random(size=8)")


def _expected_paths(depth: int) -> set[str]:
    blocks = {f"blocks.{i}.{name}" for i in range(depth) for name in LINEARS_PER_BLOCK}
    return blocks | {"patch_embed.proj", "head"}


def test_ranges_cover_every_linear_input_per_tensor(calibrated, model):
    ranges = linear_input_ranges(calibrated.model)
    assert set(ranges) == _expected_paths(len(model.blocks))
    qkv = ranges["blocks.0.attn.qkv"]
    quantizer = calibrated.model.blocks[0].norm1.output_quantizer
    assert qkv.scale == pytest.approx(float(quantizer.scale)) and qkv.zero_point == int(quantizer.zero_point)
    assert qkv.low <= 0 <= qkv.high and qkv.high - qkv.low == pytest.approx(255 * qkv.scale)
    assert ranges["patch_embed.proj"].bits == 8


def test_the_deployed_float_model_computes_the_original_function(calibrated, model, images):
    deployable = deployable_int8(calibrated, images)
    assert not torch.allclose(deployable.model.blocks[0].norm1.weight, model.blocks[0].norm1.weight)
    with torch.no_grad():
        torch.testing.assert_close(deployable.model(images), model(images), atol=1e-5, rtol=0)
    assert "log-sqrt2 and SULQ post-softmax quantizers" in deployable.calibrator.settings["simulated_only"]


@pytest.mark.parametrize(
    "config,message",
    [
        (QuantConfig.repq(4, 4), "W8A8"),
        (QuantConfig(8, 8, post_layernorm="per-channel"), "per-channel"),
    ],
)
def test_settings_the_runtimes_cannot_run_are_refused(model, images, config, message):
    with pytest.raises(NotDeployableError, match=message):
        deployable_int8(calibrate(model, images, config), images)


def _quantization_of_layer_inputs(converted: torch.fx.GraphModule) -> dict[str, set[tuple[float, int]]]:
    """Module path -> the (scale, zero point) pairs of the quantized inputs of the linears
    and convolutions at that path (the LayerNorms' averaging linears included; a linear
    the split_linears pass splits into chunks has one input per chunk)."""
    from lowering.export.unsupported import module_path

    found: dict[str, set[tuple[float, int]]] = {}
    layers = (torch.ops.aten.linear.default, torch.ops.aten.conv2d.default)
    for node in converted.graph.nodes:
        if node.op == "call_function" and node.target in layers:
            dequantize = node.args[0]
            if "dequantize_per_tensor" in str(dequantize.target):
                found.setdefault(module_path(node), set()).add((float(dequantize.args[1]), int(dequantize.args[2])))
    return found


@pytest.mark.parametrize("branches", [1, 4], ids=["plain", "merged-wide"])
def test_pt2e_observers_take_our_ranges(tiny_vit, images, branches):
    """A merged 4-branch block is wider than ExecuTorch's passes keep whole: every chunk of
    a split linear must still take that linear's range."""
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    from lowering.export.passes import XNNPACK_PASSES, apply_passes
    from lowering.export.pt2e import xnnpack_quantizer
    from lowering.reparam import reparameterize

    model = reparameterize(tiny_vit(branches=branches))
    calibrated = calibrate(model, images, QuantConfig.repq(8, 8), "random(size=8)")
    deployable = deployable_int8(calibrated, images)
    example = images[:1]
    passed, _ = apply_passes(torch.export.export(deployable.model, (example,)), XNNPACK_PASSES)
    prepared = prepare_pt2e(passed.module(), xnnpack_quantizer(False))
    deployable.calibrator(prepared)
    converted = convert_pt2e(prepared)
    quantized = _quantization_of_layer_inputs(converted)
    assert set(deployable.calibrator.ranges) <= set(quantized)
    for path, fixed in deployable.calibrator.ranges.items():
        assert len(quantized[path]) == 1, path
        ((scale, zero_point),) = quantized[path]
        assert scale == pytest.approx(fixed.scale, rel=1e-6), path
        assert zero_point == fixed.zero_point - 128, path  # int8 codes are uint8 codes - 128
    assert sorted(deployable.calibrator.fixed) == sorted(deployable.calibrator.ranges)
    assert deployable.calibrator.identity.startswith("repq-vit-ranges:")


def test_onnx_overrides_fix_onnx_runtime_ranges(calibrated, images, tmp_path):
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    deployable = deployable_int8(calibrated, images)
    example = images[:1]
    exported, prepared, quantized = (tmp_path / n for n in ("m.onnx", "m.pre.onnx", "m.int8.onnx"))
    with contextlib.redirect_stdout(io.StringIO()):
        program = torch.onnx.export(
            torch.export.export(deployable.model, (example,)), (example,), dynamo=True, input_names=["images"]
        )
    program.save(str(exported), external_data=False)
    quant_pre_process(str(exported), str(prepared))
    overrides = deployable.calibrator.onnx_tensor_overrides(exported, prepared)
    assert len({(o["rmin"], o["rmax"]) for (o,) in overrides.values()}) == len(deployable.calibrator.ranges)

    class Reader:
        def __init__(self):
            self.batches = iter([{"images": image[None]} for image in images.numpy()])

        def get_next(self):
            return next(self.batches, None)

    quantize_static(
        str(prepared), str(quantized), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
        extra_options={"TensorQuantOverrides": overrides},
    )
    graph = onnx.load(str(quantized)).graph
    constants = {t.name: onnx.numpy_helper.to_array(t) for t in graph.initializer}
    quantize_nodes = {n.input[0]: n for n in graph.node if n.op_type == "QuantizeLinear"}
    checked = set()
    for tensor, (override,) in overrides.items():
        if tensor not in quantize_nodes:
            continue  # a tensor ONNX Runtime keeps float (GELU's output before its reshape)
        node = quantize_nodes[tensor]
        scale, zero_point = float(constants[node.input[1]]), int(constants[node.input[2]])
        path, fixed = next((p, r) for p, r in deployable.calibrator.ranges.items() if np.float32(r.low) == override["rmin"])
        assert scale == pytest.approx(fixed.scale, rel=1e-5), tensor
        assert zero_point == fixed.zero_point, tensor
        checked.add(path)
    assert checked == set(deployable.calibrator.ranges)


def test_an_evaluation_set_records_float_and_simulated_top1(model):
    from lowering.data import calibration_set, load_digits

    images, description = calibration_set(model.spec, "digits", 8, seed=0)
    evaluation = load_digits("val", model.spec.img_size, model.spec.preprocessing).take(40, seed=0)
    calibrated = calibrate(model, images, QuantConfig.repq(8, 8), description)
    accuracy = deployable_int8(calibrated, images, evaluation).calibrator.settings["accuracy"]
    assert accuracy["dataset"] == evaluation.description and accuracy["unit"] == "fraction"
    assert 0 <= accuracy["simulated_top1"] <= 1 and 0 <= accuracy["float_top1"] <= 1
    assert calibrated.calibration in deployable_int8(calibrated, images).calibrator.identity


def test_a_lowered_artifact_records_that_our_calibration_made_it(calibrated, images, random_images, tmp_path):
    from lowering.cache import ArtifactCache
    from lowering.export import Target, lower_model

    deployable = deployable_int8(calibrated, images)
    spec = deployable.lowering_spec([Target("onnx", "int8")], keep_failed=True,
                                    verification_images=random_images(32, seed=5))
    (artifact,) = lower_model(deployable.model, spec, cache=ArtifactCache(tmp_path / "cache"))
    record = artifact.manifest.quantization
    assert record["calibrator"]["method"] == "RepQ-ViT scale reparameterization"
    assert "float" in record and "integer" in record
    # Measured 0.9992; with every range 100 times too wide, 0.47.
    assert artifact.manifest.verification["cosine_similarity"] >= 0.99
