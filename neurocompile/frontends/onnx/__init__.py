"""ONNX frontend: convert a trained ReLU ANN into a spiking graph.

* :mod:`.parser` reads and checks the file into an analog network (:mod:`.ann`);
* :mod:`.normalise` chooses activation scales (calibration percentile, or weight bounds);
* :mod:`.rate` builds the rate-coded IF graph and encodes/decodes its inputs/outputs;
* :mod:`.sigma_delta` converts to sigma-delta neurons (Loihi 2 / Lava ``sdn``).
"""
from neurocompile.frontends.onnx.frontend import DEFAULT_PERCENTILE, DEFAULT_TIMESTEPS, from_onnx
from neurocompile.frontends.onnx.rate import decode_output, encode_input

__all__ = ["from_onnx", "encode_input", "decode_output", "DEFAULT_TIMESTEPS", "DEFAULT_PERCENTILE"]
