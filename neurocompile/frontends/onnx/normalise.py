"""Activation scales for ANN-to-SNN conversion.

A rate-coded neuron with threshold 1 fires at most once a step, so it can only represent values in
[0, 1]. Each tensor of the analog network therefore gets a *scale* ``lam``: the spiking network
carries ``value / lam``. The scales come from one of two sources:

* **data-based** (Rueckauer et al. 2017, "Conversion of continuous-valued deep networks to
  efficient event-driven networks for image classification", Front. Neurosci. 11:682): run the
  analog network on calibration samples and take, per tensor, the ``percentile``-th percentile
  (default 99.9) of its *positive* values, pooled over all samples and all neurons of the layer
  (zeros are left out as in the SNN toolbox: a ReLU layer is mostly zeros, and counting them would
  pull the percentile far below the large activations that matter). The 0.1 % of activations
  above the scale saturate at one spike a step; in exchange the other 99.9 % use the rate range
  much better than with the maximum, which a single outlier sets.
* **weight-based** fallback when no calibration data is given (Diehl et al. 2015, "model-based
  normalisation", generalised to any DAG): propagate an interval bound of every tensor from an
  assumed input range (default [0, 1]) through the network with interval arithmetic (``W+`` and
  ``W-`` parts of each weight, ReLU clamps) and take the largest upper bound of each tensor. No
  activation can then exceed its scale (no saturation), but the bound is loose, so rates are low
  and more time steps are needed for the same accuracy.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from neurocompile.errors import NeuroCompileError
from neurocompile.frontends.onnx.ann import Ann, apply_linear, forward
from neurocompile.ir import nodes as N


def calibration_batch(ann: Ann, calibration, file: str | None = None) -> dict[str, np.ndarray]:
    """The calibration samples as {input op: (batch, *shape) float64}.

    A single array may have any shape whose per-sample size equals the input's (a (N, 1, 8, 8)
    image stack feeds a model whose input is (N, 64)); a dict gives one array per input.
    """
    inputs = ann.inputs
    if not isinstance(calibration, dict):
        if len(inputs) != 1:
            raise NeuroCompileError(f"the model has inputs {inputs}: give calibration as {{name: array}}", file=file)
        calibration = {inputs[0]: calibration}
    out = {}
    for name in inputs:
        if name not in calibration:
            raise NeuroCompileError(f"no calibration array for input '{name}'", file=file)
        arr = np.asarray(calibration[name])
        if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
            raise NeuroCompileError("calibration data must be a numeric array", file=file)
        shape = ann.ops[name].shape
        size = int(np.prod(shape))
        if arr.ndim == 0 or arr.size % size or (arr.shape[1:] != shape and arr.size // max(arr.shape[0], 1) != size):
            raise NeuroCompileError(
                f"calibration array of shape {arr.shape} does not hold samples of shape {shape} "
                f"(expected (N, {', '.join(map(str, shape))}))", file=file)
        arr = arr.astype(np.float64).reshape((-1,) + shape)
        if arr.shape[0] == 0:
            raise NeuroCompileError("the calibration array holds no samples", file=file)
        if not np.all(np.isfinite(arr)):
            raise NeuroCompileError("the calibration array has NaN or infinite values", file=file)
        out[name] = arr
    return out


def robust_max(values: np.ndarray, percentile: float) -> float:
    """``percentile`` of the positive entries (1.0 when there are none)."""
    pos = values[values > 0]
    if pos.size == 0:
        return 1.0
    return float(np.percentile(pos, percentile))


def data_scales(ann: Ann, batch: dict[str, np.ndarray], percentile: float) -> dict[str, float]:
    """Data-based scale of every op's output (see the module docstring).

    ReLU outputs, inputs and outputs: percentile of the positive values. Other tensors (a linear
    layer feeding another linear layer, a sum), which may be negative: percentile of ``|x|``.
    """
    values = forward(ann, batch)
    outputs = set(ann.outputs.values())
    scales = {}
    for name, op in ann.ops.items():
        v = values[name]
        if op.kind in ("relu", "input") or name in outputs:
            scales[name] = robust_max(v, percentile)
        else:
            scales[name] = robust_max(np.abs(v), percentile)
    return scales


def bound_scales(ann: Ann, input_range=(0.0, 1.0)) -> dict[str, float]:
    """Weight-based scales: the largest interval upper bound of each tensor (see module docstring)."""
    lo_in, hi_in = (float(v) for v in input_range)
    if not hi_in > lo_in:
        raise NeuroCompileError(f"input_range must be (low, high) with low < high, got {input_range}")
    bounds: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    scales = {}
    outputs = set(ann.outputs.values())
    for name, op in ann.ops.items():
        if op.kind == "input":
            lo, hi = np.full((1,) + op.shape, lo_in), np.full((1,) + op.shape, hi_in)
        elif op.kind == "relu":
            lo, hi = (np.maximum(b, 0.0) for b in bounds[op.inputs[0]])
        elif op.kind == "add":
            lo = sum(bounds[i][0] for i in op.inputs)
            hi = sum(bounds[i][1] for i in op.inputs)
        elif op.pass_through:
            lo, hi = (apply_linear(op.node, b, op.shape) for b in bounds[op.inputs[0]])
        else:
            lo, hi = _affine_bounds(op, *bounds[op.inputs[0]])
        bounds[name] = (lo, hi)
        if op.kind in ("relu", "input") or name in outputs:
            top = float(np.max(hi))
        else:
            top = float(max(np.max(np.abs(lo)), np.max(np.abs(hi))))
        scales[name] = top if top > 0 else 1.0
    return scales


def _affine_bounds(op, lo: np.ndarray, hi: np.ndarray):
    node = op.node
    if isinstance(node, N.Scale):
        a, b = node.scale * lo, node.scale * hi
        return np.minimum(a, b), np.maximum(a, b)
    pos = dataclasses.replace(node, weight=np.maximum(node.weight, 0.0))
    neg = dataclasses.replace(node, weight=np.minimum(node.weight, 0.0))
    if hasattr(node, "bias"):
        pos = dataclasses.replace(pos, bias=0.0)
        neg = dataclasses.replace(neg, bias=0.0)
    bias = _bias_of(node, op.shape)
    f = lambda n, x: apply_linear(n, x, op.shape)  # noqa: E731
    return f(pos, lo) + f(neg, hi) + bias, f(pos, hi) + f(neg, lo) + bias


def _bias_of(node, shape) -> np.ndarray:
    b = np.asarray(getattr(node, "bias", 0.0), dtype=np.float64)
    if b.ndim and len(shape) > 1:
        return b.reshape((1, -1) + (1,) * (len(shape) - 1))
    return b
