"""Folding a per-channel bias (``Add``) or scale and shift (``BatchNormalization``) into the
Linear/Affine/Conv layer in front of it, or expressing it as a layer of its own."""
from __future__ import annotations

import dataclasses

import numpy as np

from neurocompile.frontends.onnx.ann import AnnOp
from neurocompile.ir import nodes as N


def can_fold_into(op: AnnOp) -> bool:
    """True when ``op`` is a Linear/Affine/Conv layer that can absorb a per-channel scale or bias."""
    return op.kind == "linear" and isinstance(op.node, (N.Linear, N.Conv1d, N.Conv2d))


def fold_bias(op: AnnOp, bias: np.ndarray, label: str) -> None:
    """Add ``bias`` (one value per output channel) to the layer of ``op``."""
    old = op.node
    if isinstance(old, (N.Conv1d, N.Conv2d)):
        op.node = dataclasses.replace(old, bias=old.bias + bias)
    else:
        op.node = N.Affine(weight=old.weight, bias=getattr(old, "bias", 0.0) + bias)
    op.source += f" + {label}"


def fold_scale_shift(op: AnnOp, gain: np.ndarray, shift: np.ndarray, label: str) -> None:
    """Replace the layer of ``op`` by ``gain[c] * layer(x)[c] + shift[c]``."""
    old = op.node
    w = old.weight * gain.reshape((-1,) + (1,) * (old.weight.ndim - 1))
    b = np.asarray(getattr(old, "bias", 0.0)) * gain + shift
    if isinstance(old, (N.Conv1d, N.Conv2d)):
        op.node = dataclasses.replace(old, weight=w, bias=b)
    else:
        op.node = N.Affine(weight=w, bias=b)
    op.source += f" + {label} (folded)"


def channel_affine(gain: np.ndarray, shift: np.ndarray, spatial: int) -> N.Node:
    """``y[c] = gain[c] * x[c] + shift[c]`` as a diagonal Affine or a depthwise 1x1 convolution."""
    c = gain.shape[0]
    if spatial == 0:
        return N.Affine(weight=np.diag(gain), bias=shift)
    cls = N.Conv2d if spatial == 2 else N.Conv1d
    return cls(weight=gain.reshape((c, 1) + (1,) * spatial), bias=shift, groups=c)
