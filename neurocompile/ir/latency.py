"""Pipeline latency of a dense-form graph on chips where every synapse hop takes one step."""
from __future__ import annotations

from neurocompile.ir import nodes as N
from neurocompile.ir.graph import Graph

#: nodes that are a synapse hop on the chip (a Conv2d is one only when dense form kept it)
HOPS = (N.Linear, N.Conv2d)


def latencies(graph: Graph) -> dict[str, int]:
    """Synapse hops from the input to every node along feed-forward edges (the shortest path):
    a neuron group ``k`` hops from the input answers ``k`` steps after the float graph does.

    Delay nodes add nothing here: their steps are in the float graph too (and become synaptic
    delays on the chip); Flatten and a host-side Delta encoder add nothing either."""
    back = graph.recurrent_edges()
    depth = {n: 0 for n in graph.inputs}
    for n in graph.order():
        for s, d in graph.edges:
            if d == n and (s, d) not in back and s in depth:
                hop = 1 if isinstance(graph.nodes[n], HOPS) else 0
                depth[n] = min(depth.get(n, 1 << 30), depth[s] + hop)
    return depth
