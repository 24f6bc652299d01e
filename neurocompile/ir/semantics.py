"""Reference semantics: one float64 function per op, applied once per time step.

Each function takes ``(node, x, state, ctx)``: ``x`` is the summed input of shape
``(batch, *in_shape)`` (``None`` for Input), ``state`` a dict the function owns across steps (empty
at step 0) and ``ctx`` the run context (``dt``, ``rule``, ``step``, external input). It returns
``y``. These functions are the meaning of the graph; the node docstrings state the same equations.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from neurocompile.errors import GraphError
from neurocompile.ir import nodes as N

OPS: dict[type, Callable] = {}


def op(*types):
    def register(fn):
        for t in types:
            OPS[t] = fn
        return fn
    return register


class Context:
    def __init__(self, dt: float | None, rule: str):
        self.dt = dt
        self.rule = rule
        self.step = 0
        self.external: dict[str, np.ndarray] = {}

    def beta(self, tau: np.ndarray) -> np.ndarray:
        if self.dt is None:
            raise GraphError("this graph has time constants but no dt: set dt (e.g. --dt 1e-3)")
        return N.decay_factor(tau, self.dt, self.rule)


# -- structure ------------------------------------------------------------------------------
@op(N.Input)
def _input(node, x, state, ctx):
    return ctx.external[state["name"]]


@op(N.Output, N.Identity)
def _identity(node, x, state, ctx):
    return x


@op(N.Flatten)
def _flatten(node, x, state, ctx):
    return x.reshape((x.shape[0],) + state["out_shape"])


@op(N.Delay)
def _delay(node, x, state, ctx):
    d = node.delay
    depth = int(d.max()) if d.size else 0
    if depth == 0:
        return x
    if "buf" not in state:  # ring of the last depth+1 inputs, slot t % (depth+1)
        state["buf"] = np.zeros((depth + 1,) + x.shape)
        state["d"] = np.broadcast_to(d, x.shape[1:]).astype(np.int64)
    buf, t = state["buf"], ctx.step
    buf[t % (depth + 1)] = x
    idx = (t - state["d"]) % (depth + 1)
    out = np.take_along_axis(buf, idx[None, None].repeat(x.shape[0], axis=1), axis=0)[0]
    return np.where(t - state["d"] >= 0, out, 0.0)


# -- synapses -------------------------------------------------------------------------------
@op(N.Linear)
def _linear(node, x, state, ctx):
    return x @ node.weight.T


@op(N.Affine)
def _affine(node, x, state, ctx):
    return x @ node.weight.T + node.bias


@op(N.Scale)
def _scale(node, x, state, ctx):
    return x * node.scale


def _windows(x: np.ndarray, kernel, stride, padding, dilation, pad_value=0.0) -> np.ndarray:
    """(B, C, *spatial) -> (B, C, *out_spatial, *kernel) view of the padded input."""
    nd = len(kernel)
    pad = [(0, 0), (0, 0)] + [(p, p) for p in padding]
    if any(padding):
        x = np.pad(x, pad, constant_values=pad_value)
    span = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    win = np.lib.stride_tricks.sliding_window_view(x, span, axis=tuple(range(2, 2 + nd)))
    sl = (slice(None), slice(None)) + tuple(slice(None, None, s) for s in stride) \
        + tuple(slice(None, None, d) for d in dilation)
    return win[sl]


@op(N.Conv1d, N.Conv2d)
def _conv(node, x, state, ctx):
    w = node.weight
    nd = w.ndim - 2
    win = _windows(x, w.shape[2:], node.stride, node.padding, node.dilation)
    g = node.groups
    B, C = x.shape[:2]
    cg, og = C // g, w.shape[0] // g
    outs = []
    k_axes = tuple(range(2 + nd, 2 + 2 * nd))
    for gi in range(g):
        wg = w[gi * og:(gi + 1) * og]
        xg = win[:, gi * cg:(gi + 1) * cg]
        # contract channel and kernel axes: (B, cg, *o, *k) x (og, cg, *k) -> (B, *o, og)
        y = np.tensordot(xg, wg, axes=((1,) + k_axes, (1,) + tuple(range(2, 2 + nd))))
        outs.append(np.moveaxis(y, -1, 1))
    y = np.concatenate(outs, axis=1) if g > 1 else outs[0]
    if node.bias.ndim:
        y = y + node.bias.reshape((1, -1) + (1,) * nd)
    else:
        y = y + node.bias
    return y


@op(N.SumPool2d, N.AvgPool2d, N.MaxPool2d)
def _pool(node, x, state, ctx):
    is_max = isinstance(node, N.MaxPool2d)
    win = _windows(x, node.kernel_size, node.stride, node.padding, (1, 1),
                   pad_value=-np.inf if is_max else 0.0)
    if is_max:
        return win.max(axis=(-2, -1))
    y = win.sum(axis=(-2, -1))
    if isinstance(node, N.AvgPool2d):
        y = y / (node.kernel_size[0] * node.kernel_size[1])
    return y


# -- neurons --------------------------------------------------------------------------------
def _spike(node, v):
    return (v >= node.v_threshold if node.compare == "ge" else v > node.v_threshold).astype(np.float64)


def _membrane(node, state, x, decay, drive):
    """Apply reset and refractory rules around ``v = decay*v' + drive``; return this step's spikes."""
    v = state.get("v")
    if v is None:
        v = state["v"] = np.zeros_like(x)
        state["s"] = np.zeros_like(x)
        state["ref"] = np.zeros(x.shape, dtype=np.int64)
    s = state["s"]
    if node.reset_delay and node.reset == "zero":
        v = np.where(s > 0, node.v_reset, v)
    v_new = decay * v + drive
    if node.reset_delay and node.reset == "subtract":
        v_new = v_new - node.v_threshold * s
    held = state["ref"] > 0
    if node.refractory:
        v_new = np.where(held, node.v_reset, v_new)
    s_new = _spike(node, v_new) * ~held
    if node.refractory:
        state["ref"] = np.where(s_new > 0, int(node.refractory), np.maximum(state["ref"] - 1, 0))
    state["s"] = s_new
    if not node.reset_delay:
        if node.reset == "zero":
            v_new = np.where(s_new > 0, node.v_reset, v_new)
        elif node.reset == "subtract":
            v_new = v_new - node.v_threshold * s_new
    state["v"] = v_new
    return s_new


@op(N.LIF)
def _lif(node, x, state, ctx):
    beta = ctx.beta(node.tau)
    return _membrane(node, state, x, beta, (1 - beta) * (node.v_leak + node.r * x))


def _current(node, x, state, ctx):
    alpha = ctx.beta(node.tau_syn)
    i = alpha * state.get("i", 0.0) + (1 - alpha) * node.w_in * x
    state["i"] = i
    return i


@op(N.CubaLIF)
def _cubalif(node, x, state, ctx):
    i = _current(node, x, state, ctx)
    beta = ctx.beta(node.tau_mem)
    return _membrane(node, state, x, beta, (1 - beta) * (node.v_leak + node.r * i))


@op(N.IF)
def _if(node, x, state, ctx):
    return _membrane(node, state, x, 1.0, node.r * x)


@op(N.LI)
def _li(node, x, state, ctx):
    beta = ctx.beta(node.tau)
    state["v"] = beta * state.get("v", 0.0) + (1 - beta) * (node.v_leak + node.r * x)
    return state["v"]


@op(N.CubaLI)
def _cubali(node, x, state, ctx):
    i = _current(node, x, state, ctx)
    beta = ctx.beta(node.tau_mem)
    state["v"] = beta * state.get("v", 0.0) + (1 - beta) * (node.v_leak + node.r * i)
    return state["v"]


@op(N.Integrator)
def _integrator(node, x, state, ctx):
    state["v"] = state.get("v", 0.0) + node.r * x
    return state["v"]


@op(N.Threshold)
def _threshold(node, x, state, ctx):
    return (x > node.threshold).astype(np.float64)


# -- sigma-delta ----------------------------------------------------------------------------
def _encode(state: dict, act: np.ndarray, vth, cum_error: bool) -> np.ndarray:
    """The message stage shared by SigmaDelta and Delta (Lava's delta dynamics)."""
    delta = act - state.get("act", 0.0) + state.get("res", 0.0)
    if cum_error:
        err = state.get("e", 0.0) + delta
        y = np.where(np.abs(err) >= vth, delta, 0.0)
        state["e"] = np.where(y != 0, 0.0, err)
    else:
        y = np.where(np.abs(delta) >= vth, delta, 0.0)
    state["res"] = delta - y
    state["act"] = act
    return y


@op(N.SigmaDelta)
def _sigma_delta(node, x, state, ctx):
    state["sigma"] = state.get("sigma", 0.0) + x
    pre = state["sigma"] + node.bias
    return _encode(state, np.maximum(pre, 0.0) if node.act == "relu" else pre, node.vth, node.cum_error)


@op(N.Delta)
def _delta(node, x, state, ctx):
    return _encode(state, np.asarray(x, dtype=np.float64), node.vth, node.cum_error)
