"""What a post-training quantization does: bit widths, quantizer kinds and range search."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from vitdeploy.errors import VitdeployError

MIN_BITS = 3
MAX_BITS = 8
POST_LAYERNORM = ("reparameterized", "per-channel", "per-tensor")
POST_SOFTMAX = ("log-sqrt2", "sulq", "uniform")
RANGE_SEARCHES = ("percentile", "minmax")
IMAGE_INPUT_BITS = 8


class QuantConfigError(VitdeployError):
    """The quantization settings are out of range or name an unknown quantizer."""


@dataclass(frozen=True)
class QuantConfig:
    """Settings of a simulated (fake-quant) post-training quantization of a ViT.

    `weight_bits` / `activation_bits`: 3..8, or None to keep that side in float.
    Weights are quantized per output channel (asymmetric), activations per tensor; the
    image entering the patch embedding is quantized to 8 bits whatever the activation
    width (as in RepQ-ViT).
    `post_layernorm`: "reparameterized" (RepQ-ViT: calibrated per channel, then made
    per-tensor by scale reparameterization), "per-channel" (stop before the
    reparameterization; not deployable) or "per-tensor" (plain).
    `post_softmax`: "log-sqrt2" (RepQ-ViT), "sulq" (I&S-ViT) or "uniform".
    `range_search`: "percentile" (per tensor or channel, the candidate range with the
    lowest L2 quantization error over a grid of percentiles) or "minmax".
    """

    weight_bits: int | None = 8
    activation_bits: int | None = 8
    post_layernorm: str = "reparameterized"
    post_softmax: str = "log-sqrt2"
    range_search: str = "percentile"

    def __post_init__(self):
        for name in ("weight_bits", "activation_bits"):
            bits = getattr(self, name)
            if bits is not None and (
                isinstance(bits, bool) or not isinstance(bits, int) or not MIN_BITS <= bits <= MAX_BITS
            ):
                raise QuantConfigError(
                    f"{name} must be an integer from {MIN_BITS} to {MAX_BITS} (or None for float), "
                    f"got {bits!r}"
                )
        for name, allowed in (
            ("post_layernorm", POST_LAYERNORM),
            ("post_softmax", POST_SOFTMAX),
            ("range_search", RANGE_SEARCHES),
        ):
            if getattr(self, name) not in allowed:
                raise QuantConfigError(
                    f"unknown {name} {getattr(self, name)!r}; choose one of {', '.join(allowed)}"
                )

    @classmethod
    def repq(cls, weight_bits: int, activation_bits: int, post_softmax: str = "log-sqrt2") -> "QuantConfig":
        """RepQ-ViT: percentile search, reparameterized post-LayerNorm, log quantizer after softmax."""
        return cls(weight_bits, activation_bits, "reparameterized", post_softmax, "percentile")

    @classmethod
    def minmax(cls, weight_bits: int, activation_bits: int) -> "QuantConfig":
        """The plain baseline: min-max ranges, every activation uniform per tensor."""
        return cls(weight_bits, activation_bits, "per-tensor", "uniform", "minmax")

    @property
    def label(self) -> str:
        """Short name such as "W4A4"; "float" sides are written "32"."""
        weights = self.weight_bits or 32
        activations = self.activation_bits or 32
        return f"W{weights}A{activations}"

    def to_dict(self) -> dict:
        return asdict(self)
