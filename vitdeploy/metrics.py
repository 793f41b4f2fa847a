"""The quality metrics a model can declare, and how each scores one image.

    metric_for_output(output) -> Metric        # a ModelSpec's `output` decides it
    METRICS[name] -> Metric                    # by the name accuracy records carry

A metric is the mean over images of a per-image score: for top-1, whether the top
prediction is the label (1 or 0); for the mean absolute error, |prediction - target|,
where a regression model's target is its image's label read as a number (the digit, on
the embedded digits). Records keep the per-image scores, so two artifacts evaluated on
the same images are compared image by image, whichever the metric.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    """One metric: `name` as records carry it, `title` as tables head it, whether a
    higher value is better, and `percent`: its values are fractions shown in percent."""

    name: str
    title: str
    higher_is_better: bool
    percent: bool

    def display(self, value: float) -> float:
        """`value` (a mean of per-image scores) in the unit tables show."""
        return value * 100 if self.percent else value

    def text(self, value: float) -> str:
        """`value` in a few words: "top-1 97.50 %" or "MAE 0.412"."""
        return f"{self.title} {self.display(value):.2f} %" if self.percent else f"{self.title} {value:.4g}"

    @property
    def heading(self) -> str:
        """A column heading: "top-1 %", or "MAE (lower is better)"."""
        return f"{self.title} %" if self.percent else f"{self.title} ({'higher' if self.higher_is_better else 'lower'} is better)"


TOP1 = Metric("top1", "top-1", higher_is_better=True, percent=True)
MAE = Metric("mae", "MAE", higher_is_better=False, percent=False)
METRICS = {metric.name: metric for metric in (TOP1, MAE)}
# What a model's head gives (ModelSpec.output) decides the metric it is judged by.
_METRIC_OF_OUTPUT = {"logits": TOP1, "regression": MAE}


def metric_for_output(output: str) -> Metric | None:
    """The metric of a model whose head gives `output`; None where accuracy has no
    meaning for it (an embedding, checked by cosine similarity only)."""
    return _METRIC_OF_OUTPUT.get(output)
