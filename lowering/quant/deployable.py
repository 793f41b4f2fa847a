"""Deployable int8 from a calibrated RepQ-ViT model: what the exporters take.

    calibrated = calibrate(model, images, QuantConfig.repq(8, 8), description)
    deployable = deployable_int8(calibrated, images)
    lower_model(deployable.model, deployable.lowering_spec(targets), source=...)

What is deployed:
- `model`: the float network with RepQ-ViT's scale reparameterization folded into the
  LayerNorm affines and the linears after them. Its output equals the original model's
  (float rounding only), and its LayerNorm outputs have about equal ranges in every
  channel, so the runtimes' per-tensor int8 activations after LayerNorm lose little.
- `calibrator` (ExecuTorch XNNPACK int8 and Core ML w8a8, which share the PT2E path):
  runs the calibration images through the PT2E-prepared graph, then replaces the
  observers of every linear's and the patch convolution's input with fixed ranges from
  our calibration (the per-tensor post-LayerNorm ranges of the scale
  reparameterization, and the percentile-searched ranges of the other linear inputs).
  Other quantized tensors (linear outputs, residual additions) keep PT2E's observers;
  weights are int8 symmetric per output channel from the folded weights, as XNNPACK
  requires.
- ONNX Runtime's static QDQ path calibrates on the same images (MinMax) and takes our
  linear-input ranges through `RangeCalibrator.onnx_tensor_overrides` (its
  `TensorQuantOverrides` option).

Simulated only: the log-sqrt2 and SULQ post-softmax quantizers, bit widths below 8, and
our query/key/value ranges (where a runtime quantizes the attention matmuls' inputs it
uses its own calibration). Softmax, GELU and LayerNorm compute in float on these
runtimes.
"""

from __future__ import annotations

import ast
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from lowering.data.dataset import ImageDataset
from vitdeploy.errors import VitdeployError
from lowering.models import VisionTransformer
from lowering.quant.calibrate import CalibratedModel
from lowering.quant.layers import FakeQuantConv2d, FakeQuantLinear
from lowering.quant.quantizers import UniformQuantizer
from lowering.quant.repq import layer_norm_consumers
from lowering.quant.simulate import float_model

DEPLOYABLE_BITS = 8
SIMULATED_ONLY = (
    "log-sqrt2 and SULQ post-softmax quantizers",
    "bit widths other than 8",
    "our query, key and value ranges (runtimes that quantize the attention matmuls calibrate them themselves)",
)


class NotDeployableError(VitdeployError):
    """The calibrated model uses settings the int8 runtimes cannot run."""


@dataclass(frozen=True)
class InputRange:
    """The per-tensor quantization of one layer's input: `scale`, integer `zero_point`
    on codes 0 .. 2^bits - 1; the real range it covers is [low, high]."""

    scale: float
    zero_point: int
    bits: int

    @property
    def low(self) -> float:
        return -self.zero_point * self.scale

    @property
    def high(self) -> float:
        return (2**self.bits - 1 - self.zero_point) * self.scale


def _range(quantizer: nn.Module, where: str) -> InputRange:
    if not isinstance(quantizer, UniformQuantizer) or quantizer.channel_axis is not None:
        raise NotDeployableError(
            f"the input of {where} is not quantized per tensor with a uniform quantizer "
            "(use post_layernorm='reparameterized' or 'per-tensor' and 8-bit activations)"
        )
    return InputRange(float(quantizer.scale), int(quantizer.zero_point), quantizer.bits)


def linear_input_ranges(model: VisionTransformer) -> dict[str, InputRange]:
    """Module path of every linear (and the patch convolution) -> the per-tensor
    quantization of its input in a calibrated fake-quant model."""
    ranges = {}
    embed = model.patch_embed.proj
    if isinstance(embed, FakeQuantConv2d):
        ranges["patch_embed.proj"] = _range(embed.input_quantizer, "patch_embed.proj")
    for norm_name, linear_names in layer_norm_consumers(model):
        quantizer = model.get_submodule(norm_name).output_quantizer
        for name in linear_names:
            ranges[name] = _range(quantizer, name)
    for index, block in enumerate(model.blocks):
        for name, linear in ((f"blocks.{index}.attn.proj", block.attn.proj), (f"blocks.{index}.mlp.fc2", block.mlp.fc2)):
            if isinstance(linear, FakeQuantLinear):
                ranges[name] = _range(linear.input_quantizer, name)
    return ranges


def _consumer_paths(observer_node: torch.fx.Node) -> list[str]:
    """The module paths of the linears and convolutions whose input `observer_node`
    observes (several where one tensor feeds several, as the query, key and value
    projections after one LayerNorm)."""
    from lowering.export.unsupported import module_path

    layers = (torch.ops.aten.linear.default, torch.ops.aten.conv2d.default)
    return [module_path(user) for user in observer_node.users
            if user.op == "call_function" and user.target in layers and user.args[0] is observer_node]


