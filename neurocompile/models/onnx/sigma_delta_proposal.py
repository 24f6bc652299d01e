"""PROPOSAL: sigma-delta neurons (Lava ``lava.proc.sdn``) and ANN -> sigma-delta conversion.

Nothing here is part of the graph yet: the two node classes below are *not* :class:`Node`
subclasses (so importing this module registers nothing) and graphs that hold them run only with
:func:`run` below, not with the reference executor. The intent is that ``SigmaDelta`` and
``Delta`` move to ``compiler/nodes/neurons.py``, ``sigma_delta_op``/``delta_op`` to
``emulator/reference/ops.py``, and ``sigma_delta_fixed`` to the Loihi 2 emulator.

Semantics, read from lava-nc 0.10 ``lava/proc/sdn/process.py`` and ``models.py``
================================================================================
Notation per neuron, step ``t``; all state starts at 0; ``H(z) = 1 if z > 0``.

**SigmaDelta** (``SigmaDelta(shape, vth, bias=0, act_mode=RELU, cum_error=False, spike_exp=0,
state_exp=0)``), ``AbstractSigmaDeltaModel.dynamics``::

    sigma[t]  = sigma[t-1] + a_in[t]                     # sigma: integrate the input messages
    act[t]    = f(sigma[t] + bias)                       # f = max(., 0) (RELU) or identity (UNIT)
    delta[t]  = act[t] - act[t-1] + residue[t-1]         # change since the last step + unsent rest
    # without cum_error:
    s[t]      = delta[t]  if |delta[t]| >= vth  else 0   # graded message (the delta itself)
    # with cum_error:
    error[t]  = error[t-1] + delta[t]
    s[t]      = delta[t]  if |error[t]| >= vth  else 0   # note: the test uses error, the message is delta
    error[t]  = 0 where s[t] != 0  (else unchanged)
    # both:
    residue[t] = delta[t] - s[t]

The comparison is ``>=`` in the code (the docstrings say ``>``; the code is what runs). The
output is the *value* ``s[t]`` (a graded spike), nonzero only when a message is sent.
Invariant without cum_error: ``sum_{k<=t} s[k] = act[t] - residue[t]`` with ``|residue| < vth``,
so a downstream ``Sigma`` reconstructs ``act`` to within ``vth``. With cum_error, ``error`` adds
``delta`` (which already contains the carried residue) every step, so a residue that stays
below ``vth`` is counted again each step until ``|error|`` reaches ``vth`` and it is sent: the
unsent rest is flushed after a while instead of staying forever.

**Delta** (``Delta(shape, vth, cum_error, spike_exp, state_exp)``): the same encoder without the
sigma and activation stages, ``act[t] = a_in[t]`` (the input *value*, not an increment);
used to delta-encode an input stream.

**Sigma** (``Sigma(shape)``): ``sigma[t] = sigma[t-1] + a_in[t]``, output ``sigma[t]`` every step
(a decoder/readout; the graph's ``Integrator`` with ``r = 1``).

**Dense** with graded input (``num_message_bits > 0``): ``a_out[t] = W @ s_in[t-1]`` -- one step
of delay per connection layer (``a_buff`` is sent before the new input is accumulated), as for
binary spikes. The graph has no such delay on feed-forward edges; a backend must add one step
per synapse layer (as the Loihi emulator already does for LIF networks).

Fixed point (``tag('fixed_pt')``, ``PySigmaDeltaModelFixed``)
-------------------------------------------------------------
* At process construction ``vth`` and ``bias`` are multiplied by ``2**(spike_exp + state_exp)``.
  All state (``sigma``, ``act``, ``residue``, ``error``) is ``np.int32`` (declared 24-bit; the
  Python model neither saturates nor wraps at 24 bits -- only at int32), ``bias`` is declared
  16-bit (not enforced either). Give integer ``vth``/``bias``.
* Per step the same equations run on the integers as received, then the message is
  ``s_out = s[t] >> state_exp`` (arithmetic shift: floor toward -inf). ``residue`` keeps
  ``delta - s[t]`` *before* the shift, so the ``state_exp`` low bits of every sent message are
  dropped for good (a bias toward -inf of up to ``2**state_exp - 1`` units per message, not
  carried forward).
* ``a_in`` is *not* shifted in SigmaDelta (it arrives in the units the Dense produced). The
  ``Delta`` fixed-point model, in contrast, shifts its input left by ``spike_exp + state_exp``
  before encoding (``act`` holds the shifted value) and right by ``state_exp`` after.
* Dense (``PyDenseModelBitAcc``): weights clipped to 8 bits (+ sign for mixed-sign matrices),
  their low ``8 - num_weight_bits (+1 if mixed)`` bits cleared, ``a = W @ s_in`` on int32,
  then ``a << weight_exp`` (or ``>> -weight_exp``, floor).
* Units: with a message in units of ``2**-spike_exp`` of the activation and neuron state in units
  of ``2**-(spike_exp + state_exp)``, a layer's integer weights ``w`` and ``weight_exp`` must give
  ``w * 2**weight_exp = W * 2**(state_exp_post + spike_exp_post - spike_exp_pre)``; ``vth`` and
  ``bias`` are given in units of the activation (before the process scales them).

Float proposal (what :class:`SigmaDelta` / :func:`sigma_delta_op` compute) = the floating_pt
model above exactly (``spike_exp``/``state_exp`` play no role in float).

Conversion (:func:`convert`)
----------------------------
An ANN layer ``y = relu(W x + b)`` becomes synapse ``W`` (bias removed) -> ``SigmaDelta(relu,
bias=b, vth)``: since the synapse is linear, the neuron's ``sigma`` is ``W`` applied to the sum of
all messages received, i.e. to the upstream activation up to its residue, and the bias enters
once through the activation (a bias on the synapse would be integrated every step). Biases that
pass through pools/sums before reaching a neuron are moved as their image (the pre-activation the
network has for all-zero neuron outputs). The input is delta-encoded by a ``Delta`` node; the
logits come out of a ``SigmaDelta(unit, bias, vth=0)`` whose messages sum over time to the logits
(the Output records messages; decode by summing over steps). Thresholds are relative:
``vth_l = vth * lam_l`` with ``lam_l`` the layer's activation scale (:mod:`.normalise`).
With ``vth = 0`` and a static input the network reproduces the ANN exactly at step 0 (no synapse
delays in the graph) and sends nothing afterwards.
"""
from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np

