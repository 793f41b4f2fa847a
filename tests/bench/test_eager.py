"""The eager runtime runs inside the Python agent like any other artifact."""

import numpy as np
import pytest
import torch

from bench.eager import EagerAgentHarness, save_eager
from bench.measure import measure
from bench_runner.devices.host import HostDevice
from bench_runner.protocol import MeasurementSettings
from lowering.models import create


def test_the_eager_agent_measures_a_saved_model_and_reports_its_output(tmp_path):
    torch.manual_seed(0)
    model = create("vit_tiny", depth=1, img_size=32, num_classes=10)
    info = save_eager(model, tmp_path / "tiny.pt")
    device = HostDevice()
    settings = MeasurementSettings(threads=(1,), warmup=0, runs=2, min_seconds=0.0, rounds=1)
    try:
        ((_, record),) = measure(device, EagerAgentHarness(), {"eager": info}, settings).items()
    finally:
        device.cleanup()
    assert record.status == "ok", record.error
    assert record.stats.n == 2
    seed_input = np.random.default_rng(settings.seed).standard_normal(info.input_shape).astype(np.float32)
    with torch.inference_mode():
        expected = float(model(torch.from_numpy(seed_input)).double().sum())
    assert record.output_checksum == pytest.approx(expected, rel=1e-4, abs=1e-4)
