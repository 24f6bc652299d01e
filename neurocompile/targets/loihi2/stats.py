"""Activity statistics for the Loihi 2 quantizer, per neuron of each (flattened) group.

Like :func:`neurocompile.passes.activity.neuron_drive_stats` (same definitions:
``drive`` is the current register, ``v`` the membrane, both in float units), but for groups of
any shape (dense form keeps (C, H, W) shapes around kept convolutions) and for inputs that pass
through Delays or convolutions. Without calibration data the bounds assume every presynaptic
neuron spikes in the same step.
"""
from __future__ import annotations

import numpy as np

from neurocompile.ir import nodes as N
from neurocompile.ir.graph import Graph
from neurocompile.targets.loihi2.conv import conv_pairs


def calibration_input(graph: Graph, x) -> np.ndarray:
    """Calibration samples as (T, B, *input shape) or (T, *input shape) for the graph's Input,
    accepting the model's original input shape (or any shape of the same size per sample)."""
    x = np.asarray(x, dtype=np.float64)
    (inp,) = graph.inputs
    n_in = tuple(graph.nodes[inp].shape)
    if x.shape[-len(n_in):] != n_in:  # given in the model's original input shape
        orig = graph.metadata.get("shapes", {}).get(inp, n_in)
        lead = 1 if x.ndim == 1 + len(orig) else 2
        x = x.reshape(x.shape[:lead] + n_in)
    return x


def _bound(graph: Graph, syn: str, shapes: dict) -> np.ndarray:
    """Largest |input| one synapse node can deliver per destination neuron (flat)."""
    node = graph.nodes[syn]
    if isinstance(node, N.Delay):  # Linear -> Delay -> group: the Linear's bound
        (syn,) = graph.predecessors(syn)
        node = graph.nodes[syn]
    if isinstance(node, N.Conv2d):
        (src,) = graph.predecessors(syn)
        w = node.weight
        s, d, tap = conv_pairs(w, shapes[src], node.stride, node.padding, node.dilation, node.groups)
        n_out = int(np.prod(shapes[syn]))
        wt = w.reshape(-1)[tap]
        pos = np.bincount(d, weights=np.clip(wt, 0, None), minlength=n_out)
        neg = np.bincount(d, weights=np.clip(-wt, 0, None), minlength=n_out)
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
    """Per neuron group (NEURON_TYPES): ``{"drive", "v", "observed"}`` with (size,) arrays."""
    shapes = graph.infer_shapes()
    neurons = [n for n, node in graph.nodes.items() if isinstance(node, N.NEURON_TYPES)]
    stats: dict[str, dict] = {}
    if x is None:
        for n in neurons:
            bound = 0.0
            for p in graph.predecessors(n):
                bound = bound + _bound(graph, p, shapes)
            size = int(np.prod(shapes[n]))
            if isinstance(graph.nodes[n], (N.CubaLIF, N.CubaLI)):
                bound = bound * np.abs(np.broadcast_to(graph.nodes[n].w_in, shapes[n]).reshape(-1))
            stats[n] = {"drive": np.broadcast_to(np.asarray(bound, dtype=float), (size,)).copy(), "v": None,
                        "observed": False}
        return stats
    from neurocompile.ir.interpreter import run

    probes = []
    for n in neurons:
        probes.append(f"{n}.v")
        if isinstance(graph.nodes[n], (N.CubaLIF, N.CubaLI)):
            probes.append(f"{n}.i")
        else:
            probes += list(graph.predecessors(n))
    res = run(graph, calibration_input(graph, x), probes=sorted(set(probes)))
    for n in neurons:
        size = int(np.prod(shapes[n]))
        if isinstance(graph.nodes[n], (N.CubaLIF, N.CubaLI)):
            drive = res.probes[f"{n}.i"]
        else:
            drive = sum(res.probes[p] for p in graph.predecessors(n))
        stats[n] = {"drive": np.abs(drive).reshape(-1, size).max(axis=0),
                    "v": np.abs(res.probes[f"{n}.v"]).reshape(-1, size).max(axis=0), "observed": True}
    return stats
