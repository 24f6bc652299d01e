"""Activity statistics for the Loihi 2 quantizer, per neuron of each (flattened) group.

With calibration data these are :func:`neurocompile.passes.activity.observed_drive_stats`
(``drive`` is the current register, ``v`` the membrane, both in float units; groups of any shape).
Without, the weight bounds here cover what dense form leaves for Loihi 2 (inputs that pass through
Delays or kept (C, H, W) convolutions) and assume every presynaptic neuron spikes in the same step.
"""
from __future__ import annotations

import numpy as np

from neurocompile.ir import nodes as N
from neurocompile.ir.graph import Graph
from neurocompile.ir.linear_maps import conv_tap_sums
from neurocompile.passes.activity import neuron_groups, observed_drive_stats


def _bound(graph: Graph, syn: str, shapes: dict) -> np.ndarray:
    """Largest |input| one synapse node can deliver per destination neuron (flat)."""
    node = graph.nodes[syn]
    if isinstance(node, N.Delay):  # Linear -> Delay -> group: the Linear's bound
        (syn,) = graph.predecessors(syn)
        node = graph.nodes[syn]
    if isinstance(node, N.Conv2d):  # per destination: the taps inside the input, in closed form
        (src,) = graph.predecessors(syn)
        w = node.weight
        geo = (shapes[src], node.stride, node.padding, node.dilation, node.groups)
        pos = conv_tap_sums(w, *geo, values=np.clip(w, 0, None))
        neg = conv_tap_sums(w, *geo, values=np.clip(-w, 0, None))
        b = np.abs(np.broadcast_to(node.bias.reshape((-1, 1, 1)) if node.bias.ndim else node.bias,
                                   shapes[syn])).reshape(-1)
        return np.maximum(pos, neg) + b
    w = getattr(node, "weight", None)
    if w is None:
        return np.zeros(1)
    pos = np.clip(w, 0, None).sum(axis=1)
    neg = np.clip(-w, 0, None).sum(axis=1)
    return np.maximum(pos, neg) + np.abs(getattr(node, "bias", 0.0))


def group_stats(graph: Graph, x) -> dict[str, dict]:
    """Per neuron group (LIF-type): ``{"drive", "v", "observed"}`` with (size,) arrays."""
    if x is not None:
        return observed_drive_stats(graph, x)
    shapes = graph.infer_shapes()
    stats: dict[str, dict] = {}
    for n in neuron_groups(graph):
        bound = 0.0
        for p in graph.predecessors(n):
            bound = bound + _bound(graph, p, shapes)
        size = int(np.prod(shapes[n]))
        if graph.nodes[n].current:
            bound = bound * np.abs(np.broadcast_to(graph.nodes[n].w_in, shapes[n]).reshape(-1))
        stats[n] = {"drive": np.broadcast_to(np.asarray(bound, dtype=float), (size,)).copy(), "v": None,
                    "observed": False}
    return stats
