"""Calibration on the embedded data set is deterministic for a fixed seed and recorded."""

import time

import torch

from lowering.data import calibration_set
from lowering.quant import QuantConfig, calibrate, quantizers


def _parameters(model):
    return [tensor for q in quantizers(model) for tensor in q.buffers()]


def test_same_seed_same_images_same_quantizers(model):
    first_images, first_description = calibration_set(model.spec, "digits", 16, seed=3)
    second_images, second_description = calibration_set(model.spec, "digits", 16, seed=3)
    assert torch.equal(first_images, second_images) and first_description == second_description
    first = calibrate(model, first_images, QuantConfig.repq(4, 4), first_description)
    second = calibrate(model, second_images, QuantConfig.repq(4, 4), second_description)
    assert all(torch.equal(a, b) for a, b in zip(_parameters(first.model), _parameters(second.model)))
    assert "seed=3" in first.calibration and first.num_images == 16


def test_another_seed_changes_the_calibration(model):
    images_a, description_a = calibration_set(model.spec, "digits", 16, seed=0)
    images_b, description_b = calibration_set(model.spec, "digits", 16, seed=1)
    assert description_a != description_b
    a = calibrate(model, images_a, QuantConfig.repq(4, 4), description_a)
    b = calibrate(model, images_b, QuantConfig.repq(4, 4), description_b)
    assert any(not torch.equal(x, y) for x, y in zip(_parameters(a.model), _parameters(b.model)))


def test_settings_record_config_and_calibration(model, images):
    start = time.perf_counter()
    calibrated = calibrate(model, images, QuantConfig.repq(6, 6, "sulq"), "random(size=8, seed=0)")
    elapsed = time.perf_counter() - start
    settings = calibrated.settings()
    assert settings["label"] == "W6A6"
    assert settings["post_softmax"] == "sulq" and settings["post_layernorm"] == "reparameterized"
    assert settings["calibration"] == "random(size=8, seed=0)" and settings["num_images"] == 8
    assert 0 < calibrated.seconds <= elapsed and settings["calibration_seconds"] == round(calibrated.seconds, 3)
