"""The research attention variants against their baselines, ExecuTorch fp32 on the host:

    python -m bench.attention_variants [--quick] [--threads 1] [--out results/benchmarks]

Full-size models (224 px, 12 blocks, random weights, seed 0) lowered by `lower_model`
(through the artifact cache) and measured interleaved in one agent process: DeiT-Tiny
with softmax, ReLU and scaling attention (MPCViT's space; against softmax), DeiT-Small
with 6 (multi-head), 3, 2 and 1 key/value heads (KDGQA's setting; against 6), and
DeiT-Tiny with two gated class-attention blocks, gates folded (against DeiT-Tiny).
Writes attention_variants.md and attention_variants.csv with parameters, MACs, XNNPACK
segments, p50 and each ratio to its baseline with a paired-round 95% interval.
"""

from __future__ import annotations

import torch

from bench.artifacts import lower
from bench.command import command_line, host_bench_parser
from bench.machine import describe_machine
from bench.measure import Budget, labelled_artifacts, measure
from bench.tables import compare, interval, markdown_table, write_csv
from bench_runner.devices.host import HostDevice
from bench_runner.harness.python_agent import PythonAgentHarness
from lowering.export import Target
from lowering.models import create
from lowering.runtime import prepare_runtime

TARGET = Target("executorch", "fp32")
# label -> (registry name, overrides, baseline label)
MODELS = {
    "softmax": ("deit_tiny", {}, "softmax"),
    "relu": ("deit_tiny_relu_attn", {}, "softmax"),
    "scaling": ("deit_tiny_scaling_attn", {}, "softmax"),
    "gated class attention": ("deit_tiny_gated_class_attn", {}, "softmax"),
    "small, 6 kv heads": ("deit_small", {}, "small, 6 kv heads"),
    "small, 3 kv heads": ("deit_small", {"kv_heads": 3}, "small, 6 kv heads"),
    "small, 2 kv heads": ("deit_small_gqa", {}, "small, 6 kv heads"),
    "small, 1 kv head": ("deit_small", {"kv_heads": 1}, "small, 6 kv heads"),
}
COLUMNS = (("model", "label"), ("registry name", "name"), ("params", "params"), ("MMACs", "mmacs"),
           ("XNNPACK segments", "segments"), ("p50 ms", "p50_ms"), ("baseline", "baseline"),
           ("latency / baseline [95% CI]", "ratio"))


def main(argv: list[str] | None = None) -> int:
    parser = host_bench_parser("python -m bench.attention_variants", __doc__.splitlines()[0])
    args = parser.parse_args(argv)
    command = command_line(parser.prog, argv)
    prepare_runtime("executorch", args.threads)
    artifacts = {}
    for label, (name, overrides, _) in MODELS.items():
        torch.manual_seed(0)
        artifacts[label] = lower(create(name, **overrides), (TARGET,))[TARGET]
    device = HostDevice()
    try:
        records = measure(device, PythonAgentHarness(), labelled_artifacts(artifacts),
                          Budget(args.quick).host((args.threads,)))
    finally:
        device.cleanup()
    rows = []
    for label, (name, _, baseline) in MODELS.items():
        record, base = records[(label, args.threads)], records[(baseline, args.threads)]
        row = {"label": label, "name": name, "params": artifacts[label].manifest.model.params,  # as deployed
               "mmacs": round(artifacts[label].manifest.model.macs / 1e6, 1),
               "segments": artifacts[label].manifest.delegation.get("num_delegates"),
               "p50_ms": record.stats.p50_ms if record.stats else None, "baseline": baseline}
        if label != baseline:
            row.update(compare(base, record))
            row["ratio"] = interval(row, "latency_ratio")
        rows.append(row)
    machine = describe_machine()
    text = "\n".join([
        "# Attention variants against their baselines (ExecuTorch fp32, XNNPACK)", "",
        f"Command: `{command}`", f"Date (UTC): {machine['date_utc']}",
        f"Machine: {machine['cpu']}; {machine['cores']} cores; {machine['os']}", "",
        f"224 px, 12 blocks, random weights; {args.threads} thread(s); all artifacts interleaved in one agent "
        "process, the interval resampling paired rounds. Gated class attention adds two class-attention blocks, "
        "their gates folded into the weights before lowering; params and MACs count the deployed (folded) model.", "",
        markdown_table(rows, COLUMNS),
    ]) + "\n"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "attention_variants.md").write_text(text, encoding="utf-8")
    write_csv(rows, args.out / "attention_variants.csv")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