from ...compiler import nodes as N
from ...compiler.graph import Graph
from ...emulator.reference.ops import OPS, Context
from ...errors import GraphError, NeuroCompileError
from . import normalise
from .ann import Ann, apply_linear
from .parser import parse, sanitize

ACTIVATIONS = ("relu", "unit")


# ------------------------------------------------------------------------------------------
# proposed nodes (plain dataclasses shaped like compiler.nodes.Node; not registered)
# ------------------------------------------------------------------------------------------
def _elementwise(node, in_shape):
    if in_shape is None:
        raise GraphError(f"{node.op} needs an input shape")
    for name in ("vth", "bias"):
        value = getattr(node, name, None)
        if value is not None and np.broadcast_shapes(value.shape, tuple(in_shape)) != tuple(in_shape):
            raise GraphError(f"parameter '{name}' of shape {value.shape} does not broadcast to {tuple(in_shape)}")
    return tuple(in_shape)


@dataclasses.dataclass(eq=False)
class SigmaDelta:
    """Sigma-delta neuron (Lava ``SigmaDelta``, floating_pt)::

        sigma[t]   = sigma[t-1] + x[t]
        act[t]     = f(sigma[t] + bias)          f = relu ("relu") or identity ("unit")
        delta[t]   = act[t] - act[t-1] + res[t-1]
        e[t]       = e[t-1] + delta[t]           (cum_error only)
        y[t]       = delta[t] if |delta[t]| >= vth else 0     (|e[t]| >= vth with cum_error)
        res[t]     = delta[t] - y[t];  e[t] = 0 where y[t] != 0

    Output: the graded message ``y[t]``. State: ``sigma``, ``act``, ``res``, ``e``.
    """

    op: ClassVar[str] = "SigmaDelta"
    stateful: ClassVar[bool] = True
    spiking: ClassVar[bool] = False
    graded: ClassVar[bool] = True   # proposed: outputs are sparse graded messages

    vth: np.ndarray = 0.0
    bias: np.ndarray = 0.0
    act: str = "relu"
    cum_error: bool = False

    def __post_init__(self):
        self.vth = np.asarray(self.vth, dtype=np.float64)
        self.bias = np.asarray(self.bias, dtype=np.float64)
        self.cum_error = bool(self.cum_error)

    def check(self) -> None:
        if self.act not in ACTIVATIONS:
            raise GraphError(f"act must be one of {ACTIVATIONS}, got '{self.act}'")
        if not np.all(np.isfinite(self.vth)) or np.any(self.vth < 0):
            raise GraphError("vth must be finite and >= 0")
        if not np.all(np.isfinite(self.bias)):
            raise GraphError("parameter 'bias' has NaN or infinite entries")

    def infer_shape(self, in_shape):
        return _elementwise(self, in_shape)


