"""ExecuTorch with the XNNPACK delegate: `.pte` programs, fp32, static and dynamic int8.

torch.export -> graph passes (`passes.XNNPACK_PASSES`, run by the pipeline, which put a
ViT in one delegate) -> (PT2E int8) -> graph fixes (`graph_fixes`) ->
to_edge_transform_and_lower with XnnpackPartitioner -> to_executorch. The delegation summary counts the operators
inside the XNNPACK delegate(s) and those left to ExecuTorch's portable kernels, with the
partitioner's reasons where it gave one. An operator for which the runtime has no kernel
at all is an error naming the operator and its module.
"""

from __future__ import annotations

import contextlib
import copy
import logging
from collections import Counter, defaultdict

import torch

from lowering.export import pt2e
from lowering.export.backend import Backend
from lowering.export.graph_fixes import make_softmax_layout_safe, remove_no_ops
from lowering.export.job import BuildJob, Built
from lowering.export.passes import XNNPACK_PASSES
from lowering.verify import DYNAMIC_INT8, EXACT, STATIC_INT8
from lowering.export.unsupported import (
    UnsupportedOpError,
    describe_op,
    explain_failure,
    is_operator,
    module_path,
    op_name,
)

_PARTITIONER_LOGGER = "executorch.backends.xnnpack"


class _PartitionReasons(logging.Handler):
    """Collects the XNNPACK partitioner's "why not partitioned" notes by node name."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.by_node: dict[str, str] = {}

    def emit(self, record: logging.LogRecord) -> None:
        node, reason = getattr(record.msg, "node", None), getattr(record.msg, "reason", None)
        if node is not None and reason:
            self.by_node.setdefault(node.name, reason)


@contextlib.contextmanager
def _partition_reasons():
    logger = logging.getLogger(_PARTITIONER_LOGGER)
    handler, level, propagate = _PartitionReasons(), logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield handler.by_node
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


def delegation_summary(graph_module: torch.fx.GraphModule, reasons: dict[str, str]) -> dict:
    """Delegates, operators inside them by type, and operators that fell back by type
    (with their modules and the partitioner's reasons)."""
    inside: Counter = Counter()
    outside: Counter = Counter()
    fallback_modules: dict[str, list[str]] = defaultdict(list)
    fallback_reasons: dict[str, list[str]] = defaultdict(list)
    delegates = 0
    for node in graph_module.graph.nodes:
        if node.op == "get_attr" and node.name.startswith("lowered_module"):
            delegates += 1
            lowered = getattr(graph_module, node.target)
            inside.update(op_name(n.target) for n in lowered.original_module.graph.nodes if is_operator(n))
        elif is_operator(node):
            op = op_name(node.target)
            outside[op] += 1
            path = module_path(node)
            if path not in fallback_modules[op]:
                fallback_modules[op].append(path)
            reason = reasons.get(node.name, "no XNNPACK node config for this operator")
            if reason not in fallback_reasons[op]:
                fallback_reasons[op].append(reason)
    return {
        "delegate": "XnnpackBackend",
        "num_delegates": delegates,
        "ops_in_delegates": sum(inside.values()),
        "delegated_ops": dict(sorted(inside.items())),
        "fallback_ops": dict(sorted(outside.items())),
        "fallback_modules": dict(fallback_modules),
        "fallback_reasons": dict(fallback_reasons),
    }


def _check_kernels(program_manager) -> None:
    """Every operator the program runs outside a delegate needs a kernel in the runtime."""
    from executorch.runtime import Runtime

    available = Runtime.get().operator_registry.operator_names
    plan = program_manager.executorch_program.execution_plan[0]
    missing = {op.name.replace("::", ".") for op in plan.operators if f"{op.name}.{op.overload}" not in available}
    if not missing:
        return
    paths: dict[str, list[str]] = {op: [] for op in sorted(missing)}
    for node in program_manager.exported_program().graph.nodes:
        op = op_name(node.target) if node.op == "call_function" else None
        if op in paths and module_path(node) not in paths[op]:
            paths[op].append(module_path(node))
    raise UnsupportedOpError(
        "executorch has no kernel for operator "
        + "; ".join(describe_op(op, where or ["?"]) for op, where in paths.items())
        + ": XNNPACK does not take it and the portable runtime has no kernel for it. "
        "Rewrite that module or choose another backend."
    )


def build(job: BuildJob) -> Built:
    """Lower `job` to an ExecuTorch program with the XNNPACK delegate (`.pte`)."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    quant = job.target.quant
    # Lowering changes the program it is given (it deletes the constants it moves into a
    # delegate, and the int8 artifact of MobileViTv2 built after the fp32 one from the same
    # program failed verification, cosine 0.55 against 0.998 alone): each build lowers a copy.
    program, quantization = copy.deepcopy(job.exported), None
    if quant in ("int8", "dynamic-int8"):
        dynamic = quant == "dynamic-int8"
        program = pt2e.quantize(program, job.example, dynamic, job.calibrator, job.int8_elementwise)
        quantization = pt2e.settings(
            dynamic,
            None if dynamic else job.calibration_description,
            integer=pt2e.integer_operators(dynamic, job.int8_elementwise),
            floating="everything else (norms, softmax, activations, products of two activations)",
        )
    try:
        with _partition_reasons() as reasons:
            edge = to_edge_transform_and_lower(make_softmax_layout_safe(remove_no_ops(program)),
                                               partitioner=[XnnpackPartitioner()])
        delegation = delegation_summary(edge.exported_program().graph_module, reasons)
        manager = edge.to_executorch()
    except Exception as exc:  # exir raises assorted exception types for refused graphs
        raise explain_failure("executorch", exc, program.graph) from exc
    _check_kernels(manager)
    path = job.stem.with_suffix(BACKEND.suffix)
    with open(path, "wb") as handle:
        manager.write_to_file(handle)
    return Built(path, delegation, quantization, {"partitioner": "XnnpackPartitioner"})


BACKEND = Backend(
    name="executorch", runtime="executorch", build=build,
    modes={"fp32": EXACT, "int8": STATIC_INT8, "dynamic-int8": DYNAMIC_INT8}, calibrated_modes=("int8",),
    toolchain_packages=("executorch", "torchao"), passes=XNNPACK_PASSES,
)
