"""Batched input: the one rule for the time series every runner takes.

An Input node's array may be given as ``(T, batch, *sample)`` or ``(T, *sample)`` where ``sample``
is one of

* the Input's shape in the graph (``graph.infer_shapes()[input]``: flat, or (C, H, W) where
  dense form kept a convolution),
* the model's original sample shape (``graph.metadata["shapes"][input]``, recorded before
  flattening),
* the flat shape ``(n,)`` with ``n`` the Input's size.

With ``any_shape=True`` (calibration data) a sample may have any shape of ``n`` elements
(read in C order). The result is float64 ``(T, batch, *shape)`` in the graph's shape, or
``(T, batch, n)`` with ``flat=True``. The leading axis is always time; a shape that matches a
sample after the first axis is read as unbatched (batch 1). Targets add their own checks (0/1
spikes) on the result.
"""
from __future__ import annotations

import numpy as np

from neurocompile.errors import NeuroCompileError
from neurocompile.ir.graph import Graph


def sample_shapes(graph: Graph, name: str, shapes: dict | None = None) -> list[tuple[int, ...]]:
    """The sample shapes accepted for Input ``name``: graph shape, original shape, flat shape."""
    shapes = shapes if shapes is not None else graph.infer_shapes()
    shape = tuple(shapes[name])
    accepted = [shape]
    orig = graph.metadata.get("shapes", {}).get(name)
    for s in (tuple(orig) if orig is not None else shape, (int(np.prod(shape)),)):
        if s not in accepted and int(np.prod(s)) == int(np.prod(shape)):
            accepted.append(s)
    return accepted


def _one(graph: Graph, name: str, x, shapes: dict, flat: bool, any_shape: bool) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    shape = tuple(shapes[name])
    n = int(np.prod(shape))
    accepted = sample_shapes(graph, name, shapes)
    fits = (lambda s: int(np.prod(s)) == n) if any_shape else (lambda s: s in accepted)
    if arr.ndim >= 1 and (arr.shape[1:] in accepted or (arr.ndim >= 2 and fits(arr.shape[1:]))):
        arr = arr.reshape(arr.shape[:1] + (1,) + shape)
    elif arr.ndim >= 2 and fits(arr.shape[2:]):
        arr = arr.reshape(arr.shape[:2] + shape)
    else:
        alts = " or ".join(f"(T, batch, {_dims(s)}) or (T, {_dims(s)})" for s in accepted)
        if any_shape:
            alts += f" or a sample of any shape with {n} elements"
        raise NeuroCompileError(f"input has shape {arr.shape}; expected {alts}", node=name)
    return arr.reshape(arr.shape[:2] + (-1,)) if flat else arr


def _dims(shape) -> str:
    return ", ".join(map(str, shape))


def batched_inputs(graph: Graph, x, *, flat: bool = False, any_shape: bool = False,
                   shapes: dict | None = None) -> dict[str, np.ndarray]:
    """``{input: (T, batch, *shape)}`` for every Input of ``graph``; ``x`` is one array (graphs with
    one Input) or ``{input name: array}``."""
    inputs = graph.inputs
    if not isinstance(x, dict):
        if len(inputs) != 1:
            raise NeuroCompileError(f"the graph has inputs {inputs}: give one array per input")
        x = {inputs[0]: x}
    shapes = shapes if shapes is not None else graph.infer_shapes()
    out = {}
    for name in inputs:
        if name not in x:
            raise NeuroCompileError("no input array given for this Input", node=name)
        out[name] = _one(graph, name, x[name], shapes, flat, any_shape)
    return out


def batched_input(graph: Graph, x, *, flat: bool = False, any_shape: bool = False,
                  shapes: dict | None = None) -> np.ndarray:
    """The input of a single-Input graph as float64 (T, batch, *shape), or (T, batch, n) with
    ``flat=True`` (rules in the module docstring)."""
    inputs = graph.inputs
    if len(inputs) != 1:
        raise NeuroCompileError(f"the graph has inputs {inputs}: give one array per input")
    return batched_inputs(graph, x, flat=flat, any_shape=any_shape, shapes=shapes)[inputs[0]]
