"""The nine programs exported from real timm models (tests/fixtures/timm_graphs) through
`vitdeploy lower` on every backend, checked against timm's own outputs."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from deploy.cli import main
from lowering.runtime import load_artifact
from vitdeploy.manifest import read_manifest

GRAPHS = Path(__file__).resolve().parents[2] / "fixtures" / "timm_graphs"
INDEX = json.loads((GRAPHS / "index.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(INDEX))
def test_every_backend_lowers_the_timm_graph_and_fp32_matches_timm(name, tmp_path, capsys):
    facts = INDEX[name]
    argv = ["lower", str(GRAPHS / f"{name}.pt2"), "--backend", "executorch,onnx,coreml", "--quant", "fp32,int8",
            "--mean", ",".join(map(str, facts["mean"])), "--std", ",".join(map(str, facts["std"])),
            "--out", str(tmp_path)]
    assert main(argv) == 0, capsys.readouterr().err
    recorded = torch.load(GRAPHS / f"{name}.io.pt")
    timm_input, timm_output = recorded["input"].numpy(), recorded["output"].numpy()
    artifacts = sorted(p for p in tmp_path.iterdir() if not p.name.endswith(".manifest.json"))
    built = {(read_manifest(p).backend, read_manifest(p).quant): p for p in artifacts}
    assert set(built) == {("executorch", "fp32"), ("executorch", "int8"), ("onnx", "fp32"), ("onnx", "int8"),
                          ("coreml", "fp32")}
    for (backend, quant), path in built.items():
        manifest = read_manifest(path)
        assert manifest.passed, (backend, quant, manifest.failure_text)
        assert manifest.input_shape == tuple(facts["input_size"]) and manifest.output_shape == (1, facts["num_classes"])
        assert manifest.model.params == facts["params"] and manifest.model.macs > 0
        assert manifest.model.preprocessing["mean"] == facts["mean"]
        if backend == "coreml":
            assert manifest.verification["spec_check"]["passed"]
        elif quant == "fp32":
            np.testing.assert_allclose(load_artifact(path)(timm_input), timm_output, atol=1e-4, rtol=0)


# XNNPACK segments of executorch/fp32 before the graph passes (results/benchmarks/timm_graphs.md).
SEGMENTS_AS_EXPORTED = {"cait": 17, "swin": 31, "vit": 12}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SEGMENTS_AS_EXPORTED))
def test_graph_passes_put_the_timm_graph_in_one_xnnpack_delegate(name, artifact_cache):
    from lowering.export import LoweringSpec, Target, lower_model
    from lowering.sources import open_model

    recorded = torch.load(GRAPHS / f"{name}.io.pt")
    model = open_model(str(GRAPHS / f"{name}.pt2"))
    artifact, = lower_model(model, LoweringSpec(targets=(Target("executorch", "fp32"),)), cache=artifact_cache)
    delegation = artifact.manifest.delegation
    assert delegation["num_delegates"] == 1 < SEGMENTS_AS_EXPORTED[name]
    assert delegation["fallback_ops"] == {}
    assert "layer_norm" in artifact.manifest.export["graph_passes"]
    found = load_artifact(artifact.path)(recorded["input"].numpy())
    np.testing.assert_allclose(found, recorded["output"].numpy(), atol=1e-4, rtol=0)
