"""ONNX Runtime's transformer optimizer, offline, on a dynamo export (no timing)."""

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from bench.onnx_fusions import fused
from lowering.export.onnx import INPUT_NAME, export_program


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(16, 16)
        self.norm = nn.LayerNorm(16)

    def forward(self, x):
        return self.norm(x + self.fc(x))


def test_fused_writes_skip_layer_norm_and_computes_the_same(tmp_path):
    torch.manual_seed(0)
    model, x = Residual().eval(), torch.randn(1, 8, 16)
    export_program(torch.export.export(model, (x,)), x, tmp_path / "model.onnx")
    fusions = fused(tmp_path / "model.onnx", tmp_path / "fused.onnx", "vit", 0)
    assert fusions.get("SkipLayerNormalization") == 1
    session = ort.InferenceSession(str(tmp_path / "fused.onnx"), providers=["CPUExecutionProvider"])
    found = session.run(None, {INPUT_NAME: x.numpy()})[0]
    assert np.max(np.abs(found - model(x).detach().numpy())) < 1e-5
