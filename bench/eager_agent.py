#!/usr/bin/env python3
"""The Python agent with one more runtime, "torch": eager PyTorch on a saved vitdeploy model.

Pushed next to agent.py and run as `python eager_agent.py PLAN.json`; everything else
(plan, rounds, output) is agent.py's, so eager PyTorch is measured by the same protocol
and interleaved with the lowered artifacts in one process. Host only: it imports
vitdeploy's model definitions.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import agent  # noqa: E402  (the portable agent pushed into the same folder)

EAGER_RUNTIME = "torch"


class EagerSession:
    """A VisionTransformer saved by bench.eager.save_eager, run under inference_mode."""

    def __init__(self, path, threads):
        import torch

        from lowering.models import ModelSpec, VisionTransformer

        torch.set_num_threads(threads)
        saved = torch.load(path, weights_only=False)
        spec = ModelSpec.from_dict(saved["spec"])
        self.model = VisionTransformer(spec).eval()
        self.model.load_state_dict(saved["state_dict"])
        self.input_shape = (1, spec.in_chans, spec.img_size, spec.img_size)
        self.threads_applied = torch.get_num_threads()
        self.torch = torch

    def run(self, batch):
        with self.torch.inference_mode():
            return self.model(self.torch.from_numpy(batch)).numpy()


agent.runtimes.RUNTIMES[EAGER_RUNTIME] = agent.runtimes.Runtime(
    EAGER_RUNTIME, (".pt",), "eager", ("torch",), lambda threads: None, EagerSession)

if __name__ == "__main__":
    sys.exit(agent.main(sys.argv))
