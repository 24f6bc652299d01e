"""Rate-coded conversion: the analog network becomes a spiking graph of IF neurons.

Per step ``t`` (graph ``dt = 1``, one step = one unit of time; nothing in an ANN has a time
constant):

* every ReLU becomes an ``IF`` neuron ``v[t] = v'[t-1] + x[t]``, spike when ``v[t] > 1``, reset by
  subtracting 1 right away (``reset="subtract"``, ``reset_delay=False``, ``compare="gt"``: Loihi's
  and NIR's strict comparison). Subtraction keeps the charge above threshold, so for a constant
  input ``a`` in [0, 1] the spike count after ``T`` steps is ``ceil(T*a) - 1`` (``a > 0``), i.e.
  within one spike of ``T*a``: the firing rate approximates ``relu(a)``. ``reset="zero"`` (what
  Lava's Loihi 2 LIF does) is available too; it drops the charge above threshold at every spike,
  so rates fall below ``a`` (``1 / (floor(1/a) + 1)``) and accuracy suffers.
* every linear layer keeps its IR node (Affine, Conv2d, AvgPool2d, Flatten, ...) with rescaled
  parameters. Biases are constant currents added every step.
* tensor scales (see :mod:`.normalise`): the graph carries ``value / lam`` of every tensor, so a
  weighted layer from a tensor of scale ``s_in`` to one of scale ``s_out`` gets
  ``W * s_in / s_out`` and ``b / s_out``. A neuron's input must have the neuron's own scale; where
  a sum (residual Add) or a neuron receives a tensor at another scale and no weighted layer can
  absorb the factor, a ``Scale`` node is inserted on that edge.
* input: ``"current"`` (default): the graph input is the analog sample, presented unchanged at
  every step, and the first layer integrates it as a current (scale 1). ``"spikes"``: the graph
  input is a 0/1 spike train per pixel whose rate is ``x / lam_in`` (clipped to [0, 1]); the first
  layer's weights carry ``lam_in``. :func:`encode_input` makes either input from samples.
* readout: ``"integrator"`` (default): the last layer (the logits, before the dropped softmax)
  feeds a non-spiking ``Integrator`` (``v[t] = v[t-1] + x[t]``); its value at the last step is
  ``T * logits / lam_out`` up to the rate error of the layer below, and the class is its argmax.
  ``"spikes"``: the logits drive IF neurons (as above) and the class is the argmax of their spike
  counts.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from neurocompile.errors import NeuroCompileError
from neurocompile.frontends.onnx.ann import Ann
from neurocompile.frontends.onnx.parser import sanitize
from neurocompile.ir import nodes as N
from neurocompile.ir.graph import Graph

INPUT_ENCODINGS = ("current", "spikes")
READOUTS = ("integrator", "spikes")
RESETS = ("subtract", "zero")


def plan_scales(ann: Ann, lam: dict[str, float], input_scales: dict[str, float]) -> dict[str, float]:
    """Scale at which the spiking graph carries each op's output.

    Neurons: their own ``lam``; inputs: ``input_scales``; pools and flattens pass their input's
    scale through; weighted layers and sums take the scale their consumers need (the neuron or
    readout they feed, through pools/flattens), else their own ``lam``.
    """
    outputs = set(ann.outputs.values())
    consumers = {n: ann.consumers(n) for n in ann.ops}
    scales: dict[str, float] = {}
    memo: dict[str, float | None] = {}

    def demand(name: str) -> float | None:
        if name in memo:
            return memo[name]
        want = None
        for c in consumers[name]:
            op = ann.ops[c]
            if op.kind == "relu":
                want = lam[c]
            elif op.kind == "add":
                want = demand(c) or lam[c]
            elif op.pass_through:
                want = demand(c)
            if want is not None:
                break
        if want is None and name in outputs:
            want = lam[name]
        memo[name] = want
        return want

    for name, op in ann.ops.items():
        if op.kind == "input":
            scales[name] = input_scales[name]
        elif op.kind == "relu":
            scales[name] = lam[name]
        elif op.pass_through:
            scales[name] = scales[op.inputs[0]]
        else:  # weighted, add
            scales[name] = demand(name) or lam[name]
    return scales


def build_graph(ann: Ann, scales: dict[str, float], *, readout: str = "integrator",
                input_encoding: str = "current", reset: str = "subtract") -> Graph:
    """The spiking graph for ``ann`` with the tensor scales of :func:`plan_scales`."""
    if reset not in RESETS:
        raise NeuroCompileError(f"reset must be one of {RESETS}, got '{reset}'")
    if readout not in READOUTS:
        raise NeuroCompileError(f"readout must be one of {READOUTS}, got '{readout}'")
    if input_encoding not in INPUT_ENCODINGS:
        raise NeuroCompileError(f"input_encoding must be one of {INPUT_ENCODINGS}, got '{input_encoding}'")
    g = Graph(dt=1.0)
    names: dict[str, str] = {}

    def add(base: str, node: N.Node) -> str:
        name, i = base, 1
        while name in g.nodes:
            i += 1
            name = f"{base}_{i}"
        return g.add(name, node)

    def expected_scale(dst: str, src: str) -> float:
        op = ann.ops[dst]
        if op.kind == "relu":
            return scales[dst]
        if op.kind == "add":
            return scales[dst]
        return scales[src]  # weighted layers absorb any input scale; pools pass it on

    def connect(src: str, dst_node: str, want: float) -> None:
        have = scales[src]
        if np.isclose(have, want, rtol=1e-12, atol=0.0):
            g.connect(names[src], dst_node)
            return
        s = add(f"{names[src]}_to_{dst_node}_scale", N.Scale(scale=have / want))
        g.chain(names[src], s, dst_node)

    for name, op in ann.ops.items():
        if op.kind == "input":
            names[name] = add(name, N.Input(shape=op.shape))
            continue
        if op.kind == "relu":
            node = N.IF(r=1.0, v_threshold=1.0, reset=reset, reset_delay=False, compare="gt")
        elif op.kind == "add":
            node = N.Identity()
        elif op.pass_through:
            node = dataclasses.replace(op.node)
        else:
            node = rescale(op.node, scales[op.inputs[0]], scales[name])
        names[name] = add(name, node)
        for src in op.inputs:
            connect(src, names[name], expected_scale(name, src))

    for out_name, src in ann.outputs.items():
        base = sanitize(out_name, "output")
        if ann.ops[src].kind == "relu":
            g.connect(names[src], add(base, N.Output()))
            continue
        if readout == "integrator":
            ro = add(f"{base}_readout", N.Integrator(r=1.0))
        else:
            ro = add(f"{base}_readout", N.IF(r=1.0, v_threshold=1.0, reset=reset, reset_delay=False,
                                              compare="gt"))
        connect(src, ro, scales[src])
        g.connect(ro, add(base, N.Output()))
    return g


def rescale(node: N.Node, s_in: float, s_out: float) -> N.Node:
    """A weighted node that maps ``x / s_in`` to ``f(x) / s_out``."""
    if isinstance(node, N.Scale):
        return N.Scale(scale=node.scale * s_in / s_out)
    new = dataclasses.replace(node, weight=node.weight * (s_in / s_out))
    if hasattr(node, "bias"):
        new = dataclasses.replace(new, bias=np.asarray(node.bias) / s_out)
    return new


# ------------------------------------------------------------------------------------------
# using the converted graph
# ------------------------------------------------------------------------------------------
def _info(graph: Graph) -> dict:
    info = graph.metadata.get("onnx")
    if not info:
        raise NeuroCompileError("this graph was not converted from ONNX (no metadata['onnx'])")
    return info


def encode_input(graph: Graph, x: np.ndarray, timesteps: int | None = None) -> np.ndarray:
    """Turn samples ``x`` (batch, *shape) into the graph's input (T, batch, *shape).

    ``"current"`` encoding repeats the sample at every step. ``"spikes"`` encoding emits, per
    element with rate ``r = clip(x / input_scale, 0, 1)``, a spike at step ``t`` when
    ``floor((t+1) r) > floor(t r)``: deterministic, evenly spaced, ``floor(T r)`` spikes in ``T``
    steps (what an IF neuron with constant input ``r`` and threshold 1 would emit with ``>=``).
    """
    info = _info(graph)
    T = int(timesteps or info["timesteps"])
    if T < 1:
        raise NeuroCompileError(f"timesteps must be >= 1, got {T}")
    shape = tuple(graph.nodes[graph.inputs[0]].shape)
    x = np.asarray(x, dtype=np.float64)
    x = x.reshape((-1,) + shape)
    if info["input_encoding"] == "current":
        return np.broadcast_to(x, (T,) + x.shape).copy()
    rate = np.clip(x / info["input_scale"], 0.0, 1.0)
    t = np.arange(T + 1).reshape((-1,) + (1,) * x.ndim)
    counts = np.floor(t * rate + 1e-9)
    return np.diff(counts, axis=0)


def decode_output(graph: Graph, output: np.ndarray) -> np.ndarray:
    """Class scores (batch, n) from the Output's recording (T, batch, *shape): the readout's value
    at the last step for an Integrator readout, the spike count for a spiking one."""
    info = _info(graph)
    out = np.asarray(output)
    if info["readout"] == "integrator" and not info.get("output_is_spiking", False):
        scores = out[-1]
    else:
        scores = out.sum(axis=0)
    return scores.reshape(scores.shape[0], -1)
