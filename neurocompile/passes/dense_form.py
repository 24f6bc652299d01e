"""Fold chains of stateless linear nodes into single synapse matrices and flatten all shapes.

Chips connect neuron groups with synapse matrices; they have no Conv, pooling or Flatten between
layers (or have them as special synapse encodings chosen later). This pass rewrites every maximal
chain of linear nodes (Linear, Affine, Scale, Conv, Sum/AvgPool, Flatten, Identity) between two
non-linear nodes into one ``Affine`` (or ``Linear`` when the bias is zero) whose matrix is the
chain's exact composition. Neuron parameters, Inputs and Outputs become 1-D; the original shapes
are kept in ``graph.metadata["shapes"]`` so runners can reshape inputs and outputs.

The composition never builds more than the connectivity holds (:mod:`neurocompile.ir.linear_maps`):
Flatten and Identity are index maps (the identity on C-order flat values, so ``Flatten -> Linear``
is the Linear's own matrix and a chain of index maps alone becomes one ``Flatten``); convolutions
and pooling are sparse synapse lists, multiplied sparse, with every product checked against the
memory budget before it is formed. A result is dense, checked against the budget at its real size,
unless ``sparse_below`` > 0 (targets that take ``scipy.sparse`` Linear weights) and its density
is below that fraction.

``keep_conv=True`` (set by targets with convolution synapses, e.g. Loihi 2) keeps a chain that
computes exactly one ``Conv2d`` -- a conv (bias allowed), a conv followed by pooling or a
per-channel Scale, pooling or per-channel scales alone (depthwise convs), or convs in a row when their
composition is exact (:func:`~neurocompile.ir.linear_maps.chain_as_conv`) -- from an Input or
neuron group straight into a neuron group (LIF-type: IF, LIF, CubaLIF, LI, CubaLI, Integrator),
instead of folding it, when ``conv_fits(node, in_shape)`` accepts it (default: always) and the
destination's parameters are the same at every position of a channel. The kept node takes the
name of the chain's first Conv2d (else of its first node). The graph has no reshape op, so the
groups at the ends of a kept conv keep their original (C, H, W) shape:

* a kept conv's destination group must receive nothing but kept convs (otherwise a flat input
  would meet a shaped one), and its source must be an Input or such a destination group; convs
  that break this are folded as usual (checked until nothing changes);
* a shaped node whose output also goes elsewhere (folded chains, Delays, Outputs) feeds those
  through one ``Flatten`` node named ``<node>.flat``.

``metadata["kept_conv"]`` lists the kept convs, ``metadata["flattened"]`` maps each inserted
Flatten to its source, ``metadata["folded"]`` each node that replaced a chain of several to that
chain. The rewritten graph computes the same function step for step (tests check this with the
reference executor, with and without ``keep_conv``).
"""
from __future__ import annotations

import dataclasses
from typing import Callable, ClassVar

import numpy as np

from neurocompile.errors import UnsupportedError
from neurocompile.ir import nodes as N
from neurocompile.ir.graph import Graph
from neurocompile.ir.linear_maps import chain_as_conv, compose_chain
from neurocompile.passes.base import Pass, PassContext
from neurocompile.utils.budget import check_alloc

LINEAR = (N.Linear, N.Affine, N.Scale, N.Conv1d, N.Conv2d, N.SumPool2d, N.AvgPool2d, N.Flatten, N.Identity)


