"""Convolution projections of a SpiNNaker program, kept as a kernel and its geometry.

A projection whose ``conv`` field is set holds no synapse list: its ``w_int``/``weight`` arrays are
the (C_out, C_in/groups, kH, kW) kernel of one sign (16-bit word magnitudes and their exact nA
values; 0 where the tap has no synapse of this sign) and ``conv`` the geometry::

    {"in_shape": [C, H, W], "out_shape": [C_out, H_out, W_out], "stride": [sh, sw],
     "padding": [ph, pw], "dilation": [dh, dw], "groups": g, "connector": "list"}

Source and destination neurons are the flat C-order (channel, row, column) indices of the two
populations, as the graph's (:func:`neurocompile.ir.linear_maps.conv_pairs`). ``connector`` says
how the PyNN script builds it: ``"list"`` is a ``FromListConnector`` of the expanded synapse list
(exactly the projection a folded matrix would give); ``"conv"`` is sPyNNaker's
``ConvolutionConnector`` on local-only cores for one (source channel, destination channel) pair
(:mod:`.local_only`; the kernel is then (1, 1, k, k) and both shapes (1, H, W)).

Everything here costs what the kernel and the populations hold, never ``n_pre x n_post``:
:func:`fan_in` / :func:`fan_out` count synapses in closed form, :func:`conv_add` is the ring-buffer
contribution of a tick's spikes by index arithmetic (shifted slices of the spike map times the
kernel taps), and :func:`expand` gives the synapse list in chunks for the script and the checks.
"""
from __future__ import annotations

import numpy as np

from neurocompile.ir.linear_maps import conv_fan_out, conv_out_shape, conv_pair_chunks, conv_tap_sums

CONNECTORS = ("list", "conv")


def conv_fits(node, in_shape) -> bool:
    """DenseForm's ``conv_fits``: a 2-D convolution with a 2-D input stays a kernel (``"list"``
    connector: any stride, padding, dilation and groups)."""
    return np.asarray(node.weight).ndim == 4 and len(tuple(in_shape)) == 3


def geometry(node, in_shape, connector: str = "list") -> dict:
    """The ``conv`` field of a projection for a Conv2d ``node`` reading ``in_shape`` (C, H, W)."""
    w = np.asarray(node.weight)
    in_shape = [int(v) for v in in_shape]
    out = conv_out_shape(w.shape, in_shape, node.stride, node.padding, node.dilation)
    return {"in_shape": in_shape, "out_shape": [int(v) for v in out],
            "stride": [int(v) for v in node.stride], "padding": [int(v) for v in node.padding],
            "dilation": [int(v) for v in node.dilation], "groups": int(node.groups), "connector": connector}


def _args(geo: dict):
    return (tuple(geo["in_shape"]), tuple(geo["stride"]), tuple(geo["padding"]), tuple(geo["dilation"]),
            int(geo["groups"]))


def n_pre(geo: dict) -> int:
    return int(np.prod(geo["in_shape"]))


def n_post(geo: dict) -> int:
    return int(np.prod(geo["out_shape"]))


def fan_in(kernel: np.ndarray, geo: dict) -> np.ndarray:
    """Synapses (nonzero taps inside the input) per destination neuron, flat."""
    k = np.asarray(kernel)
    return np.rint(conv_tap_sums(k, *_args(geo), values=(k != 0))).astype(np.int64)


def fan_out(kernel: np.ndarray, geo: dict) -> np.ndarray:
    """Synapses per source neuron (the length of its synaptic row), flat."""
    return conv_fan_out(np.asarray(kernel), *_args(geo))


def n_synapses(kernel: np.ndarray, geo: dict) -> int:
    return int(fan_in(kernel, geo).sum())


def expand(kernel: np.ndarray, geo: dict, max_pairs: int = 1 << 22):
    """The synapse list in chunks: ``(pre, post, value)`` with ``value = kernel.ravel()[tap]``,
    nonzero taps only, ordered by destination channel."""
    k = np.asarray(kernel)
    flat = k.reshape(-1)
    for src, dst, tap in conv_pair_chunks(k, *_args(geo), max_pairs=max_pairs):
        yield src, dst, flat[tap]


def expand_all(kernel: np.ndarray, geo: dict):
    parts = list(expand(kernel, geo))
    if not parts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.asarray(kernel).dtype)
    return tuple(np.concatenate([p[i] for p in parts]) for i in range(3))


def conv_add(spikes: np.ndarray, kernel: np.ndarray, geo: dict) -> np.ndarray:
    """``(batch, n_post)`` sums of ``kernel`` values over the synapses of the spiking sources
    (``spikes`` ``(batch, n_pre)`` bool): what the ring buffer receives from one tick. Computed in
    float64 from shifted slices of the zero-padded spike map; integer words sum exactly (every
    sum stays far below 2**53), so the caller may ``rint`` them."""
    B = spikes.shape[0]
    C, H, W = geo["in_shape"]
    co, Ho, Wo = geo["out_shape"]
    (sh, sw), (ph, pw), (dh, dw), g = geo["stride"], geo["padding"], geo["dilation"], int(geo["groups"])
    k = np.asarray(kernel, dtype=np.float64)
    cig, og = k.shape[1], co // g
    x = np.zeros((B, C, H + 2 * ph, W + 2 * pw))
    x[:, :, ph:ph + H, pw:pw + W] = spikes.reshape(B, C, H, W)
    out = np.zeros((B, co, Ho * Wo))
    for i in range(k.shape[2]):
        for j in range(k.shape[3]):
            tap = k[:, :, i, j]
            if not tap.any():
                continue
            xs = x[:, :, i * dh:i * dh + sh * (Ho - 1) + 1:sh, j * dw:j * dw + sw * (Wo - 1) + 1:sw]
            xs = xs.reshape(B, C, Ho * Wo)
            for gi in range(g):
                t = tap[gi * og:(gi + 1) * og]
                part = xs[:, gi * cig:(gi + 1) * cig]
                if t.shape[1] == 1:   # one source channel (a channel population): broadcast
                    out[:, gi * og:(gi + 1) * og] += t[None, :, 0, None] * part
                else:   # (og, cig) @ (B, cig, HW): a BLAS product per tap
                    out[:, gi * og:(gi + 1) * og] += np.matmul(t, part)
    return out.reshape(B, -1)
