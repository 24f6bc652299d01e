"""Fold chains of stateless linear nodes into single dense matrices and flatten all shapes.

Chips connect neuron groups with synapse matrices; they have no Conv, pooling or Flatten between
layers (or have them as special synapse encodings chosen later). This pass rewrites every maximal
chain of linear nodes (Linear, Affine, Scale, Conv, Sum/AvgPool, Flatten, Identity) between two
non-linear nodes into one ``Affine`` (or ``Linear`` when the bias is zero) whose matrix is the
chain's exact composition, computed by applying the reference ops to the unit vectors. Neuron
parameters, Inputs and Outputs become 1-D; the original shapes are kept in
``graph.metadata["shapes"]`` so runners can reshape inputs and outputs.

The rewritten graph computes the same function step for step (a test checks this with the
reference executor).
"""
from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np

from .. import nodes as N
from ..graph import Graph
from .base import Pass, PassContext

LINEAR = (N.Linear, N.Affine, N.Scale, N.Conv1d, N.Conv2d, N.SumPool2d, N.AvgPool2d, N.Flatten, N.Identity)


def _compose(graph: Graph, chain: list[str], in_shape: tuple, shapes: dict) -> tuple[np.ndarray, np.ndarray]:
    """Matrix M (out, in) and bias c with chain(x) = M @ x.ravel() + c, exactly."""
    from ...emulator.reference.ops import OPS, Context

    n_in = int(np.prod(in_shape))
    basis = np.concatenate([np.zeros((1, n_in)), np.eye(n_in)]).reshape((n_in + 1,) + tuple(in_shape))
    ctx = Context(graph.dt, graph.discretization)
    y = basis
    for name in chain:
        node = graph.nodes[name]
        state = {"out_shape": shapes[name]} if isinstance(node, N.Flatten) else {}
        y = OPS[type(node)](node, y, state, ctx)
    y = y.reshape(n_in + 1, -1)
    c = y[0]
    return (y[1:] - c).T.copy(), c.copy()


@dataclasses.dataclass(frozen=True)
class DenseForm(Pass):
    name: ClassVar[str] = "dense-form"

    def run(self, graph: Graph, ctx: PassContext) -> Graph:
        shapes = graph.validate()
        is_lin = {n: isinstance(node, LINEAR) for n, node in graph.nodes.items()}
        g = Graph(dt=graph.dt, discretization=graph.discretization, assumptions=list(graph.assumptions),
                  metadata=dict(graph.metadata))
        g.metadata["shapes"] = {n: list(s) for n, s in shapes.items()}
        head_of: dict[str, str] = {}  # last node of a chain -> folded node name
        chains: list[list[str]] = []
        for n in graph.nodes:
            preds = graph.predecessors(n)
            if not is_lin[n] or (len(preds) == 1 and is_lin[preds[0]] and len(graph.successors(preds[0])) == 1):
                continue
            chain = [n]
            while True:
                succ = graph.successors(chain[-1])
                if len(succ) == 1 and is_lin[succ[0]] and len(graph.predecessors(succ[0])) == 1:
                    chain.append(succ[0])
                else:
                    break
            chains.append(chain)
        folded = {m for c in chains for m in c}
        for n, node in graph.nodes.items():
            if n not in folded:
                g.add(n, _flat(node, shapes[n]))
        for chain in chains:
            preds = graph.predecessors(chain[0])
            in_shape = shapes[preds[0]]
            M, c = _compose(graph, chain, in_shape, shapes)
            node = N.Affine(weight=M, bias=c) if np.any(c) else N.Linear(weight=M)
            g.add(chain[0], node)
            g.metadata.setdefault("folded", {})[chain[0]] = chain
            head_of[chain[-1]] = chain[0]
            for p in preds:
                g.connect(p, chain[0])
        for s, d in graph.edges:
            if d in folded:
                continue  # edges into a chain were added above (to its head)
            g.connect(head_of.get(s, s), d)
        return g


def _flat(node: N.Node, shape: tuple) -> N.Node:
    """The same node acting on the flattened shape."""
    if isinstance(node, N.Input):
        return N.Input(shape=(int(np.prod(shape)),))
    changes = {}
    for name in node.array_fields():
        value = getattr(node, name)
        if value is not None and value.ndim > 0:
            changes[name] = np.broadcast_to(value, shape).reshape(-1).copy()
    return dataclasses.replace(node, **changes) if changes else dataclasses.replace(node)
