"""Tests of the benchmark suite's own helpers (no timing assertions)."""

import json
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
