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

from neurocompile.targets.loihi2.program import LoihiConv


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


def conv_out_shape(w_shape, in_shape, stride, padding, dilation) -> tuple[int, int, int]:
    out = [int(w_shape[0])]
    for n, k, s, p, d in zip(in_shape[1:], w_shape[2:], stride, padding, dilation):
        out.append((int(n) + 2 * p - d * (k - 1) - 1) // s + 1)
    return tuple(out)


def conv_pairs(weight, in_shape, stride, padding, dilation, groups):
    """Every (source neuron, destination neuron, kernel tap) of a conv with a nonzero tap, as flat
    C-order indices: ``(src, dst, tap)`` int arrays (``tap`` indexes ``weight.ravel()``)."""
    w = np.asarray(weight)
    co, cig, kh, kw = w.shape
    C, H, W = (int(v) for v in in_shape)
    _, Ho, Wo = conv_out_shape(w.shape, in_shape, stride, padding, dilation)
    og = co // int(groups)
    taps = np.flatnonzero(w.reshape(-1))
    o, rem = np.divmod(taps, cig * kh * kw)
    c, rem = np.divmod(rem, kh * kw)
    i, j = np.divmod(rem, kw)
    cin = (o // og) * cig + c
    oy, ox = (a.reshape(-1) for a in np.meshgrid(np.arange(Ho), np.arange(Wo), indexing="ij"))
    iy = oy[None, :] * stride[0] + i[:, None] * dilation[0] - padding[0]
    ix = ox[None, :] * stride[1] + j[:, None] * dilation[1] - padding[1]
    ok = (iy >= 0) & (iy < H) & (ix >= 0) & (ix < W)
    src = (cin[:, None] * H + iy) * W + ix
    dst = (o[:, None] * Ho + oy[None, :]) * Wo + ox[None, :]
    tap = np.broadcast_to(taps[:, None], ok.shape)
    return src[ok], dst[ok], tap[ok]


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
    the nonzero synapses of a Dense, the nonzero kernel taps that connect a pair for a Conv."""
    w = np.asarray(syn.weights)
    if w.ndim == 2:
        return np.count_nonzero(w, axis=1), np.count_nonzero(w, axis=0)
    src, dst, _ = conv_pairs(w, syn.in_shape, syn.stride, syn.padding, syn.dilation, syn.groups)
    return (np.bincount(dst, minlength=syn.out_size()), np.bincount(src, minlength=syn.in_size()))
