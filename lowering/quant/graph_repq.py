"""RepQ-ViT's scale reparameterization as a transformation of an exported program, for
any model outside the registry.

It applies wherever a LayerNorm over the last dimension, with a weight and a bias, feeds
only linear layers that read it as their input, directly or through operators that
move, select or average tokens and leave the channels alone (the post-LayerNorm pattern
of every pre-norm transformer: attention projections, the MLP's first linear, the head
after the class token or the token mean, Swin's shifted windows), and each of those
parameters belongs to that one node. On the calibration images each such
LayerNorm's output gets a per-channel 8-bit min-max range, which `lowering.quant.repq.ScaleFold` folds into the LayerNorm's
affine and the linears' weights and biases; the linears' inputs then take the per-tensor
range the fold yields, through the same `RangeCalibrator` the registry's ViTs use. Every
other LayerNorm stays as it was, with the reason recorded.

    fold = fold_post_layer_norm(model_input, calibration)
    fold.model        # a ModelInput with the folded program
    fold.calibrator   # its fixed linear-input ranges and the manifest record

The registry's ViTs keep `lowering.quant.deployable.repq_int8`, whose simulated
calibration also fixes the other linears' input ranges.
"""

from __future__ import annotations

import copy
import warnings
from collections import Counter
from dataclasses import dataclass, replace

import torch

from lowering.export.unsupported import LoweringError, module_path, op_name
from lowering.quant.deployable import DEPLOYABLE_BITS, InputRange, RangeCalibrator
from lowering.quant.quantizers import UniformQuantizer
from lowering.quant.repq import ScaleFold
from lowering.sources import ModelInput

# Min-max, so that the per-tensor range after the fold covers every channel's whole range,
# as the runtimes' own min-max observers would per channel (percentile clipping measured
# slightly worse on the digits).
RANGE_SEARCH = "minmax"
LAYER_NORM = torch.ops.aten.layer_norm.default
LINEAR = torch.ops.aten.linear.default
CHANNEL_PRESERVING = frozenset({
    torch.ops.aten.select.int, torch.ops.aten.slice.Tensor, torch.ops.aten.permute.default,
    torch.ops.aten.mean.dim, torch.ops.aten.roll.default, torch.ops.aten.dropout.default,
    torch.ops.aten.view.default, torch.ops.aten.reshape.default, torch.ops.aten.flatten.using_ints,
    torch.ops.aten.clone.default, torch.ops.aten.contiguous.default, torch.ops.aten.pad.default,
    torch.ops.aten.constant_pad_nd.default,
})
WEIGHTED = (LINEAR, torch.ops.aten.conv1d.default, torch.ops.aten.conv2d.default, torch.ops.aten.convolution.default)
DATA_MOVEMENT = frozenset({
    "view", "reshape", "permute", "transpose", "expand", "slice", "select", "cat", "unsqueeze", "squeeze",
    "flatten", "contiguous", "clone", "getitem", "unbind", "split", "split_with_sizes", "chunk", "t", "alias",
    "dropout", "detach", "unflatten", "_assert_tensor_metadata", "lift_fresh_copy",
})


@dataclass(frozen=True)
class FoldSite:
    """A LayerNorm (node `node`, module path `norm`) whose output only `linears` read,
    with the names of the parameters the fold rewrites."""

    node: str
    norm: str
    linears: tuple[torch.fx.Node, ...]
    norm_params: tuple[str, str]
    linear_params: tuple[tuple[str, str], ...]

    @property
    def linear_paths(self) -> list[str]:
        return [module_path(linear) for linear in self.linears]


@dataclass(frozen=True)
class GraphFold:
    """The folded model, its calibration hook, and where the fold applied and did not."""

    model: ModelInput
    calibrator: RangeCalibrator
    folded: tuple[FoldSite, ...]
    unfolded: tuple[tuple[str, str], ...]

    def summary(self) -> str:
        """One line for the CLI."""
        linears = sum(len(site.linears) for site in self.folded)
        text = f"RepQ-ViT fold: {len(self.folded)} LayerNorm(s) into {linears} linear(s)"
        if self.unfolded:
            shown = "; ".join(f"{path}: {reason}" for path, reason in self.unfolded[:3])
            more = f" and {len(self.unfolded) - 3} more" if len(self.unfolded) > 3 else ""
            text += f"; {len(self.unfolded)} left as they are ({shown}{more})"
        return text


