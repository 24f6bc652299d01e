"""``from_onnx``: an ONNX ANN file -> a spiking :class:`Graph` (rate-coded IF network)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from neurocompile.errors import NeuroCompileError, UnsupportedError
from neurocompile.frontends.onnx import normalise, rate
from neurocompile.frontends.onnx.parser import parse
from neurocompile.frontends.onnx.sigma_delta import convert
from neurocompile.ir.graph import Graph

METHODS = ("rate", "sigma_delta")
DEFAULT_TIMESTEPS = 64
DEFAULT_PERCENTILE = 99.9


def from_onnx(path, calibration=None, *, method: str = "rate", timesteps: int | None = None,
              input_encoding: str = "current", percentile: float = DEFAULT_PERCENTILE,
              readout: str = "integrator", reset: str = "subtract", input_shape=None,
              input_range=(0.0, 1.0)) -> Graph:
    """Convert the ReLU network in the ONNX file ``path`` into a rate-coded spiking graph.

    * ``calibration``: samples for data-based normalisation -- an array (N, *input shape) or any
      shape with the same size per sample, ``{input name: array}``, or a ``.npy`` path. Without
      it the scales come from weight-based bounds, assuming inputs in ``input_range``.
    * ``percentile``: of the positive activations per layer (99.9, Rueckauer et al. 2017).
    * ``timesteps``: the run length the graph is meant for (default 64). It does not change the
      graph; it is recorded in ``metadata['onnx']`` for :func:`encode_input` and stated as an
      assumption.
    * ``input_encoding``: ``"current"`` (analog sample every step) or ``"spikes"`` (0/1 trains).
    * ``readout``: ``"integrator"`` (non-spiking, read its last value) or ``"spikes"`` (IF counts).
    * ``reset``: ``"subtract"`` (default, accurate) or ``"zero"`` (what Lava's Loihi 2 LIF can do
      today; less accurate, see :mod:`.rate`).
    * ``input_shape``: fixes symbolic input dimensions (without the batch axis).

    ``method="sigma_delta"``: SigmaDelta neurons (Lava ``sdn``), see
    :mod:`neurocompile.frontends.onnx.sigma_delta`.
    """
    file = str(path)
    if method not in METHODS:
        raise NeuroCompileError(f"method must be one of {METHODS}, got '{method}'", file=file)
    if input_encoding not in rate.INPUT_ENCODINGS:
        raise NeuroCompileError(f"input_encoding must be one of {rate.INPUT_ENCODINGS}, got '{input_encoding}'",
                                file=file)
    if readout not in rate.READOUTS:
        raise NeuroCompileError(f"readout must be one of {rate.READOUTS}, got '{readout}'", file=file)
    if reset not in rate.RESETS:
        raise NeuroCompileError(f"reset must be one of {rate.RESETS}, got '{reset}'", file=file)
    if not 0 < float(percentile) <= 100:
        raise NeuroCompileError(f"percentile must be in (0, 100], got {percentile}", file=file)
    T = DEFAULT_TIMESTEPS if timesteps is None else int(timesteps)
    if T < 1:
        raise NeuroCompileError(f"timesteps must be >= 1, got {timesteps}", file=file)
    if method == "sigma_delta":

        if isinstance(calibration, (str, Path)):
            calibration = _load_npy(calibration)
        return convert(path, calibration, percentile=float(percentile), input_shape=input_shape)

    ann = parse(path, input_shape=input_shape)
    if isinstance(calibration, (str, Path)):
        calibration = _load_npy(calibration)
    if calibration is not None:
        batch = normalise.calibration_batch(ann, calibration, file=file)
        lam = normalise.data_scales(ann, batch, float(percentile))
        n = next(iter(batch.values())).shape[0]
        how = (f"normalisation: each layer's scale is the {float(percentile):g}th percentile of its positive "
               f"activations on {n} calibration samples (Rueckauer et al. 2017)")
        negative = any(np.any(b < 0) for b in batch.values())
    else:
        lam = normalise.bound_scales(ann, input_range)
        how = (f"normalisation without calibration data: each layer's scale is the largest bound of its "
               f"activations for inputs in [{input_range[0]:g}, {input_range[1]:g}] (weight-based, Diehl et al. "
               f"2015); give calibration samples for fewer steps at the same accuracy")
        negative = input_range[0] < 0
    if input_encoding == "spikes":
        if negative:
            raise UnsupportedError("spike input encoding needs non-negative inputs (a rate cannot be "
                                   "negative); use input_encoding='current'", file=file)
        input_scales = {n: lam[n] for n in ann.inputs}
    else:
        input_scales = {n: 1.0 for n in ann.inputs}
    scales = rate.plan_scales(ann, lam, input_scales)
    g = rate.build_graph(ann, scales, readout=readout, input_encoding=input_encoding, reset=reset)

    g.assume("dt = 1.0: one step is one unit of time (the ANN has no time constants); IF neurons with "
             + ("reset by subtraction" if reset == "subtract" else "reset to zero") + ", threshold 1, spike when v > 1")
    g.assume(how)
    if input_encoding == "current":
        g.assume("input as a constant current: present each analog sample unchanged at every step")
    else:
        scale = ", ".join(f"{n}: {input_scales[n]:.6g}" for n in ann.inputs)
        g.assume(f"input as spikes: a 0/1 train per element with rate x / input scale ({scale}), clipped to [0, 1]")
    spiking_out = all(ann.ops[o].kind == "relu" for o in ann.outputs.values())
    if not spiking_out:
        if readout == "integrator":
            g.assume("readout: a non-spiking Integrator sums the last layer's output; the class is the argmax "
                     "of its value at the last step (not of the sum over steps)")
        else:
            g.assume("readout: IF neurons on the last layer; the class is the argmax of their spike counts")
    g.assume(f"run for {T} time steps")
    for note in ann.notes:
        g.assume(note)
    g.metadata["onnx"] = {
        "source": Path(file).name, "method": method, "timesteps": T, "input_encoding": input_encoding,
        "input_scale": float(next(iter(input_scales.values()))), "readout": readout, "reset": reset,
        "output_is_spiking": bool(spiking_out),
        "normalisation": "data" if calibration is not None else "weights",
        "percentile": float(percentile) if calibration is not None else None,
        "scales": {n: float(s) for n, s in scales.items()},
        "layers": {n: op.source for n, op in ann.ops.items() if n in g.nodes},
        "output_scales": {o: float(scales[src]) for o, src in ann.outputs.items()},
    }
    g.validate()
    return g


def _load_npy(path) -> np.ndarray:
    try:
        return np.load(str(path), allow_pickle=False)
    except FileNotFoundError:
        raise NeuroCompileError("no such calibration file", file=str(path)) from None
    except Exception as err:
        raise NeuroCompileError(f"cannot read calibration data (.npy without pickles): {err}", file=str(path)) from None
