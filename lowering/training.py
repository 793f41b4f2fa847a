"""Short, deterministic training on the embedded digits, so the demo has real models.

    model, result = train_or_load("vit_tiny", depth=6, branches=2, img_size=32, num_classes=10)

Training is AdamW with a linear warm-up and a cosine decay per step, label smoothing (a
regression model: the L1 loss against the digit's value, its metric) and gradient
clipping, on a fixed number of CPU threads with seeded initialization and shuffling, so
one set of inputs gives the same weights on every run. A DCAL model trains its pair-wise
cross-attention too (`VisionTransformer.forward_pair`), which lowering then removes.
Trained weights are cached by content under `user_cache_dir()/weights/<key>.safetensors`
(a timm-style state dict that `lowering.models.create(name, checkpoint=...)` loads) with a
JSON sidecar; the key is the sha256 of the model spec, the settings, the data sets'
descriptions, the torch version and TRAINING_VERSION, so changing any of them trains anew.

DEMO_LAYOUTS are the demo's models: ViT-Tiny (width 192, 3 heads of 64, MLP 768) at
32 x 32 pixels with 16-pixel patches (4 patches and a class token), 12 blocks, and the
branched models of the same MACs, 6 x 2, 4 x 3 and 3 x 4 blocks x branches.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from lowering.data import ArrayDataset, load_digits
from lowering.data.accuracy import eager_predictor, measure_accuracy
from lowering.data.digits import NUM_CLASSES
from vitdeploy.metrics import MAE, METRICS, TOP1
from vitdeploy.errors import VitdeployError
from lowering.models import ModelSpec, VisionTransformer, create, resolve_spec
from vitdeploy.user_cache import user_cache_dir

TRAINING_VERSION = 1
DEMO_MODEL = "vit_tiny"
DEMO_OVERRIDES = {"img_size": 32, "num_classes": NUM_CLASSES}
DEMO_LAYOUTS = ((12, 1), (6, 2), (4, 3), (3, 4))


class TrainingError(VitdeployError):
    """The model or the settings cannot be trained on the embedded digits."""


@dataclass(frozen=True)
class TrainingSettings:
    """How a model is trained. `train_limit` trains on that many images of the train
    split (chosen with `data_seed`; for quick tests); None uses all of it."""

    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup_epochs: int = 1
    label_smoothing: float = 0.1
    grad_clip: float = 1.0
    seed: int = 0
    data_seed: int = 0
    threads: int = 1
    train_limit: int | None = None


@dataclass(frozen=True)
class TrainingResult:
    """What training produced; `val_value` is the model's metric (`val_metric`: top-1 as a
    fraction, or the mean absolute error) on the digits' val split."""

    key: str
    weights_path: Path
    spec: ModelSpec
    settings: TrainingSettings
    train_dataset: str
    val_dataset: str
    val_metric: str
    val_value: float
    train_seconds: float
    torch_version: str
    cache_hit: bool

    @property
    def headline(self) -> str:
        """"val top-1 97.50 %" or "val MAE 0.412"."""
        return f"val {METRICS[self.val_metric].text(self.val_value)}"

    @property
    def source(self) -> str:
        """The weights' provenance as manifests record it."""
        return f"trained:{self.key}"


def demo_specs() -> list[ModelSpec]:
    """The demo's four models: 12 x 1, 6 x 2, 4 x 3 and 3 x 4 (blocks x branches)."""
    return [
        resolve_spec(DEMO_MODEL, depth=depth, branches=branches, **DEMO_OVERRIDES)
        for depth, branches in DEMO_LAYOUTS
    ]


def train_or_load(
    model: str | ModelSpec,
    settings: TrainingSettings = TrainingSettings(),
    **overrides,
) -> tuple[VisionTransformer, TrainingResult]:
    """The model (a registry name with overrides, or a spec) trained on the embedded
    digits with `settings`: from the weights cache when present, else trained now and
    cached. The model is returned in eval mode, in its training form (branched models
    are not reparameterized)."""
    if isinstance(model, ModelSpec) and overrides:
        raise TrainingError("give either a ModelSpec or a name with overrides, not both")
    spec = model if isinstance(model, ModelSpec) else resolve_spec(model, **overrides)
    outputs = 1 if spec.metric is MAE else NUM_CLASSES
    if spec.num_classes != outputs:
        raise TrainingError(
            f"training uses the embedded digits ({NUM_CLASSES} classes, regression: the digit's value) but the "
            f"model has {spec.num_classes} outputs; pass num_classes={outputs}"
        )
    train_set = load_digits("train", spec.img_size, spec.preprocessing, settings.data_seed)
    if settings.train_limit is not None:
        train_set = train_set.take(settings.train_limit, settings.data_seed)
    val_set = load_digits("val", spec.img_size, spec.preprocessing, settings.data_seed)
    key = cache_key(spec, settings, train_set.description, val_set.description)
    weights = weights_dir() / f"{key}.safetensors"
    sidecar = weights.with_suffix(".json")
    if weights.is_file() and sidecar.is_file():
        net = create(spec.name, checkpoint=weights, **spec.overrides())
        return net, _result_from_sidecar(sidecar, weights)

    start = time.perf_counter()
    net = _train(spec, settings, train_set)
    seconds = time.perf_counter() - start
    metric = spec.metric or TOP1
    value = measure_accuracy(eager_predictor(net), val_set, metric=metric).value
    result = TrainingResult(
        key, weights, spec, settings, train_set.description, val_set.description,
        metric.name, value, seconds, torch.__version__, cache_hit=False,
    )
    _store(net, result)
    return net.eval(), result


