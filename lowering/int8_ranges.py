"""Who sets int8 activation ranges, and so which model each target lowers.

- "runtime": each runtime's own observers, on the calibration images. Every target
  lowers the model as given.
- "repq": RepQ-ViT's scale reparameterization. The calibrated targets (static int8,
  Core ML w8a8) lower the folded model with fixed ranges: for the registry's ViTs from
  their W8A8 simulation (`lowering.quant.deployable.repq_int8`), for any other model from
  the fold on its exported graph wherever a LayerNorm feeds only linears
  (`lowering.quant.graph_repq`). The other targets lower the model as given: the fold preserves the model's
  function only up to float rounding, and rescales the input columns of the linears
  after each LayerNorm, which changes what weight-only and dynamic int8 quantize.

Importing this module imports nothing heavy: the CLI's argument parser reads INT8_RANGES.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lowering.export import CalibrationSet, LoweringSpec, PreparedCalibrator, Target
    from lowering.sources import ModelInput

INT8_RANGES = ("runtime", "repq")


@dataclass(frozen=True, eq=False)
class LoweringGroup:
    """Targets that lower one model in one `lower_model` call.

    `calibrator` fixes the calibrated targets' ranges (None: the runtimes' observers
    calibrate on `calibration`); `note` says how, for the CLI.
    """

    model: ModelInput
    targets: tuple[Target, ...]
    calibration: CalibrationSet | None
    calibrator: PreparedCalibrator | None = None
    note: str | None = None

    def lowering_spec(self, **options) -> LoweringSpec:
        """A `lowering.export.LoweringSpec` for this group; `options` are its other fields."""
        from lowering.export import LoweringSpec

        return LoweringSpec(targets=self.targets, calibration=self.calibration, calibrator=self.calibrator, **options)


def lowering_groups(
    model: ModelInput, targets: tuple[Target, ...], calibration: CalibrationSet | None, int8_ranges: str
) -> list[LoweringGroup]:
    """`targets` grouped by the model they lower, given who sets int8 ranges (one of
    INT8_RANGES). With "repq", the calibrated targets get a group of their own, calibrated
    on `calibration`, and the others lower `model` as given."""
    if int8_ranges not in INT8_RANGES:
        raise ValueError(f"int8_ranges must be one of {', '.join(INT8_RANGES)}, got {int8_ranges!r}")
    calibrated = tuple(t for t in targets if t.calibrated)
    if int8_ranges == "runtime" or not calibrated:
        return [LoweringGroup(model, tuple(targets), calibration)]
    plain = tuple(t for t in targets if not t.calibrated)
    if model.spec is None:
        from lowering.quant.graph_repq import fold_post_layer_norm

        fold = fold_post_layer_norm(model, calibration)
        folded = LoweringGroup(fold.model, calibrated, calibration, fold.calibrator, fold.summary())
    else:
        from lowering.quant.deployable import repq_int8

        deployable = repq_int8(model.model, calibration)
        folded_model = replace(model, model=deployable.model, spec=deployable.model.spec)
        folded = LoweringGroup(folded_model, calibrated, calibration, deployable.calibrator,
                               f"RepQ-ViT W8A8 calibration ({deployable.calibrator.identity})")
    return [LoweringGroup(model, plain, calibration), folded] if plain else [folded]
