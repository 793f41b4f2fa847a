"""Tests of the benchmark suite's own helpers (no assertions on speed)."""

import json
import time
from pathlib import Path

import pytest

from bench.matmul import summarize, vit_gemms
from bench.runtimes import demo_accuracy_drops
from bench.run import parse_args
from bench.tables import interval, markdown_table
from lowering.models import count_macs, create, resolve_spec


@pytest.mark.parametrize("name, overrides", [("deit_tiny", {}), ("vit_tiny", {"depth": 3, "branches": 4}),
                                             ("deit_tiny_distilled", {"img_size": 64})])
def test_vit_gemms_add_up_to_count_macs(name, overrides):
    spec = resolve_spec(name, **overrides)
    model = create(name, **overrides)
    total = sum(count * m * k * n for _, count, m, k, n in vit_gemms(spec))
    assert total == count_macs(model, (1, 3, spec.img_size, spec.img_size))


def test_summarize_takes_the_median_per_kernel_and_shape():
    rows = [{"library": "torch", "dtype": "fp32", "shape": "fc1", "m": 2, "k": 3, "n": 4, "threads": 1, "ms": ms}
            for ms in (1.0, 2.0, 10.0)]
    (summary,) = summarize(rows)
    assert summary["p50_ms"] == 2.0
    assert summary["n_calls"] == 3
    assert summary["gflops"] == pytest.approx(2 * 24 / 2e-3 / 1e9)


def test_demo_accuracy_drops_pairs_int8_with_fp32_of_the_same_model_and_backend(tmp_path: Path):
    def entry(folder, backend, quant, top1):
        return {"artifact_path": f"results/demo/artifacts/{folder}/m.{quant}", "backend": backend, "quant": quant,
                "top1": top1, "dataset": "digits", "num_images": 100}

    path = tmp_path / "accuracy.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in (
        entry("a", "onnx", "fp32", 0.90), entry("a", "onnx", "int8", 0.88),
        entry("b", "onnx", "fp32", 0.50), entry("a", "executorch", "int8", 0.1))))
    (drop,) = demo_accuracy_drops(path)
    assert (drop["model"], drop["backend"], drop["quant"]) == ("a", "onnx", "int8")
    assert drop["drop_points"] == pytest.approx(2.0)


def test_markdown_table_formats_missing_values_and_callables():
    table = markdown_table([{"a": 1.23456, "b": None}], [("A", "a"), ("B", "b"), ("C", lambda r: "x")])
    assert table.splitlines()[2] == "| 1.23 | - | x |"


def test_interval_shows_the_point_and_its_bounds():
    row = {"speedup": 1.5, "speedup_ci_low": 1.25, "speedup_ci_high": 1.75}
    assert interval(row, "speedup") == "1.500 [1.250, 1.750]"
    assert interval({"speedup": None, "note": "failed: x"}, "speedup") == "failed: x"


def test_parse_args_rejects_unknown_sections():
    assert parse_args(["--only", "reparam,limit"]).sections == ["reparam", "limit"]
    with pytest.raises(SystemExit):
        parse_args(["--only", "nonsense"])


def test_parse_args_takes_a_subset_of_zoo_models():
    assert parse_args(["--only", "zoo", "--models", "mobilevitv2, vit"]).models == ("mobilevitv2", "vit")
    assert parse_args(["--only", "zoo"]).models is None


def test_op_profiles_read_each_runtimes_own_profiler(tmp_path: Path, monkeypatch):
    """A tiny ViT through ExecuTorch (ETDump) and ONNX Runtime (its profiler): the matrix
    products are found and named the way each runtime names them, also by the ETDump
    worker process at another thread count."""
    import torch

    from bench.op_profile import executorch_op_profiles_at, op_profile_table, op_profiles
    from lowering.export import LoweringSpec, Target, lower_model

    monkeypatch.setenv("VITDEPLOY_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(0)
    model = create("vit_tiny", depth=1, img_size=32, num_classes=10).eval()
    spec = LoweringSpec(targets=(Target("executorch", "fp32"), Target("onnx", "fp32")))
    artifacts = {str(a.target): a for a in lower_model(model, spec, log=lambda *_: None)}
    runs, start = 2, time.perf_counter()
    rows = op_profiles(artifacts, runs=runs, threads=None)  # this process's ExecuTorch pool is sized already
    profiled_ms = (time.perf_counter() - start) * 1e3
    ops = {(row["artifact"], row["op_type"]) for row in rows}
    assert ("executorch/fp32", "Fully Connected (NC, F32) GEMM") in ops
    assert any(label == "onnx/fp32" and op in ("Gemm", "MatMul", "FusedMatMul") for label, op in ops)
    for label in artifacts:
        mine = [row for row in rows if row["artifact"] == label]
        total = sum(row["ms_per_run"] for row in mine)
        assert 0 < runs * total < profiled_ms  # the ops of all runs took part of the profiling's time
        assert all(row["share"] == pytest.approx(row["ms_per_run"] / total) for row in mine)
    table = op_profile_table(rows, top=2)
    assert table.splitlines()[0] == "| op type | executorch/fp32 | onnx/fp32 |" and "| all ops |" in table
    at_two = executorch_op_profiles_at({"ours": artifacts["executorch/fp32"].path}, threads=2, runs=runs)
    assert "Fully Connected (NC, F32) GEMM" in {row["op_type"] for row in at_two["ours"]}


def test_split_linears_turns_the_split_off_and_on_by_the_pass_settings():
    """bench.split_linears compares whole and split programs by swapping the pass."""
    import torch

    from bench.split_linears import passes_with
    from lowering.export.passes import apply_passes
    from lowering.export.passes.split_linears import split_wide_linears
    from lowering.reparam import reparameterize

    model = reparameterize(create("vit_tiny", depth=1, branches=4, img_size=32, num_classes=10)).eval()
    program = torch.export.export(model, (torch.randn(1, 3, 32, 32),))

    def fired(split):
        return "split_linears" in apply_passes(program, passes_with(split))[1]

    assert not fired(split_wide_linears())  # 5 tokens: whole
    assert fired(split_wide_linears(from_tokens=0))
    assert not fired(split_wide_linears(max_width=None, from_tokens=0))