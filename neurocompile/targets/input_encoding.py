"""How a chip program receives the graph's input: ``"spikes"`` (0/1 events) or ``"current"``
(direct, analog input: the sample's values, usually the same at every step, that the first
synapse layer integrates as a current -- snnTorch's most common encoding).

Every chip target asks :func:`choose_encoding` so that compile options mean the same everywhere:

* ``input_encoding="spikes"`` or ``"current"`` (``--input-encoding``): as asked;
* not given: the encoding an ONNX conversion chose for the graph's input; else ``"current"``
  when the calibration samples hold any value other than 0 and 1; otherwise ``"spikes"``.

A current input needs its range to pick a fixed-point format, so it needs calibration samples
(``--calibration``); :func:`input_range` says so by name when they are missing.
"""
from __future__ import annotations

import numpy as np

from neurocompile.errors import NeuroCompileError
from neurocompile.ir.graph import Graph

ENCODINGS = ("spikes", "current")


def choose_encoding(graph: Graph, calibration, requested: str | None) -> str:
    """``"spikes"`` or ``"current"`` for this graph, calibration data and option value."""
    if requested is not None:
        if requested not in ENCODINGS:
            raise NeuroCompileError(f"input_encoding must be one of {', '.join(ENCODINGS)}, not {requested!r}")
        return requested
    converted = graph.metadata.get("onnx", {}).get("input_encoding")
    if converted in ENCODINGS:  # an ANN conversion chose the graph's input already
        return converted
    if calibration is not None:
        x = np.asarray(calibration)
        if x.size and not np.all((x == 0) | (x == 1)):
            return "current"
    return "spikes"


def input_range(graph: Graph, calibration) -> float:
    """The largest |value| of the input, from the calibration samples (> 0)."""
    (inp,) = graph.inputs
    if calibration is None:
        raise NeuroCompileError("direct (current) input needs calibration samples of the analog input "
                                "(--calibration X.npy) to choose its fixed-point format", node=inp)
    x = np.asarray(calibration, dtype=np.float64)
    m = float(np.abs(x).max()) if x.size else 0.0
    if not np.isfinite(m):
        raise NeuroCompileError("the calibration samples hold NaN or infinite values", node=inp)
    return m if m > 0 else 1.0


def spike_input_hint(artifact: str = "ARTIFACT") -> str:
    """What to do with analog data for an artifact compiled for spike input."""
    return (f"rate-code it with `neurocompile encode {artifact} --samples X.npy --steps T -o spikes.npy`, "
            "or recompile with --input-encoding current and --calibration samples of the analog input")


def rate_code(samples: np.ndarray, steps: int, scale: float) -> np.ndarray:
    """Samples (N, *shape) -> (steps, N, *shape) 0/1 spikes, deterministic: with ``p = clip(x /
    scale, 0, 1)`` an element spikes at step t when ``floor((t+1) p) > floor(t p)``, so
    ``floor(steps * p)`` evenly spaced spikes in ``steps`` steps."""
    if steps < 1:
        raise NeuroCompileError(f"steps must be >= 1, got {steps}")
    if not scale > 0:
        raise NeuroCompileError(f"the rate code's full scale must be > 0, got {scale}")
    x = np.asarray(samples, dtype=np.float64)
    if x.size and not np.all(np.isfinite(x)):
        raise NeuroCompileError("the samples hold NaN or infinite values")
    p = np.clip(x / scale, 0.0, 1.0)
    t = np.arange(steps + 1, dtype=np.float64).reshape((-1,) + (1,) * p.ndim)
    return np.diff(np.floor(t * p + 1e-9), axis=0).astype(np.float32)
