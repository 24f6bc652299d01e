"""Fold chains of stateless linear nodes into single dense matrices and flatten all shapes.

Chips connect neuron groups with synapse matrices; they have no Conv, pooling or Flatten between
layers (or have them as special synapse encodings chosen later). This pass rewrites every maximal
chain of linear nodes (Linear, Affine, Scale, Conv, Sum/AvgPool, Flatten, Identity) between two
non-linear nodes into one ``Affine`` (or ``Linear`` when the bias is zero) whose matrix is the
chain's exact composition, computed by applying the reference ops to the unit vectors. Neuron
parameters, Inputs and Outputs become 1-D; the original shapes are kept in
``graph.metadata["shapes"]`` so runners can reshape inputs and outputs.

``keep_conv=True`` (set by targets with convolution synapses, e.g. Loihi 2) keeps a chain that is
exactly one ``Conv2d`` (bias allowed) from an Input or neuron group straight into a neuron group
(LIF-type: IF, LIF, CubaLIF, LI, CubaLI, Integrator),
instead of folding it, when ``conv_fits(node, in_shape)`` accepts it (default: always) and the
destination's parameters are the same at every position of a channel. The graph has no reshape
op, so the groups at the ends of a kept conv keep their original (C, H, W) shape:

* a kept conv's destination group must receive nothing but kept convs (otherwise a flat input
  would meet a shaped one), and its source must be an Input or such a destination group; convs
  that break this are folded as usual (checked until nothing changes);
* a shaped node whose output also goes elsewhere (folded chains, Delays, Outputs) feeds those
  through one ``Flatten`` node named ``<node>.flat``.

``metadata["kept_conv"]`` lists the kept convs, ``metadata["flattened"]`` maps each inserted
Flatten to its source. The rewritten graph computes the same function step for step (tests check
this with the reference executor, with and without ``keep_conv``).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Callable, ClassVar

import numpy as np

from neurocompile.errors import UnsupportedError
from neurocompile.ir import nodes as N
from neurocompile.ir.graph import Graph
from neurocompile.ir.semantics import OPS, Context
from neurocompile.passes.base import Pass, PassContext
from neurocompile.utils.budget import check_alloc

LINEAR = (N.Linear, N.Affine, N.Scale, N.Conv1d, N.Conv2d, N.SumPool2d, N.AvgPool2d, N.Flatten, N.Identity)


def is_group(node: N.Node) -> bool:
    """Nodes a kept conv may lead into: LIF-type groups (convs into sigma-delta groups are folded)."""
    return node.is_neuron and not node.graded


def _compose(graph: Graph, chain: list[str], in_shape: tuple, shapes: dict) -> tuple[np.ndarray, np.ndarray]:
    """Matrix M (out, in) and bias c with chain(x) = M @ x.ravel() + c, exactly."""
    n_in = int(np.prod(in_shape))
    check_fold_size(chain, n_in, [math.prod(shapes[n]) for n in chain])
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


def check_fold_size(chain: list[str], n_in: int, sizes: list[int]) -> None:
    """Refuse (with the figures) a fold whose matrices would not fit the memory budget.

    Folding applies the chain to ``n_in + 1`` unit vectors: the basis (n_in + 1, n_in) and, at
    worst, two consecutive intermediate results (n_in + 1, size) are alive at once (float64).
    """
    widest = max(sizes, default=n_in)
    need = 8 * (n_in + 1) * (n_in + 2 * widest)
    check_alloc(need, f"folding {' -> '.join(chain)} into a dense {sizes[-1] if sizes else n_in}x{n_in} "
                      f"matrix (input of {n_in} values)", node=chain[0])


def channel_uniform(node: N.Node, shape: tuple) -> bool:
    """True when every array parameter of ``node`` is constant over the positions of each channel
    of ``shape`` = (C, ...): one convolution kernel then serves every position."""
    for name in node.array_fields():
        value = getattr(node, name)
        if value is None or value.ndim == 0:
            continue
        v = np.broadcast_to(value, shape).reshape(shape[0], -1)
        if np.any(v != v[:, :1]):
            return False
    return True


@dataclasses.dataclass(frozen=True)
class DenseForm(Pass):
    name: ClassVar[str] = "dense-form"
    keep_conv: bool = False
    #: ``(conv node, input shape) -> bool``: the target can run this conv as a conv synapse
    conv_fits: Callable | None = None

    def run(self, graph: Graph, ctx: PassContext) -> Graph:
        _refuse_max_pool(graph)
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
        kept = self._kept_convs(graph, chains, shapes) if self.keep_conv else set()
        chains = [c for c in chains if c[0] not in kept]
        shaped = {graph.predecessors(c)[0] for c in kept} | {graph.successors(c)[0] for c in kept}
        folded = {m for c in chains for m in c}
        for n, node in graph.nodes.items():
            if n in folded:
                continue
            g.add(n, dataclasses.replace(node) if (n in shaped or n in kept) else _flat(node, shapes[n]))
        flat_of: dict[str, str] = {}
        for s in sorted(shaped, key=list(graph.nodes).index):
            if any(d not in kept for d in graph.successors(s)):
                f = _unique(g, f"{s}.flat")
                g.add(f, N.Flatten())
                g.connect(s, f)
                flat_of[s] = f
        for chain in chains:
            preds = graph.predecessors(chain[0])
            in_shape = shapes[preds[0]]
            M, c = _compose(graph, chain, in_shape, shapes)
            node = N.Affine(weight=M, bias=c) if np.any(c) else N.Linear(weight=M)
            g.add(chain[0], node)
            g.metadata.setdefault("folded", {})[chain[0]] = chain
            head_of[chain[-1]] = chain[0]
            for p in preds:
                g.connect(flat_of.get(p, p), chain[0])
        for s, d in graph.edges:
            if d in folded:
                continue  # edges into a chain were added above (to its head)
            src = head_of.get(s, s)
            g.connect(src if d in kept else flat_of.get(src, src), d)
        if kept:
            g.metadata["kept_conv"] = sorted(kept, key=list(graph.nodes).index)
            g.metadata["flattened"] = {f: s for s, f in flat_of.items()}
        return g

    def _kept_convs(self, graph: Graph, chains: list[list[str]], shapes: dict) -> set[str]:
        """Single-Conv2d chains between groups that can stay convolutions (module docstring)."""
        back = graph.recurrent_edges()
        kept = set()
        for chain in chains:
            c = chain[0]
            node = graph.nodes[c]
            preds, succs = graph.predecessors(c), graph.successors(c)
            if len(chain) != 1 or not isinstance(node, N.Conv2d) or len(preds) != 1 or len(succs) != 1:
                continue
            src, dst = preds[0], succs[0]
            if (src, c) in back or (c, dst) in back:
                continue
            src_ok = isinstance(graph.nodes[src], N.Input) or is_group(graph.nodes[src])
            if not src_ok or not is_group(graph.nodes[dst]):
                continue
            if not channel_uniform(graph.nodes[dst], shapes[dst]):
                continue
            if self.conv_fits is not None and not self.conv_fits(node, shapes[src]):
                continue
            kept.add(c)
        changed = True
        while changed:
            changed = False
            dsts = {graph.successors(c)[0] for c in kept}
            for c in sorted(kept):
                src, dst = graph.predecessors(c)[0], graph.successors(c)[0]
                dst_ok = all(p in kept for p in graph.predecessors(dst))
                src_ok = isinstance(graph.nodes[src], N.Input) or src in dsts
                if not (dst_ok and src_ok):
                    kept.discard(c)
                    changed = True
        return kept


def _unique(graph: Graph, name: str) -> str:
    base, k = name, 1
    while name in graph.nodes:
        name, k = f"{base}{k}", k + 1
    return name


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


def _refuse_max_pool(graph: Graph) -> None:
    """Max pooling is not a weighted sum: no synapse matrix computes it (say so, naming the node)."""
    for name, node in graph.nodes.items():
        if isinstance(node, N.MaxPool2d):
            raise UnsupportedError(
                "max pooling (MaxPool2d) has no lowering for this target: its synapses can only sum "
                "weighted inputs, and a max is not a weighted sum. Replace nn.MaxPool2d by nn.AvgPool2d "
                "(or a strided convolution) and retrain, or compile for -t float", node=name)
