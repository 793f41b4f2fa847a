"""How long calibrating a fake-quant ViT takes (a benchmark, not a test).

    .venv/bin/python bench/quant_calibration_speed.py [--model vit_tiny] [--img-size 224]
        [--images 32] [--threads 1] [--repeats 3]

Random weights and random images suffice: calibration time depends on shapes, not
values. Prints the fp32 forward time over the same batch for scale, then, per
quantization setting, the median wall time of `lowering.quant.calibrate` (model
wrapping, the calibration forward pass with every range search, and the scale
reparameterization) over `--repeats` runs after one warm-up.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from lowering.models import create
from lowering.quant import QuantConfig, calibrate

SETTINGS = {
    "RepQ-ViT W4A4 (log-sqrt2)": QuantConfig.repq(4, 4),
    "RepQ-ViT W4A4 (SULQ)": QuantConfig.repq(4, 4, "sulq"),
    "RepQ-ViT W8A8 (log-sqrt2)": QuantConfig.repq(8, 8),
    "min-max W8A8": QuantConfig.minmax(8, 8),
}


def _median_seconds(run, repeats: int) -> float:
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="vit_tiny")
    parser.add_argument("--img-size", type=int, default=224)
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = create(args.model, img_size=args.img_size)
    images = torch.randn(args.images, 3, args.img_size, args.img_size)
    print(f"{args.model} at {args.img_size}, {args.images} calibration images, {args.threads} thread(s), "
          f"median of {args.repeats} after a warm-up")
    with torch.no_grad():
        forward = _median_seconds(lambda: model(images), args.repeats)
    print(f"| setting | seconds |\n|---|---|\n| fp32 forward of the batch (for scale) | {forward:.2f} |")
    for name, config in SETTINGS.items():
        seconds = _median_seconds(lambda: calibrate(model, images, config), args.repeats)
        print(f"| calibrate, {name} | {seconds:.2f} |", flush=True)


if __name__ == "__main__":
    main()
