"""Pipeline latency of a dense-form graph on chips where every synapse hop takes one step.

Two rules exist because the chips differ: on Loihi 2 every group runs every step from step 0, so
a group answers after the *shortest* chain of hops from the input (:func:`shortest_hops`); the
SpiNNaker lowering delays projections so that every input of a population arrives together,
which makes its latency the *longest* chain (``longest_hops`` in
:mod:`neurocompile.targets.spinnaker.lowering`).
"""
from __future__ import annotations

from neurocompile.ir import nodes as N
from neurocompile.ir.graph import Graph

#: nodes that are a synapse hop on the chip (a Conv2d is one only when dense form kept it)
HOPS = (N.Linear, N.Conv2d)


def shortest_hops(graph: Graph) -> dict[str, int]:
    """Synapse hops from the input to every node along feed-forward edges (the shortest path):
    a neuron group ``k`` hops from the input answers ``k`` steps after the float graph does.

    Delay nodes add nothing here: their steps are in the float graph too (and become synaptic
    delays on the chip); Flatten and a host-side Delta encoder add nothing either. Linear in the
    number of nodes and edges."""
    back = graph.recurrent_edges()
    preds: dict[str, list[str]] = {}
    for s, d in graph.edges:
        if (s, d) not in back:
            preds.setdefault(d, []).append(s)
    depth = {n: 0 for n in graph.inputs}
    for n in graph.order():
        hop = 1 if isinstance(graph.nodes[n], HOPS) else 0
        for s in preds.get(n, ()):
            if s in depth:
                depth[n] = min(depth.get(n, 1 << 30), depth[s] + hop)
    return depth


#: the name of the first releases
latencies = shortest_hops