def _state_name(program: torch.export.ExportedProgram, node) -> str | None:
    """The parameter or buffer a placeholder node stands for."""
    if not isinstance(node, torch.fx.Node) or node.op != "placeholder":
        return None
    signature = program.graph_signature
    return signature.inputs_to_parameters.get(node.name) or signature.inputs_to_buffers.get(node.name)


def _owned(program, node, user) -> str | None:
    """The state name of `node` if `user` is its only reader."""
    name = _state_name(program, node)
    return name if name is not None and list(node.users) == [user] else None


def _linear_readers(node: torch.fx.Node) -> tuple[list[torch.fx.Node], list[torch.fx.Node]]:
    """The linears reading `node` as their input, directly or through operators that act
    on each channel alike (`_per_channel`), and the other nodes that read it."""
    linears, others = [], []
    for user in node.users:
        if user.target is LINEAR and user.args[0] is node:
            linears.append(user)
        elif user.args and user.args[0] is node and _per_channel(user):
            found, other = _linear_readers(user)
            linears += found
            others += other
        else:
            others.append(user)
    return linears, others


def _per_channel(node: torch.fx.Node) -> bool:
    """Whether `node` moves, selects or averages tokens and leaves the channels (the last
    dimension) as they are, so that it commutes with a per-channel affine map. (Padding
    only when it pads nothing: the zeros it adds are not the image of zeros.)"""
    if node.op != "call_function" or node.target not in CHANNEL_PRESERVING:
        return False
    before, after = node.args[0].meta.get("val"), node.meta.get("val")
    if not isinstance(before, torch.Tensor) or not isinstance(after, torch.Tensor) or after.dim() == 0:
        return False
    if after.shape[-1] != before.shape[-1]:
        return False
    last = before.dim() - 1
    args = list(node.args) + [None] * 4
    if node.target is torch.ops.aten.permute.default:
        return args[1][-1] % before.dim() == last
    if node.target in (torch.ops.aten.select.int, torch.ops.aten.slice.Tensor):
        return (args[1] if args[1] is not None else 0) % before.dim() != last
    if node.target in (torch.ops.aten.mean.dim, torch.ops.aten.roll.default):
        dims = args[1] if node.target is torch.ops.aten.mean.dim else args[2]
        return dims is not None and all(d % before.dim() != last for d in (dims if isinstance(dims, (list, tuple)) else [dims]))
    if node.target in (torch.ops.aten.pad.default, torch.ops.aten.constant_pad_nd.default):
        return not any(args[1])
    if node.target is torch.ops.aten.dropout.default:
        return args[2] is False or args[1] == 0
    return True  # views, reshapes, copies: same last dimension, so the same rows of channels


def _site(program: torch.export.ExportedProgram, norm: torch.fx.Node) -> FoldSite | str:
    """The fold site of one LayerNorm node, or why the fold cannot apply there."""
    args = list(norm.args) + [None] * (5 - len(norm.args))
    _, shape, weight, bias = args[:4]
    if len(shape) != 1:
        return f"normalizes over {len(shape)} dimensions, not one"
    norm_params = (_owned(program, weight, norm), _owned(program, bias, norm))
    if None in norm_params:
        return "has no weight and bias of its own"
    linears, others = _linear_readers(norm)
    if others:
        kinds = sorted({op_name(user.target) if user.op == "call_function" else user.op for user in others})
        return f"its output also feeds {', '.join(kinds)}"
    linear_params = []
    for linear in linears:
        owned = [_owned(program, arg, linear) for arg in linear.args[1:3]]
        if len(owned) < 2 or None in owned:
            return f"{module_path(linear)} has no weight and bias of its own"
        linear_params.append(tuple(owned))
    return FoldSite(norm.name, module_path(norm), tuple(linears), norm_params, tuple(linear_params))


def fold_sites(program: torch.export.ExportedProgram) -> tuple[list[FoldSite], list[tuple[str, str]]]:
    """The LayerNorms of `program` the fold applies to, and (module path, reason) for the others."""
    sites, unfolded = [], []
    for node in program.graph.nodes:
        if node.op == "call_function" and node.target is LAYER_NORM:
            site = _site(program, node)
            if isinstance(site, FoldSite):
                sites.append(site)
            else:
                unfolded.append((module_path(node), site))
    return sites, unfolded