def is_group(node: N.Node) -> bool:
    """Nodes a kept conv may lead into: LIF-type groups (convs into sigma-delta groups are folded)."""
    return node.is_neuron and not node.graded


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
    #: a folded matrix with fewer nonzeros than this fraction stays a ``scipy.sparse`` csr matrix
    #: (targets that take sparse Linear weights); 0: every folded matrix is dense
    sparse_below: float = 0.0

    def run(self, graph: Graph, ctx: PassContext) -> Graph:
        _refuse_max_pool(graph)
        shapes = graph.validate()
        is_lin = {n: isinstance(node, LINEAR) for n, node in graph.nodes.items()}
        g = Graph(dt=graph.dt, discretization=graph.discretization, assumptions=list(graph.assumptions),
                  metadata=dict(graph.metadata))
        g.metadata["shapes"] = {n: list(s) for n, s in shapes.items()}
        order = {n: i for i, n in enumerate(graph.nodes)}
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
        by_head = {c[0]: c for c in chains}
        convs = self._chain_convs(graph, chains, shapes) if self.keep_conv else {}
        kept = self._kept_convs(graph, chains, shapes, convs) if self.keep_conv else set()
        removed = {m for c in chains for m in c}      # every chain member is re-added below
        shaped = {graph.predecessors(c)[0] for c in kept} | {graph.successors(by_head[c][-1])[0] for c in kept}
        # a kept conv read from a netx SDNN Delta encoder (see _kept_convs): the Input before it stays shaped
        shaped |= {graph.predecessors(s)[0] for s in list(shaped) if isinstance(graph.nodes[s], N.Delta)}
        for n, node in graph.nodes.items():
            if n not in removed:
                g.add(n, dataclasses.replace(node) if n in shaped else _flat(node, shapes[n]))
        flat_of: dict[str, str] = {}
        for s in sorted(shaped, key=order.__getitem__):
            if any(d not in kept and d not in shaped for d in graph.successors(s)):
                f = _unique(g, f"{s}.flat")
                g.add(f, N.Flatten())
                g.connect(s, f)
                flat_of[s] = f
        head_of: dict[str, str] = {}  # last node of a chain -> the node that replaces the chain
        for head in sorted(kept, key=order.__getitem__):
            chain = by_head[head]
            name = next((m for m in chain if isinstance(graph.nodes[m], N.Conv2d)), head)
            g.add(name, convs[head])
            head_of[chain[-1]] = name
            g.connect(graph.predecessors(head)[0], name)
            if len(chain) > 1:
                g.metadata.setdefault("folded", {})[name] = chain
        for chain in chains:
            if chain[0] in kept:
                continue
            preds = graph.predecessors(chain[0])
            node = self._fold(graph, chain, shapes[preds[0]], shapes)
            g.add(chain[0], node)
            if not isinstance(node, N.Flatten):
                g.metadata.setdefault("folded", {})[chain[0]] = chain
            head_of[chain[-1]] = chain[0]
            for p in preds:
                g.connect(flat_of.get(p, p), chain[0])
        for s, d in graph.edges:
            if d in removed:
                continue  # edges into a chain were added above (to the node replacing it)
            src = head_of.get(s, s)
            g.connect(src if d in shaped else flat_of.get(src, src), d)
        if kept:
            g.metadata["kept_conv"] = [head_of[by_head[c][-1]] for c in sorted(kept, key=order.__getitem__)]
            g.metadata["flattened"] = {f: s for s, f in flat_of.items()}
        return g

    def _fold(self, graph: Graph, chain: list[str], in_shape: tuple, shapes: dict) -> N.Node:
        """The one node that computes ``chain``: a Flatten for index maps feeding no synapse-reading
        node, else Linear/Affine with the chain's matrix (dense, or scipy.sparse csr when the
        target takes sparse matrices and it is sparse enough)."""
        nodes = [graph.nodes[m] for m in chain]
        what = " -> ".join(chain)
        res = compose_chain(nodes, [tuple(shapes[m]) for m in chain], in_shape, what=what, node_name=chain[0],
                            sparse_below=self.sparse_below)
        if res is None:  # only index maps: the identity on flat values
            succ = graph.successors(chain[-1])
            if all(isinstance(graph.nodes[d], (N.Output, N.Flatten)) for d in succ):
                return N.Flatten()
            n = int(np.prod(in_shape))
            if self.sparse_below > 0:
                import scipy.sparse as sp

                return N.Linear(weight=sp.identity(n, format="csr"))
            check_alloc(8 * n * n, f"{what} as a dense {n}x{n} identity matrix", node=chain[0])
            return N.Linear(weight=np.eye(n))
        M, c = res
        return N.Affine(weight=M, bias=c) if np.any(c) else N.Linear(weight=M)

    def _chain_convs(self, graph: Graph, chains: list[list[str]], shapes: dict) -> dict[str, N.Conv2d]:
        """Chain head -> the one Conv2d the chain computes (convs, pooling, per-channel scales)."""
        out = {}
        for chain in chains:
            (src,) = graph.predecessors(chain[0]) if len(graph.predecessors(chain[0])) == 1 else (None,)
            if src is None or not any(isinstance(graph.nodes[m], (N.Conv2d, N.SumPool2d, N.AvgPool2d, N.Scale))
                                      for m in chain):
                continue
            conv = chain_as_conv([graph.nodes[m] for m in chain], shapes[src])
            if conv is not None:
                out[chain[0]] = conv
        return out

    def _kept_convs(self, graph: Graph, chains: list[list[str]], shapes: dict, convs: dict) -> set[str]:
        """Heads of the conv chains between groups that can stay convolutions (module docstring)."""
        back = graph.recurrent_edges()
        by_head = {c[0]: c for c in chains}
        kept = set()
        # netx SDNN graphs (their Loihi integers recorded) keep convs into sigma-delta groups, from the
        # host's Delta encoder too (targets/loihi2/fixed_params.py lowers them as Lava's Conv)
        sdnn = (graph.metadata.get("loihi2_fixed") or {}).get("kind") == "sigma_delta"
        entry = (N.Input, N.Delta) if sdnn else (N.Input,)
        group = (lambda n: isinstance(n, N.SigmaDelta) or is_group(n)) if sdnn else is_group
        for chain in chains:
            c = chain[0]
            node = convs.get(c)
            preds, succs = graph.predecessors(c), graph.successors(chain[-1])
            if node is None or len(preds) != 1 or len(succs) != 1:
                continue
            src, dst = preds[0], succs[0]
            if (src, c) in back or (chain[-1], dst) in back or any((a, b) in back for a, b in zip(chain, chain[1:])):
                continue
            src_ok = isinstance(graph.nodes[src], entry) or group(graph.nodes[src])
            if not src_ok or not group(graph.nodes[dst]):
                continue
            if not channel_uniform(graph.nodes[dst], shapes[dst]):
                continue
            if self.conv_fits is not None and not self.conv_fits(node, shapes[src]):
                continue
            kept.add(c)
        changed = True
        while changed:
            changed = False
            dsts = {graph.successors(by_head[c][-1])[0] for c in kept}
            lasts = {by_head[c][-1] for c in kept}
            for c in sorted(kept):
                src, dst = graph.predecessors(c)[0], graph.successors(by_head[c][-1])[0]
                dst_ok = all(p in lasts for p in graph.predecessors(dst))
                src_ok = isinstance(graph.nodes[src], entry) or src in dsts
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
