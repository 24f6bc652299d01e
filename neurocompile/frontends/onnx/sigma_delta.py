"""ANN (ONNX) -> sigma-delta network (Lava ``sdn`` semantics; see ``compiler/nodes/sigma_delta.py``).

An ANN layer ``y = relu(W x + b)`` becomes synapse ``W`` (bias removed) -> ``SigmaDelta(relu,
bias=b, vth)``: the synapse is linear, so the neuron's ``sigma`` is ``W`` applied to the sum of all
messages received, i.e. to the upstream activation up to its residue, and the bias enters once
through the activation (a bias on the synapse would be integrated every step). Biases that pass
through pools and sums before a neuron are moved as their image. The input is delta-encoded by a
``Delta`` node; the logits come out of a ``SigmaDelta(unit, vth=0)`` whose messages sum over time
to the logits (decode by summing over steps). Thresholds are relative: ``vth_l = vth * lam_l``
with ``lam_l`` the layer's activation scale. With ``vth = 0`` and a static input the network
reproduces the ANN exactly at step 0 and sends nothing afterwards.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from neurocompile.frontends.onnx import normalise
from neurocompile.frontends.onnx.ann import Ann, apply_linear
from neurocompile.frontends.onnx.parser import parse, sanitize
from neurocompile.ir import nodes as N
from neurocompile.ir.graph import Graph


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
            names[name] = g.add(f"{name}_delta", N.Delta(vth=vth * lam[name], cum_error=cum_error))
            g.connect(g.add(name, N.Input(shape=op.shape)), names[name])
            continue
        if op.kind == "relu":
            node = N.SigmaDelta(vth=vth * lam[name], bias=bias[op.inputs[0]], act="relu", cum_error=cum_error)
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
        ro = g.add(f"{base}_readout", N.SigmaDelta(vth=0.0, bias=bias[src], act="unit"))
        g.chain(names[src], ro, g.add(base, N.Output()))
    g.assume("dt = 1.0: one step is one unit of time")
    g.assume(f"sigma-delta thresholds: {vth:g} x each layer's activation scale; readout vth = 0")
    g.metadata["onnx"] = {"method": "sigma_delta", "vth": vth, "cum_error": cum_error,
                          "scales": {n: float(v) for n, v in lam.items()}}
    return g