class _OutputRecorder(torch.fx.Interpreter):
    """Runs a program's graph and keeps the outputs of the named nodes, as rows of channels."""

    def __init__(self, program: torch.export.ExportedProgram, names: set[str]):
        super().__init__(program.graph_module)
        self.program = program
        self.names = names
        self.outputs: dict[str, list[torch.Tensor]] = {name: [] for name in names}

    def run_node(self, node):
        result = super().run_node(node)
        if node.name in self.names:
            self.outputs[node.name].append(result.detach().reshape(-1, result.shape[-1]))
        return result

    def record(self, image: torch.Tensor) -> None:
        state = {**self.program.state_dict, **self.program.constants}
        inputs = [image if spec.kind.name == "USER_INPUT" else state[spec.target]
                  for spec in self.program.graph_signature.input_specs]
        self.run(*inputs)


@torch.no_grad()
def _channel_ranges(program, sites: list[FoldSite], images: torch.Tensor) -> dict[str, UniformQuantizer]:
    """A per-channel 8-bit quantizer fitted to each site's LayerNorm output on `images`."""
    recorder = _OutputRecorder(program, {site.node for site in sites})
    for image in images.split(1):
        recorder.record(image)
    quantizers = {}
    for site in sites:
        quantizer = UniformQuantizer(DEPLOYABLE_BITS, channel_axis=1, range_search=RANGE_SEARCH)
        quantizer.fit(torch.cat(recorder.outputs.pop(site.node)))
        quantizers[site.node] = quantizer
    return quantizers


def _replace_state(program: torch.export.ExportedProgram, name: str, value: torch.Tensor) -> None:
    old = program.state_dict[name]
    program.state_dict[name] = torch.nn.Parameter(value, requires_grad=False) if isinstance(old, torch.nn.Parameter) else value


def float_operators(program: torch.export.ExportedProgram) -> dict[str, int]:
    """The compute operators of `program` other than linears and convolutions, with counts:
    what a linears-and-convolutions int8 quantizer leaves in float."""
    counts = Counter(
        op_name(node.target) for node in program.graph.nodes
        if node.op == "call_function" and node.target not in WEIGHTED
        and op_name(node.target).rsplit(".", 1)[-1] not in DATA_MOVEMENT
    )
    return dict(sorted(counts.items()))


def _exported(model: ModelInput) -> torch.export.ExportedProgram:
    if model.program is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch's own pytree deprecation inside deepcopy
            return copy.deepcopy(model.program)
    try:
        return torch.export.export(model.model, (model.example,))
    except Exception as exc:  # torch.export raises many error types for untraceable code
        raise LoweringError(f"torch.export failed on {model.label}, so the RepQ-ViT fold cannot see its graph: {exc}") from exc


@torch.no_grad()
def fold_post_layer_norm(model: ModelInput, calibration) -> GraphFold:
    """RepQ-ViT's fold on `model`'s exported graph, calibrated on `calibration` (a
    `lowering.export.CalibrationSet`): see the module docstring."""
    program = _exported(model)
    sites, unfolded = fold_sites(program)
    images = calibration.images.to(torch.float32)
    quantizers = _channel_ranges(program, sites, images)
    linear_paths = Counter(module_path(node) for node in program.graph.nodes if node.target is LINEAR)
    ranges = {}
    for site in sites:
        quantizer = quantizers[site.node]
        fold = ScaleFold.of(quantizer.scale, quantizer.zero_point)
        gamma, beta = fold.norm(*(program.state_dict[name] for name in site.norm_params))
        for name, value in zip(site.norm_params, (gamma, beta)):
            _replace_state(program, name, value)
        for names in site.linear_params:
            for name, value in zip(names, fold.linear(*(program.state_dict[name] for name in names))):
                _replace_state(program, name, value)
        fixed = InputRange(float(fold.tensor_scale), int(fold.tensor_zero_point), DEPLOYABLE_BITS)
        ranges.update({path: fixed for path in site.linear_paths if linear_paths[path] == 1})
    settings = {
        "method": "RepQ-ViT scale reparameterization, on the exported graph",
        "range_search": f"{RANGE_SEARCH}, per channel of each folded LayerNorm's output",
        "folded_into_weights": [{"layer_norm": site.norm, "linears": site.linear_paths} for site in sites],
        "not_folded": [{"layer_norm": path, "reason": reason} for path, reason in unfolded],
        "fixed_ranges": "inputs of the linears after each folded LayerNorm, per tensor, from the fold",
        "float_operators": float_operators(program),
    }
    calibrator = RangeCalibrator(ranges, images, calibration.description, settings)
    folded = replace(model, model=program.module(), program=program)
    return GraphFold(folded, calibrator, tuple(sites), tuple(unfolded))
