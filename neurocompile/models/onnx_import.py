"""ONNX import (the loader's entry point for ``*.onnx``): see :mod:`neurocompile.models.onnx`.

``from_onnx(path, calibration=None, method="rate", timesteps=64, input_encoding="current",
percentile=99.9, readout="integrator", input_shape=None, input_range=(0, 1))``
"""
from .onnx import DEFAULT_PERCENTILE, DEFAULT_TIMESTEPS, decode_output, encode_input, from_onnx

__all__ = ["from_onnx", "encode_input", "decode_output", "DEFAULT_TIMESTEPS", "DEFAULT_PERCENTILE"]
