"""Post-training quantization of ViTs: simulated (fake-quant) research quantizers and
the deployable int8 the exporters take.

    QuantConfig(weight_bits, activation_bits, post_layernorm, post_softmax, range_search)
    calibrate(model, images, config, description) -> CalibratedModel (fake-quant model)
    fake_quantize(model, config) / float_model(fake_quant_model)
    scale_reparameterize(fake_quant_model) / fold_scales(norm, linears, scale, zero_point)
    UniformQuantizer, LogSqrt2Quantizer, ShiftUniformLog2Quantizer
"""

from lowering.quant.calibrate import CalibratedModel, calibrate, calibrating
from lowering.quant.config import QuantConfig, QuantConfigError
from lowering.quant.quantizers import (
    LogSqrt2Quantizer,
    NotCalibratedError,
    ShiftUniformLog2Quantizer,
    UniformQuantizer,
)
from lowering.quant.repq import ScaleReparameterizationError, fold_scales, scale_reparameterize
from lowering.quant.simulate import UnsupportedModelError, fake_quantize, float_model, quantizers

__all__ = [
    "CalibratedModel",
    "LogSqrt2Quantizer",
    "NotCalibratedError",
    "QuantConfig",
    "QuantConfigError",
    "ScaleReparameterizationError",
    "ShiftUniformLog2Quantizer",
    "UniformQuantizer",
    "UnsupportedModelError",
    "calibrate",
    "calibrating",
    "fake_quantize",
    "float_model",
    "fold_scales",
    "quantizers",
    "scale_reparameterize",
]
