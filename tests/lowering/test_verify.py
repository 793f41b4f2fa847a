import numpy as np
import pytest

from lowering.export import BACKENDS
from lowering.verify import DYNAMIC_INT8, EXACT, MIN_INPUTS, STATIC_INT8, Thresholds, VerificationError, compare, random_inputs


def _logits(seed=0, rows=32, classes=10):
    return np.random.default_rng(seed).standard_normal((rows, classes)).astype(np.float32)


def test_identical_logits_pass_every_mode_of_every_backend():
    logits = _logits()
    for backend in BACKENDS.values():
        for quant, thresholds in backend.modes.items():
            result = compare(logits, logits.copy(), thresholds, "test")
            assert result.passed, (backend.name, quant)
            assert result.max_abs_error == 0 and result.top1_agreement == 1
            assert result.cosine_similarity == pytest.approx(1)


def test_fp32_fails_beyond_1e_4_and_says_why():
    logits = _logits()
    shifted = logits.copy()
    shifted[3, 2] += 2e-4
    result = compare(logits, shifted, EXACT, "test")
    assert not result.passed and result.max_abs_error == pytest.approx(2e-4, rel=1e-3)
    assert result.failures == ("max abs error 0.0002 > 0.0001",)
    assert result.to_dict()["status"] == "failed"
    assert compare(logits, logits + 5e-5, EXACT, "test").passed


def test_quantized_modes_are_judged_by_cosine_and_report_top1():
    reference = _logits(1)
    noisy = reference + 0.3 * _logits(2)
    result = compare(reference, noisy, STATIC_INT8, "test")
    assert 0.9 < result.cosine_similarity < 0.99 and result.passed
    assert 0 < result.top1_agreement <= 1
    assert not compare(reference, noisy, DYNAMIC_INT8, "test").passed
    flipped = compare(reference, -reference, Thresholds(min_top1_agreement=0.5), "test")
    assert flipped.top1_agreement == 0 and flipped.failures == ("top-1 agreement 0.000 < 0.5",)


def test_non_finite_outputs_and_shape_mismatches_fail():
    logits = _logits()
    broken = logits.copy()
    broken[0, 0] = np.nan
    assert not compare(logits, broken, STATIC_INT8, "test").passed
    with pytest.raises(VerificationError, match="shape"):
        compare(logits, logits[:, :5], EXACT, "test")


def test_random_inputs_are_seeded_and_at_least_32():
    first = random_inputs((1, 3, 8, 8))
    assert first.shape == (MIN_INPUTS, 3, 8, 8) and first.dtype == np.float32
    assert np.array_equal(first, random_inputs((1, 3, 8, 8)))
    assert not np.array_equal(first, random_inputs((1, 3, 8, 8), seed=1))


def test_an_artifact_its_runtime_cannot_load_fails_with_the_runtimes_reason(tmp_path):
    from lowering.verify import verify_artifact

    broken = tmp_path / "broken.pte"
    broken.write_bytes(b"not a program" * 10)
    images = random_inputs((1, 3, 2, 2))
    result = verify_artifact(broken, "executorch", images, _logits(), EXACT, "test")
    assert not result.passed and result.failures[0].startswith("executorch could not load or run the artifact")


def test_one_output_per_image_is_compared_by_its_correlation_across_images():
    reference = np.linspace(0.0, 9.0, 16)[:, None]
    assert compare(reference, reference + 0.01, Thresholds(min_cosine_similarity=0.999), "t").cosine_similarity \
        == pytest.approx(1.0)
    shuffled = compare(reference, reference[::-1], Thresholds(min_cosine_similarity=0.9), "t")
    assert shuffled.cosine_similarity == pytest.approx(-1.0) and not shuffled.passed
