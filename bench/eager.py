"""Eager PyTorch as a benchmarked "artifact": a saved model plus a harness that runs it.

    save_eager(model, path) -> ArtifactInfo          # runtime "torch"
    EagerAgentHarness()                              # the Python agent + eager runtime
"""

from __future__ import annotations

import posixpath
from pathlib import Path

import torch

from bench_runner.harness.python_agent import PythonAgentHarness
from bench_runner.records import ArtifactInfo
from vitdeploy.manifest import artifact_sha256
from lowering.models import VisionTransformer

EAGER_AGENT_SCRIPT = Path(__file__).with_name("eager_agent.py")
EAGER_RUNTIME = "torch"


def save_eager(model: VisionTransformer, path: Path) -> ArtifactInfo:
    """Save `model` (spec and weights) where the eager agent can load it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"spec": model.spec.to_dict(), "state_dict": model.state_dict()}, path)
    spec = model.spec
    return ArtifactInfo(
        path=path,
        sha256=artifact_sha256(path),
        size_bytes=path.stat().st_size,
        runtime=EAGER_RUNTIME,
        input_shape=(1, spec.in_chans, spec.img_size, spec.img_size),
        input_dtype="float32",
        model=spec.name,
        backend="eager",
        quant="fp32",
    )


class EagerAgentHarness(PythonAgentHarness):
    """The Python agent on the host, able to run eager PyTorch next to lowered artifacts."""

    runtimes = PythonAgentHarness.runtimes | {EAGER_RUNTIME}

    def prepare(self, device) -> None:
        super().prepare(device)
        script = posixpath.join(device.workdir, EAGER_AGENT_SCRIPT.name)
        device.push(EAGER_AGENT_SCRIPT, script)
        self._agent_path = script