def weights_dir() -> Path:
    """Where trained weights are cached."""
    return user_cache_dir() / "weights"


def cache_key(spec: ModelSpec, settings: TrainingSettings, train_dataset: str, val_dataset: str) -> str:
    """sha256 of everything that determines the trained weights and their val top-1."""
    content = {
        "spec": spec.to_dict(),
        "settings": asdict(settings),
        "train_dataset": train_dataset,
        "val_dataset": val_dataset,
        "torch": torch.__version__,
        "training_version": TRAINING_VERSION,
    }
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def _train(spec: ModelSpec, settings: TrainingSettings, train_set: ArrayDataset) -> VisionTransformer:
    images = torch.from_numpy(train_set.inputs())
    labels = torch.from_numpy(train_set.labels)
    steps_per_epoch = math.ceil(len(labels) / settings.batch_size)
    total = settings.epochs * steps_per_epoch
    warmup = settings.warmup_epochs * steps_per_epoch
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(settings.threads)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(settings.seed)
            net = create(spec.name, **spec.overrides()).train()
            optimizer = torch.optim.AdamW(net.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
            schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: _lr_factor(step, warmup, total))
            order = torch.Generator().manual_seed(settings.seed)
            for _ in range(settings.epochs):
                for batch in torch.randperm(len(labels), generator=order).split(settings.batch_size):
                    loss = _loss(spec, net(images[batch]), labels[batch], settings)
                    if net.has_pair_wise_branch:
                        # DCAL's pair-wise cross-attention, each image with the next of its batch as
                        # the distractor, learns the same label; its loss adds to the others'.
                        pair = images[batch.roll(1)]
                        loss = loss + _loss(spec, net.forward_pair(images[batch], pair), labels[batch], settings)
                    optimizer.zero_grad()
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(net.parameters(), settings.grad_clip)
                    optimizer.step()
                    schedule.step()
    finally:
        torch.set_num_threads(previous_threads)
    return net.eval()


def _loss(spec: ModelSpec, outputs: torch.Tensor, labels: torch.Tensor, settings: TrainingSettings) -> torch.Tensor:
    """The L1 loss against the label's value for a regression model, else label-smoothed cross-entropy."""
    if spec.metric is MAE:
        return torch.nn.functional.l1_loss(outputs[:, 0], labels.to(outputs.dtype))
    return torch.nn.functional.cross_entropy(outputs, labels, label_smoothing=settings.label_smoothing)


def _lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warm-up over `warmup` steps, then cosine decay to zero at `total`."""
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def _store(net: VisionTransformer, result: TrainingResult) -> None:
    """Write the weights, then the sidecar (its presence marks a complete entry); each
    file appears atomically under its final name."""
    from safetensors.torch import save_file

    path = result.weights_path
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    state = {name: tensor.contiguous() for name, tensor in net.state_dict().items()}
    save_file(state, str(temporary))
    os.replace(temporary, path)
    sidecar = {
        "key": result.key,
        "spec": result.spec.to_dict(),
        "settings": asdict(result.settings),
        "train_dataset": result.train_dataset,
        "val_dataset": result.val_dataset,
        "val_metric": result.val_metric,
        "val_value": result.val_value,
        "train_seconds": result.train_seconds,
        "torch_version": result.torch_version,
        "training_version": TRAINING_VERSION,
    }
    sidecar_path = path.with_suffix(".json")
    temporary = sidecar_path.with_name(f".{sidecar_path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(sidecar, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(temporary, sidecar_path)


def _result_from_sidecar(sidecar: Path, weights: Path) -> TrainingResult:
    data = json.loads(sidecar.read_text(encoding="utf-8"))
    return TrainingResult(
        key=data["key"],
        weights_path=weights,
        spec=ModelSpec.from_dict(data["spec"]),
        settings=TrainingSettings(**data["settings"]),
        train_dataset=data["train_dataset"],
        val_dataset=data["val_dataset"],
        val_metric=data.get("val_metric", TOP1.name),
        val_value=data["val_value"] if "val_value" in data else data["val_top1"],  # sidecars before metrics
        train_seconds=data["train_seconds"],
        torch_version=data["torch_version"],
        cache_hit=True,
    )