def fixed_range_observer(template: nn.Module, fixed: InputRange) -> nn.Module:
    """A min-max observer with `template`'s dtype and code range that has seen exactly
    [fixed.low, fixed.high] (so its scale and zero point are ours, shifted to the
    template's signed or unsigned codes)."""
    from torchao.quantization.pt2e.observer import MinMaxObserver

    observer = MinMaxObserver(
        dtype=template.dtype,
        qscheme=template.qscheme,
        quant_min=template.quant_min,
        quant_max=template.quant_max,
        eps=float(template.eps),
    )
    observer(torch.tensor([fixed.low, fixed.high], dtype=torch.float32))
    return observer


class RangeCalibrator:
    """The PT2E calibration hook (`lowering.export.PreparedCalibrator`): observe the
    calibration images, then fix every linear input to our ranges.

    `settings` is the record for the manifest's `quantization` field; `fixed` lists the
    layers whose input observer the last call replaced.
    """

    def __init__(self, ranges: dict[str, InputRange], images: torch.Tensor, description: str, settings: dict):
        self.ranges = ranges
        self.images = images
        self.description = description
        self.settings = settings
        content = json.dumps({k: [v.scale, v.zero_point, v.bits] for k, v in sorted(ranges.items())})
        self.identity = f"repq-vit-ranges:{hashlib.sha256(content.encode()).hexdigest()[:16]}:{description}"
        self.fixed: list[str] = []

    def __call__(self, prepared: torch.fx.GraphModule) -> None:
        from torchao.quantization.pt2e.observer import ObserverBase

        with torch.no_grad():
            for image in self.images.to(torch.float32).split(1):
                prepared(image)
        fixed = []
        for node in prepared.graph.nodes:
            if node.op != "call_module" or not isinstance(getattr(prepared, node.target), ObserverBase):
                continue
            paths = [path for path in _consumer_paths(node) if path in self.ranges]
            if paths:
                template = getattr(prepared, node.target)
                setattr(prepared, node.target, fixed_range_observer(template, self.ranges[paths[0]]))
                # a linear split into chunks has one observer per chunk
                fixed.extend(path for path in paths if path not in fixed)
        missing = sorted(set(self.ranges) - set(fixed))
        if missing:
            raise NotDeployableError(
                f"no PT2E observer found on the input of {', '.join(missing)}: the graph passes "
                "no longer leave these linears' inputs quantized"
            )
        self.fixed = fixed

    def onnx_tensor_overrides(self, exported_onnx: str | Path, prepared_onnx: str | Path) -> dict:
        """The same ranges for ONNX Runtime's static QDQ quantization (see
        `onnx_tensor_overrides`)."""
        return onnx_tensor_overrides(exported_onnx, prepared_onnx, self.ranges)


@dataclass(frozen=True, eq=False)
class DeployableInt8:
    """The folded float model and its int8 calibration (ranges and manifest record in
    `calibrator`)."""

    model: VisionTransformer
    calibrator: RangeCalibrator

    def lowering_spec(self, targets, **options):
        """A `lowering.export.LoweringSpec` for `targets` with our calibration: the
        calibrator for the PT2E paths, its images for ONNX Runtime's."""
        from lowering.export import CalibrationSet, LoweringSpec

        calibration = CalibrationSet(self.calibrator.images.to(torch.float32), self.calibrator.description)
        return LoweringSpec(targets=tuple(targets), calibration=calibration, calibrator=self.calibrator, **options)


