"""Loihi 2 synaptic weights: 8-bit mantissas with a shared exponent, chosen for a matrix in
threshold units, and the per-group record (:class:`LayerQuant`) that maps integers back to floats.
Shared by the LIF lowering (:mod:`.quantize`) and the sigma-delta one (:mod:`.sigma_delta`)."""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from neurocompile.targets.loihi2.program import LoihiDense as _Dense

W_EXP_MIN, W_EXP_MAX = _Dense.WEIGHT_EXP_MIN, _Dense.WEIGHT_EXP_MAX


@dataclasses.dataclass
class LayerQuant:
    """The float-to-integer relation of one neuron group, kept for dequantizing probes."""

    name: str
    scale: np.ndarray          # S_i: integer v per float v unit
    vth: int
    du: int
    dv: int
    report: dict


def pick_exp(maxabs: float, wmax: int) -> int:
    """Smallest exponent e in [-8, 7] with maxabs / 2**e <= wmax (clamped)."""
    if maxabs <= 0:
        return 0
    e = math.ceil(math.log2(maxabs / wmax)) if maxabs > wmax * 2.0 ** W_EXP_MIN else W_EXP_MIN
    while maxabs / 2.0 ** e > wmax + 1e-9:
        e += 1
    return int(min(max(e, W_EXP_MIN), W_EXP_MAX))


def quantize_weights(R: np.ndarray, vth: int) -> tuple[np.ndarray, int, dict]:
    """Integer weights and exponent for ``vth * R`` (R in threshold units), with error stats."""
    target = vth * R
    mixed = R.min() < 0 < R.max()
    wmax = 254 if mixed else 255
    e = pick_exp(float(np.abs(target).max()) if target.size else 0.0, wmax)
    scaled = target / 2.0 ** e
    if mixed:
        w = 2 * np.round(scaled / 2)
        w = np.clip(w, -256, 254)
    else:
        w = np.clip(np.round(scaled), -255, 255)
    clipped = int(np.sum(np.abs(scaled) > np.abs(w) + 1))
    w = w.astype(np.int64)
    eff = _Dense(name="q", src="input", dst="q", weights=w, weight_exp=e).effective_weights()
    err = eff * 2.0 ** e - target
    denom = float(np.sqrt(np.mean(target ** 2))) or 1.0
    return w, e, {"weight_exp": e, "sign_mode": "mixed" if mixed else "single",
                  "rel_rms_error": float(np.sqrt(np.mean(err ** 2)) / denom),
                  "max_abs_error_thr": float(np.abs(err).max() / vth) if err.size else 0.0,
                  "clipped": clipped, "nonzero": int(np.count_nonzero(w))}
