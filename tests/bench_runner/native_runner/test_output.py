"""The native runner's output parser, on a recorded run and on broken copies of it.

recorded_vit_tiny_fp32.txt: stdout and stderr (merged) of
`vitdeploy_et_runner --model vit_tiny-executorch-fp32.pte --warmup 3 --iterations 10
--threads 1 --cpu-list 0 --input-seed 0`, the 1-block ViT-Tiny at 32 px with 8 px patches
lowered by lower_model, on the x86 host with the executorch 1.5.1 wheel.
"""

from pathlib import Path

import pytest

from bench_runner.harness.parsers import HarnessOutputError
from bench_runner.native_runner.output import OutputChecksum, describe_failure, parse_runner_output

RECORDED = (Path(__file__).with_name("recorded_vit_tiny_fp32.txt")).read_text(encoding="utf-8")
RECORDED_LINES = RECORDED.splitlines()
RUNNER_LINES = [line for line in RECORDED_LINES if line.startswith("vitdeploy-runner ")]


def _replace(old: str, new: str) -> str:
    assert old in RECORDED
    return RECORDED.replace(old, new)


def test_the_recorded_run_parses_into_every_field():
    result = parse_runner_output(RECORDED)
    assert result.version == "1.5.1+cpu"
    assert (result.threads, result.cpus, result.input_seed, result.warmup) == (1, (0,), 0, 3)
    assert result.input_shapes == ((1, 3, 32, 32),)
    assert result.load_ms == 3.246845 and result.first_inference_ms == 0.254190
    assert len(result.samples_ms) == 10 and result.samples_ms[0] == 0.099208 and result.samples_ms[-1] == 0.098257
    assert result.checksum == OutputChecksum(-1.1728979675099254, 1.8867393909022212, 10)
    assert result.peak_rss_kb == 9940


def test_carriage_returns_and_the_runtime_log_around_the_records_are_skipped():
    noisy = "\r\n".join(RUNNER_LINES[:5] + ["E 00:00:00.1 executorch:method.cpp:1] noise"] + RUNNER_LINES[5:])
    assert parse_runner_output(noisy) == parse_runner_output(RECORDED)


@pytest.mark.parametrize("kept", [1, 4, 7, len(RUNNER_LINES) - 1])
def test_output_cut_after_a_line_is_truncated(kept):
    with pytest.raises(HarnessOutputError, match="ends before the done record"):
        parse_runner_output("\n".join(RUNNER_LINES[:kept]))


def test_output_cut_inside_a_line_is_garbled():
    with pytest.raises(HarnessOutputError, match="sample record needs the fields index, ms"):
        parse_runner_output("\n".join(RUNNER_LINES[:8]) + "\nvitdeploy-runner sample index=3 m")


@pytest.mark.parametrize("old, new, message", [
    ("ms=0.098337", "ms=0.O98337", "unreadable value in the sample record"),
    ("ms=0.098337", "ms=nan", "unreadable value in the sample record"),
    ("cpus=0 ", "cpus=0,x ", "unreadable value in the setup record"),
    ("shape=1x3x32x32", "shape=1x3x32x", "unreadable value in the input record"),
    ("elements=10", "elements=10 extra=1", "checksum record needs the fields"),
    ("vitdeploy-runner memory", "vitdeploy-runner memroy", "unknown record 'memroy'"),
    ("sample index=4 ", "sample index=5 ", "sample 5 where sample 4 was due"),
    ("iterations=10", "iterations=11", "10 samples for 11 iterations"),
    ("format=1", "format=2", "output format 2; this parser reads format 1"),
])
def test_garbled_output_names_what_is_wrong(old, new, message):
    with pytest.raises(HarnessOutputError, match=message):
        parse_runner_output(_replace(old, new))


def test_a_record_missing_from_a_finished_run_is_named():
    without_memory = "\n".join(line for line in RUNNER_LINES if " memory " not in line)
    with pytest.raises(HarnessOutputError, match="no memory record"):
        parse_runner_output(without_memory)


def test_two_runs_in_one_text_are_refused():
    with pytest.raises(HarnessOutputError, match="a second version record"):
        parse_runner_output(RECORDED + "\n" + RECORDED)


def test_text_without_runner_lines_says_the_runner_did_not_start():
    with pytest.raises(HarnessOutputError, match="no 'vitdeploy-runner' lines"):
        parse_runner_output("Segmentation fault\n")


def test_a_failure_is_described_by_its_exit_status_and_the_runtimes_log():
    stderr = (
        "E 00:00:00.002816 executorch:method.cpp:822] Missing operator: [0] custom::twice.out\n"
        "E 00:00:00.002832 executorch:method.cpp:822] Missing operator: [3] custom::twice.out\n"
        "vitdeploy_et_runner: error: cannot load method 'forward': Error::OperatorMissing (error 0x14)\n"
    )
    assert describe_failure(5, stderr) == (
        "vitdeploy_et_runner: method load failed (exit status 5): cannot load method 'forward': "
        "Error::OperatorMissing (error 0x14); missing: custom::twice.out"
    )
    assert describe_failure(-11, "") == "vitdeploy_et_runner: the runner crashed or was killed (exit status -11)"
