"""Failed records are named once per distinct error, not once per record."""

import dataclasses

from deploy.report.failures import failure_notes
from tests.deploy.report.results import bench_record

NOT_INSTALLED = "executorch is not installed there"


def failed(model: str, quant: str, repetition: int, error: str = NOT_INSTALLED):
    record = bench_record(f"{model}-{quant}", (), backend="executorch", quant=quant, repetition=repetition,
                          status="failed", error=error)
    return dataclasses.replace(record, model=model)


def test_eight_failures_with_one_error_make_one_note_naming_every_artifact_once():
    failures = [failed(model, quant, repetition)
                for model in ("m1", "m2") for quant in ("fp32", "int8") for repetition in (0, 1)]
    assert failure_notes(failures) == [
        f"Failed, not in the table ({NOT_INSTALLED}): m1/executorch/fp32 (m1-fp32.onnx), "
        "m1/executorch/int8 (m1-int8.onnx), m2/executorch/fp32 (m2-fp32.onnx), m2/executorch/int8 (m2-int8.onnx) "
        "(8 records)."
    ]


def test_two_errors_make_two_notes_each_with_the_first_line_of_its_error():
    failures = [failed("m1", "fp32", 0), failed("m1", "int8", 0, error="XNNPACK delegate crashed\ntrace"),
                failed("m2", "fp32", 0)]
    first, second = failure_notes(failures)
    assert first.startswith(f"Failed, not in the table ({NOT_INSTALLED}): m1/executorch/fp32")
    assert first.endswith("m2/executorch/fp32 (m2-fp32.onnx) (2 records).")
    assert second == ("Failed, not in the table (XNNPACK delegate crashed): m1/executorch/int8 (m1-int8.onnx) "
                      "(1 record).")


def test_a_failure_without_error_text_says_so():
    (note,) = failure_notes([failed("m1", "fp32", 0, error=None)])
    assert note.startswith("Failed, not in the table (no error text): m1/executorch/fp32")
