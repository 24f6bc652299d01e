"""``nn.BatchNorm1d``/``nn.BatchNorm2d`` at inference: an affine map per feature (channel).

In eval mode BatchNorm computes ``y = (x - mean)/sqrt(var + eps)*gamma + beta`` with its running
statistics, i.e. ``y = s*x + c`` with ``s = gamma/sqrt(var + eps)`` and ``c = beta - s*mean``. Right
after an ``nn.Linear`` (BatchNorm1d) or ``nn.Conv2d`` (BatchNorm2d) whose output nothing else reads,
it is folded into that layer (``W' = s*W``, ``b' = s*b + c``); elsewhere it becomes its own node
(an Affine with a diagonal matrix, or a per-channel 1x1 convolution with ``groups = C``).
"""
from __future__ import annotations

import numpy as np

from neurocompile.errors import UnsupportedError
from neurocompile.ir import nodes as N


def fold_batchnorm(b, qual: str, layer):
    """Fold ``layer`` into the builder's previous node (returns None) or return a new node."""
    nn = b.nn
    two_d = isinstance(layer, nn.BatchNorm2d)
    if layer.running_mean is None or layer.running_var is None:
        raise UnsupportedError(f"{type(layer).__name__} without running statistics "
                               "(track_running_stats=False) normalises each batch by itself at "
                               "inference too; the graph has no per-batch statistics", node=qual)
    c = layer.num_features
    if (two_d and (len(b.shape) != 3 or b.shape[0] != c)) or (not two_d and b.shape != (c,)):
        raise UnsupportedError(f"{type(layer).__name__}({c}) gets an input of shape {b.shape}", node=qual)
    mean, var = b._array(layer.running_mean), b._array(layer.running_var)
    gamma = b._array(layer.weight) if layer.weight is not None else np.ones(c)
    beta = b._array(layer.bias) if layer.bias is not None else np.zeros(c)
    s = gamma / np.sqrt(var + float(layer.eps))
    shift = beta - s * mean
    prev = b.g.nodes[b.prev]
    alone = not b.g.successors(b.prev)       # nothing else reads the layer before
    if alone and not two_d and isinstance(prev, (N.Linear, N.Affine)) and not isinstance(prev, N.Input):
        bias = prev.bias if isinstance(prev, N.Affine) else 0.0
        b.g.nodes[b.prev] = N.Affine(weight=prev.weight * s[:, None], bias=s * bias + shift)
    elif alone and two_d and isinstance(prev, N.Conv2d) and prev.weight.shape[0] == c:
        prev.weight = prev.weight * s[:, None, None, None]
        prev.bias = s * np.broadcast_to(prev.bias, (c,)) + shift
    else:
        b.g.assume(f"'{qual}': {type(layer).__name__} (eval mode, running statistics) kept as its own node")
        if two_d:
            return N.Conv2d(weight=s.reshape(c, 1, 1, 1), bias=shift, groups=c)
        return N.Affine(weight=np.diag(s), bias=shift)
    b.g.assume(f"'{qual}': {type(layer).__name__} (eval mode, running statistics) folded into '{b.prev}'")
    return None
