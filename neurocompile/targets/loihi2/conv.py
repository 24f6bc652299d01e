"""Convolution synapses on Loihi 2 (``LoihiConv``, Lava's ``Conv``).

Lava's fixed-point Conv ignores ``weight_exp`` and ``num_weight_bits``: the integer kernel is used
as given. A conv therefore cannot borrow an exponent the way a Dense does, so the quantizer picks
the destination group's ``vth`` for the conv (the *conv scale rule*)::

    w = vth * R,   R = gain_c * W / thr_c   (W in the float graph, per output channel c)
    vth = floor(W8 / max|R|)                (capped by the state headroom and VTH_MAX)

with ``W8 = 254`` for a mixed-sign kernel and 255 for a single-sign one, and the kernel rounded
to exactly the values an 8-bit Dense holds at ``weight_exp = 0``: even values in [-256, 254] for
mixed signs (Lava's Dense drops the lowest bit of a mixed-sign weight), 0..±255 otherwise. Lava's
Conv would accept any 16-bit value; keeping to the chip's 8-bit synapse formats means the kernel
is exact on hardware too, whatever weight format its conv encoding uses. The other synapses into
the same group then get their own exponents for that ``vth``.
"""
from __future__ import annotations

import math

import numpy as np

from neurocompile.ir.linear_maps import conv_fan_out, conv_out_shape, conv_pair_chunks, conv_pairs, conv_tap_sums
from neurocompile.targets.loihi2.program import LoihiConv

__all__ = ["conv_fits", "conv_out_shape", "conv_pairs", "conv_pair_chunks", "kernel_wmax", "conv_vth",
           "quantize_conv", "connection_counts"]


def conv_fits(node, in_shape) -> bool:
    """Whether Lava's Conv can run this Conv2d (kernel, stride, padding, dilation and groups
    within its int8 fields, groups dividing the channels)."""
    try:
        c = LoihiConv(name="c", src="input", dst="d", weights=np.zeros(node.weight.shape, np.int64),
                      in_shape=tuple(int(s) for s in in_shape), stride=tuple(node.stride),
                      padding=tuple(node.padding), dilation=tuple(node.dilation), groups=int(node.groups))
        c.validate()
    except (ValueError, TypeError):
        return False
    return True


def kernel_wmax(R: np.ndarray) -> int:
    """254 for a mixed-sign kernel, 255 for a single-sign one (see the module docstring)."""
    return 254 if R.min() < 0 < R.max() else 255


def conv_vth(R: np.ndarray) -> int:
    """The largest vth at which the kernel ``vth * R`` fits the 8-bit range without exponent."""
    m = float(np.abs(R).max()) if R.size else 0.0
    return 1 << 30 if m == 0 else max(1, math.floor(kernel_wmax(R) / m))


def quantize_conv(R: np.ndarray, vth: int) -> tuple[np.ndarray, dict]:
    """Integer kernel for ``vth * R`` (exponent 0), with the same error stats as a Dense."""
    target = vth * R
    mixed = R.min() < 0 < R.max()
    if mixed:
        w = np.clip(2 * np.round(target / 2), -256, 254)
    else:
        w = np.clip(np.round(target), -255, 255)
    clipped = int(np.sum(np.abs(target) > np.abs(w) + 1))
    err = w - target
    denom = float(np.sqrt(np.mean(target ** 2))) or 1.0
    return w.astype(np.int64), {
        "kind": "conv", "weight_exp": 0, "sign_mode": "mixed" if mixed else "single",
        "rel_rms_error": float(np.sqrt(np.mean(err ** 2)) / denom),
        "max_abs_error_thr": float(np.abs(err).max() / vth) if err.size else 0.0,
        "clipped": clipped, "nonzero": int(np.count_nonzero(w)), "kernel": list(w.shape)}


def connection_counts(syn) -> tuple[np.ndarray, np.ndarray]:
    """(fan-in per destination neuron, fan-out per source neuron) of a LoihiDense or LoihiConv:
    the nonzero synapses of a Dense, the nonzero kernel taps that connect a pair for a Conv (in
    closed form: no list of pairs is built)."""
    w = np.asarray(syn.weights)
    if w.ndim == 2:
        return np.count_nonzero(w, axis=1), np.count_nonzero(w, axis=0)
    geo = (syn.in_shape, syn.stride, syn.padding, syn.dilation, syn.groups)
    fan_in = np.rint(conv_tap_sums(w, *geo, values=(w != 0))).astype(np.int64)
    return fan_in, conv_fan_out(w, *geo)