@dataclasses.dataclass(eq=False)
class Delta:
    """Delta encoder (Lava ``Delta``, floating_pt): as SigmaDelta with ``act[t] = x[t]`` (no
    integration, no activation, no bias). Output: the graded message ``y[t]``."""

    op: ClassVar[str] = "Delta"
    stateful: ClassVar[bool] = True
    spiking: ClassVar[bool] = False
    graded: ClassVar[bool] = True

    vth: np.ndarray = 0.0
    cum_error: bool = False

    def __post_init__(self):
        self.vth = np.asarray(self.vth, dtype=np.float64)
        self.cum_error = bool(self.cum_error)

    def check(self) -> None:
        if not np.all(np.isfinite(self.vth)) or np.any(self.vth < 0):
            raise GraphError("vth must be finite and >= 0")

    def infer_shape(self, in_shape):
        return _elementwise(self, in_shape)


PROPOSED_TYPES = (SigmaDelta, Delta)


def _encode(state: dict, act: np.ndarray, vth, cum_error: bool) -> np.ndarray:
    """The delta stage shared by SigmaDelta and Delta (Lava's ``delta_dynamics``)."""
    prev = state.get("act", 0.0)
    delta = act - prev + state.get("res", 0.0)
    if cum_error:
        err = state.get("e", 0.0) + delta
        y = np.where(np.abs(err) >= vth, delta, 0.0)
        state["e"] = err * (1 - (np.abs(y) > 0))
    else:
        y = np.where(np.abs(delta) >= vth, delta, 0.0)
    state["res"] = delta - y
    state["act"] = act
    return y


def sigma_delta_op(node: SigmaDelta, x, state, ctx=None) -> np.ndarray:
    """Reference op (signature of ``emulator.reference.ops``) for :class:`SigmaDelta`."""
    sigma = state.get("sigma", 0.0) + x
    state["sigma"] = sigma
    pre = sigma + node.bias
    act = np.maximum(pre, 0.0) if node.act == "relu" else pre
    return _encode(state, act, node.vth, node.cum_error)


def delta_op(node: Delta, x, state, ctx=None) -> np.ndarray:
    """Reference op for :class:`Delta`."""
    return _encode(state, np.asarray(x, dtype=np.float64), node.vth, node.cum_error)


PROPOSED_OPS = {SigmaDelta: sigma_delta_op, Delta: delta_op}


# ------------------------------------------------------------------------------------------
# Lava fixed_pt, bit for bit (for the Loihi 2 emulator)
# ------------------------------------------------------------------------------------------
def sigma_delta_fixed(a_in: np.ndarray, *, vth: int, bias=0, act: str = "relu", cum_error: bool = False,
                      spike_exp: int = 0, state_exp: int = 0, delta_only: bool = False) -> dict[str, np.ndarray]:
    """Run Lava's ``PySigmaDeltaModelFixed`` (or ``PyDeltaModelFixed`` with ``delta_only``) on
    integer input ``a_in`` (T, n). ``vth``/``bias`` as given to the Lava process (it scales them by
    ``2**(spike_exp+state_exp)``). Returns per-step ``s_out`` (the sent messages, after the
    shift) and the state after each step (``sigma``, ``act``, ``residue``, ``error``), int32."""
    a_in = np.asarray(a_in)
    if not np.issubdtype(a_in.dtype, np.integer):
        raise NeuroCompileError("fixed-point input must be integers")
    T, n = a_in.shape
    scale = 1 << (spike_exp + state_exp)
    vth_s = np.int32(int(vth) * scale)
    bias_s = np.broadcast_to(np.asarray(bias, dtype=np.int64) * scale, (n,)).astype(np.int32)
    st = {k: np.zeros(n, np.int32) for k in ("sigma", "act", "residue", "error")}
    out = {k: np.zeros((T, n), np.int32) for k in ("s_out", "sigma", "act", "residue", "error")}
    with np.errstate(over="ignore"):
        for t in range(T):
            x = a_in[t].astype(np.int32)
            if delta_only:
                new_act = np.left_shift(x, np.int32(spike_exp + state_exp))
            else:
                st["sigma"] = (x + st["sigma"]).astype(np.int32)
                pre = (st["sigma"] + bias_s).astype(np.int32)
                new_act = np.maximum(pre, 0).astype(np.int32) if act == "relu" else pre
            delta = (new_act - st["act"] + st["residue"]).astype(np.int32)
            if cum_error:
                st["error"] = (st["error"] + delta).astype(np.int32)
                s = np.where(np.abs(st["error"]) >= vth_s, delta, 0).astype(np.int32)
                st["error"] = (st["error"] * (1 - (np.abs(s) > 0))).astype(np.int32)
            else:
                s = np.where(np.abs(delta) >= vth_s, delta, 0).astype(np.int32)
            st["residue"] = (delta - s).astype(np.int32)
            st["act"] = new_act
            out["s_out"][t] = np.right_shift(s, np.int32(state_exp))
            for k in ("sigma", "act", "residue", "error"):
                out[k][t] = st[k]
    return out


