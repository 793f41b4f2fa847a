"""parse_executor_runner on recorded executor_runner logs (tests/fixtures/native_output/executor_runner)."""

from pathlib import Path

import pytest

from bench_runner.harness.base import HarnessError
from bench_runner.harness.executor_runner import logcat_after
from bench_runner.harness.parsers import HarnessOutputError
from bench_runner.harness.parsers.executor_runner import parse_executor_runner

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "native_output" / "executor_runner"


def read(name: str) -> str:
    return (FIXTURES / name).read_text()


def test_per_iteration_log_gives_every_run_in_milliseconds():
    output = parse_executor_runner(read("v1_4_xnnpack_12_runs.stdout"), read("v1_4_xnnpack_12_runs.stderr"))
    assert output.num_executions == 12
    assert len(output.iteration_ms) == 12
    assert output.iteration_ms[0] == pytest.approx(25.272202)
    assert output.iteration_ms[-1] == pytest.approx(19.350422)
    assert output.total_ms == pytest.approx(228.873285)
    assert sum(output.iteration_ms) == pytest.approx(output.total_ms, abs=1e-4)
    assert output.load_ms == pytest.approx(46.318772)
    assert output.threads == 4
    assert output.from_aggregate is False


def test_runner_before_v1_3_gives_only_the_aggregate():
    output = parse_executor_runner(read("v1_2_total_only.stdout"), read("v1_2_total_only.stderr"))
    assert output.from_aggregate is True
    assert output.iteration_ms == ()
    assert output.num_executions == 10
    assert output.mean_ms == pytest.approx(19.3481122)
    assert output.load_ms is None


def test_carriage_returns_of_an_adb_pty_are_ignored():
    stderr = read("v1_4_xnnpack_12_runs.stderr").replace("\n", "\r\n")
    output = parse_executor_runner("", stderr)
    assert output.iteration_ms[1] == pytest.approx(18.576376)


def test_log_merged_into_stdout_is_found():
    merged = read("v1_4_xnnpack_12_runs.stderr") + read("v1_4_xnnpack_12_runs.stdout")
    assert parse_executor_runner(merged, "").num_executions == 12


def test_missing_delegate_names_the_backend_and_the_fix():
    with pytest.raises(HarnessOutputError) as caught:
        parse_executor_runner("", read("missing_delegate.stderr"))
    error = caught.value
    assert isinstance(error, HarnessError)
    assert error.tool == "executor_runner"
    assert "Backend XnnpackBackend is not registered." in error.line
    assert "-DEXECUTORCH_BUILD_XNNPACK=ON" in str(error)


def test_failed_load_quotes_the_abort_and_the_error_before_it():
    with pytest.raises(HarnessOutputError) as caught:
        parse_executor_runner("", read("missing_model.stderr"))
    assert "FileDataLoader::from() failed: 0x22" in caught.value.line
    assert "No such file or directory" in str(caught.value)


def test_killed_run_quotes_the_last_line_it_logged():
    with pytest.raises(HarnessOutputError, match="ends before") as caught:
        parse_executor_runner("", read("killed_mid_run.stderr"))
    assert "Iteration 5 of 12" in caught.value.line


def test_build_without_logging_says_how_to_rebuild():
    with pytest.raises(HarnessOutputError, match="EXECUTORCH_ENABLE_LOGGING=ON"):
        parse_executor_runner(read("no_logging.stdout"), "")


def test_gflags_error_is_quoted_when_there_is_no_log():
    stderr = "ERROR: unknown command line flag 'print_output'\n"
    with pytest.raises(HarnessOutputError) as caught:
        parse_executor_runner("", stderr)
    assert caught.value.line == "ERROR: unknown command line flag 'print_output'"


def test_android_pal_log_is_parsed_after_the_marker():
    log = logcat_after("vitdeploy-7d41be09", read("android_pal_logcat_raw.txt"))
    output = parse_executor_runner(read("android_pal.stdout"), log)
    assert output.num_executions == 12
    assert output.iteration_ms[0] == pytest.approx(25.258176)
    assert output.load_ms == pytest.approx(45.210604)


def test_log_holding_two_runs_is_refused():
    with pytest.raises(HarnessOutputError, match="more than one run"):
        parse_executor_runner(read("android_pal.stdout"), read("android_pal_logcat_raw.txt"))


def test_iterations_that_do_not_add_up_to_the_total_are_refused():
    stderr = read("v1_4_xnnpack_12_runs.stderr").replace(
        "Iteration 3 of 12: 18.299225 ms", "Iteration 3 of 12: 28.299225 ms"
    )
    with pytest.raises(HarnessOutputError, match="add up"):
        parse_executor_runner("", stderr)


def test_missing_iteration_line_is_refused():
    lines = [line for line in read("v1_4_xnnpack_12_runs.stderr").splitlines() if "Iteration 7 of 12" not in line]
    with pytest.raises(HarnessOutputError, match="out of sequence"):
        parse_executor_runner("", "\n".join(lines))