def deployable_int8(
    calibrated: CalibratedModel, images: torch.Tensor, evaluation: ImageDataset | None = None
) -> DeployableInt8:
    """The deployable int8 form of a W8A8 calibrated model.

    `images`: the calibration images it was calibrated on (the runtimes' observers of the
    tensors our simulation does not quantize see them too). `evaluation`: a data set on
    which to record the top-1 of the float model and of the simulated one in the
    manifest record (the deployed top-1 comes from evaluating the artifact).
    """
    config = calibrated.config
    if config.weight_bits != DEPLOYABLE_BITS or config.activation_bits != DEPLOYABLE_BITS:
        raise NotDeployableError(
            f"the int8 runtimes need W8A8, the model is calibrated {config.label}: "
            "calibrate with QuantConfig.repq(8, 8)"
        )
    if config.post_layernorm == "per-channel":
        raise NotDeployableError(
            "per-channel LayerNorm outputs have no int8 kernel: use post_layernorm='reparameterized'"
        )
    folded = float_model(calibrated.model)
    reparameterized = config.post_layernorm == "reparameterized"
    settings = {
        "method": "RepQ-ViT scale reparameterization" if reparameterized else f"{config.range_search} ranges",
        "simulated": calibrated.settings(),
        "folded_into_weights": "per-channel post-LayerNorm ranges made per-tensor, folded into each "
        "LayerNorm affine and the linears after it" if reparameterized else None,
        "fixed_ranges": "inputs of every linear and of the patch convolution, from the simulated calibration",
        "integer": "linears and the patch convolution (int8 weights per output channel, int8 inputs), "
        "plus what the backend's own quantizer annotates (see the backend's record)",
        "float": "LayerNorm, softmax, GELU",
        "simulated_only": list(SIMULATED_ONLY),
    }
    if evaluation is not None:
        from lowering.data.accuracy import eager_predictor, measure_accuracy
        from vitdeploy.metrics import TOP1

        spec = getattr(folded, "spec", None)
        metric = (spec.metric if spec is not None else None) or TOP1
        settings["accuracy"] = {
            "dataset": evaluation.description,
            "unit": "fraction" if metric.percent else "target",
            f"float_{metric.name}": measure_accuracy(eager_predictor(folded), evaluation, metric=metric).value,
            f"simulated_{metric.name}": measure_accuracy(eager_predictor(calibrated.model), evaluation,
                                                         metric=metric).value,
        }
    ranges = linear_input_ranges(calibrated.model)
    return DeployableInt8(folded, RangeCalibrator(ranges, images, calibrated.calibration, settings))


def onnx_tensor_overrides(
    exported_onnx: str | Path, prepared_onnx: str | Path, ranges: dict[str, InputRange]
) -> dict[str, list[dict]]:
    """ONNX Runtime `TensorQuantOverrides` (the `extra_options` entry of
    `quantize_static`) fixing the input of each linear in `ranges` to our range.

    `exported_onnx` is the dynamo exporter's model, whose MatMul/Gemm/Conv nodes carry
    their module path (metadata "pkg.torch.onnx.name_scopes"); `prepared_onnx` is that
    model after ONNX Runtime's `quant_pre_process`, which drops the metadata but keeps
    node names as prefixes (a fused node is named "<original>/<fusion>"). The override
    goes on the prepared node's input (and, through reshapes and slices, on the tensor
    they read, whose quantization ONNX Runtime propagates to them) as `rmin`/`rmax` (float32 scalars, as ONNX
    Runtime's range code needs), so ONNX Runtime derives scale and zero point for its
    own code type (uint8: our scale and zero point).
    """
    import onnx

    paths = {}
    for node in onnx.load(str(exported_onnx), load_external_data=False).graph.node:
        path = _onnx_module_path(node) if node.op_type in _ONNX_LAYERS else None
        if path in ranges:
            paths[node.name] = path
    prepared = onnx.load(str(prepared_onnx), load_external_data=False).graph
    producers = {output: node for node in prepared.node for output in node.output}
    overrides: dict[str, list[dict]] = {}
    for node in prepared.node:
        path = paths.get(node.name.split("/")[0]) if node.op_type in _ONNX_LAYERS else None
        if path is None:
            continue
        fixed = [{"rmin": np.float32(ranges[path].low), "rmax": np.float32(ranges[path].high)}]
        tensor = node.input[0]
        overrides[tensor] = fixed
        # ONNX Runtime gives a reshape's output its input's quantization: fix both.
        while tensor in producers and producers[tensor].op_type in _SAME_VALUES:
            tensor = producers[tensor].input[0]
            overrides[tensor] = fixed
    return overrides


_ONNX_LAYERS = ("MatMul", "Gemm", "Conv")
_SAME_VALUES = ("Reshape", "Gather", "Slice", "Transpose", "Squeeze", "Unsqueeze", "Flatten")


def _onnx_module_path(node) -> str | None:
    """The module path of a dynamo-exported node: the last-but-one name scope."""
    for prop in node.metadata_props:
        if prop.key == "pkg.torch.onnx.name_scopes":
            scopes = ast.literal_eval(prop.value)
            return scopes[-2] if len(scopes) >= 2 else None
    return None


def repq_int8(model: nn.Module, calibration) -> DeployableInt8:
    """RepQ-ViT W8A8 ranges for `model`, calibrated on `calibration` (a
    `lowering.export.CalibrationSet`), ready to lower: lower `.model` (folded; a branched
    model is reparameterized first) with `.calibrator` in the LoweringSpec."""
    from lowering.quant.calibrate import calibrate
    from lowering.quant.config import QuantConfig
    from lowering.reparam import reparameterize

    images = calibration.images.to(torch.float32)
    calibrated = calibrate(reparameterize(model), images, QuantConfig.repq(8, 8), calibration.description)
    return deployable_int8(calibrated, images)