# ------------------------------------------------------------------------------------------
# conversion and a runner for graphs with proposed nodes
# ------------------------------------------------------------------------------------------
def bias_field(ann: Ann) -> dict[str, np.ndarray]:
    """Per op, its value when every input and every ReLU output is zero: the constant part of the
    affine map from the neurons below to this tensor (biases moved through pools and sums)."""
    vals: dict[str, np.ndarray] = {}
    for name, op in ann.ops.items():
        if op.kind in ("input", "relu"):
            vals[name] = np.zeros((1,) + op.shape)
        elif op.kind == "add":
            vals[name] = sum(vals[i] for i in op.inputs)
        else:
            vals[name] = apply_linear(op.node, vals[op.inputs[0]], op.shape)
    return {n: v[0] for n, v in vals.items()}


def _strip_bias(node):
    if isinstance(node, N.Affine):
        return N.Linear(weight=node.weight)
    if isinstance(node, (N.Conv1d, N.Conv2d)):
        return dataclasses.replace(node, bias=0.0)
    return dataclasses.replace(node)


def convert(path, calibration=None, *, vth: float = 0.02, cum_error: bool = False,
            percentile: float = 99.9, input_shape=None, input_range=(0.0, 1.0)) -> Graph:
    """ANN (ONNX) -> graph of synapses and proposed sigma-delta nodes (see the module docstring).

    ``vth`` is relative to each layer's activation scale (calibration percentile, else weight
    bounds); the readout has ``vth = 0``. The result runs with :func:`run` only.
    """
    ann = parse(path, input_shape=input_shape)
    if calibration is not None:
        batch = normalise.calibration_batch(ann, calibration, file=str(path))
        lam = normalise.data_scales(ann, batch, percentile)
    else:
        lam = normalise.bound_scales(ann, input_range)
    bias = bias_field(ann)
    g = Graph(dt=1.0)
    names: dict[str, str] = {}
    for name, op in ann.ops.items():
        if op.kind == "input":
            names[name] = g.add(f"{name}_delta", Delta(vth=vth * lam[name], cum_error=cum_error))
            g.connect(g.add(name, N.Input(shape=op.shape)), names[name])
            continue
        if op.kind == "relu":
            node = SigmaDelta(vth=vth * lam[name], bias=bias[op.inputs[0]], act="relu", cum_error=cum_error)
        elif op.kind == "add":
            node = N.Identity()
        else:
            node = _strip_bias(op.node)
        names[name] = g.add(name, node)
        for src in op.inputs:
            g.connect(names[src], names[name])
    for out_name, src in ann.outputs.items():
        base = sanitize(out_name, "output")
        if ann.ops[src].kind == "relu":
            g.connect(names[src], g.add(base, N.Output()))
            continue
        ro = g.add(f"{base}_readout", SigmaDelta(vth=0.0, bias=bias[src], act="unit"))
        g.chain(names[src], ro, g.add(base, N.Output()))
    g.assume("dt = 1.0: one step is one unit of time")
    g.assume(f"sigma-delta thresholds: {vth:g} x each layer's activation scale; readout vth = 0")
    g.metadata["onnx"] = {"method": "sigma_delta", "vth": vth, "cum_error": cum_error,
                          "scales": {n: float(v) for n, v in lam.items()}}
    return g


def run(graph: Graph, x: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Run a graph that may hold proposed nodes; ``x`` is (T, batch, *shape) for its one input.

    Returns ``(outputs, messages)``: per Output (T, batch, *shape), and per graded node the
    number of nonzero messages per sample (batch,).
    """
    shapes = graph.infer_shapes()
    for name, node in graph.nodes.items():
        node.check()
    order = graph.order()
    x = np.asarray(x, dtype=np.float64)
    T, batch = x.shape[:2]
    ctx = Context(graph.dt, graph.discretization)
    states = {n: {} for n in order}
    for n in order:
        if isinstance(graph.nodes[n], N.Flatten):
            states[n]["out_shape"] = shapes[n]
        if isinstance(graph.nodes[n], N.Input):
            states[n]["name"] = n
    incoming = {n: graph.predecessors(n) for n in order}
    outputs = {n: np.zeros((T, batch) + shapes[n]) for n in graph.outputs}
    messages = {n: np.zeros(batch) for n, node in graph.nodes.items() if isinstance(node, PROPOSED_TYPES)}
    for t in range(T):
        ctx.step = t
        ctx.external = {graph.inputs[0]: x[t]}
        values = {}
        for n in order:
            node = graph.nodes[n]
            xin = None
            for s in incoming[n]:
                xin = values[s] if xin is None else xin + values[s]
            fn = PROPOSED_OPS.get(type(node)) or OPS[type(node)]
            values[n] = fn(node, xin, states[n], ctx)
            if n in messages:
                messages[n] += np.count_nonzero(values[n].reshape(batch, -1), axis=1)
        for n in outputs:
            outputs[n][t] = values[n]
    return outputs, messages
