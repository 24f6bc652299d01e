"""Activity statistics a quantizer needs, from a float run on calibration data (or bounds)."""
from __future__ import annotations

import numpy as np

from neurocompile.ir import nodes as N
from neurocompile.ir.graph import Graph


def neuron_drive_stats(graph: Graph, x: np.ndarray | None) -> dict[str, dict[str, np.ndarray]]:
    """Per neuron group: the largest |v| and |synaptic drive| per neuron, in float units.

    ``drive`` is what a chip keeps in its current register: ``i`` for CubaLIF/CubaLI, the summed
    input for the others. With calibration data ``x`` these are observed maxima; without, they
    are worst-case bounds from the weights (every presynaptic neuron spiking in the same step).
    """
    neurons = [n for n, node in graph.nodes.items() if isinstance(node, N.NEURON_TYPES)]
    stats: dict[str, dict[str, np.ndarray]] = {}
    if x is None:
        for n in neurons:
            bound = 0.0
            for p in graph.predecessors(n):
                node = graph.nodes[p]
                w = getattr(node, "weight", None)
                if w is None:
                    continue
                pos = np.clip(w, 0, None).sum(axis=1)
                neg = np.clip(-w, 0, None).sum(axis=1)
                b = np.abs(getattr(node, "bias", 0.0))
                bound = bound + np.maximum(pos, neg) + b
            if isinstance(graph.nodes[n], (N.CubaLIF, N.CubaLI)):
                bound = bound * np.abs(graph.nodes[n].w_in)  # the current settles at w_in * input
            stats[n] = {"drive": np.asarray(bound, dtype=float), "v": None, "observed": False}
        return stats
    from neurocompile.ir.interpreter import run

    x = np.asarray(x, dtype=np.float64)
    (inp,) = graph.inputs
    n_in = graph.nodes[inp].shape
    if x.shape[-len(n_in):] != n_in:  # calibration given in the model's original input shape
        lead = 1 if x.ndim == 1 + len(graph.metadata.get("shapes", {}).get(inp, [])) else 2
        x = x.reshape(x.shape[:lead] + n_in)

    probes = []
    for n in neurons:
        node = graph.nodes[n]
        probes.append(f"{n}.v")
        if isinstance(node, (N.CubaLIF, N.CubaLI)):
            probes.append(f"{n}.i")
        else:
            probes += [f"{p}" for p in graph.predecessors(n)]
    res = run(graph, x, probes=sorted(set(probes)))
    for n in neurons:
        node = graph.nodes[n]
        if isinstance(node, (N.CubaLIF, N.CubaLI)):
            drive = res.probes[f"{n}.i"]
        else:
            drive = sum(res.probes[p] for p in graph.predecessors(n))
        stats[n] = {
            "drive": np.abs(drive).reshape(-1, drive.shape[-1]).max(axis=0),
            "v": np.abs(res.probes[f"{n}.v"]).reshape(-1, drive.shape[-1]).max(axis=0),
            "observed": True,
        }
    return stats
