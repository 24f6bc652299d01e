"""Activity statistics a quantizer needs, from a float run on calibration data (or bounds).

:func:`activity_stats` is the one place that runs the float interpreter on calibration input and
reduces what it recorded; the targets' quantizers (SpiNNaker, Loihi 2 LIF and sigma-delta) take
their statistics from it and keep only their own reductions and weight bounds.
"""
from __future__ import annotations

from typing import Iterable, Mapping, Sequence

import numpy as np

from neurocompile.ir.batch import batched_input
from neurocompile.ir.graph import Graph
from neurocompile.ir.interpreter import run


def activity_stats(graph: Graph, calibration, probes: Iterable[str] | Mapping[str, Sequence[str]]
                   ) -> dict[str, np.ndarray]:
    """Run ``graph`` in float64 on ``calibration`` and return, per probe, the peak ``|value|`` of
    each element over all steps and samples, as a flat (size,) array.

    ``calibration`` is taken as every runner takes input (:func:`neurocompile.ir.batch.batched_input`),
    with samples of any shape of the Input's size.
    ``probes`` names interpreter probes (``node``, ``node.v``, ...); a mapping ``{key: [probe, ...]}``
    sums its probes step by step before the peak is taken (the summed input of a node).
    """

    wanted = dict(probes) if isinstance(probes, Mapping) else {p: [p] for p in probes}
    x = batched_input(graph, calibration, any_shape=True)
    res = run(graph, x, probes=sorted({p for ps in wanted.values() for p in ps}))
    out = {}
    for key, ps in wanted.items():
        val = sum(res.probes[p] for p in ps)
        out[key] = np.abs(val).reshape(-1, int(np.prod(val.shape[2:]))).max(axis=0)
    return out


def neuron_groups(graph: Graph) -> list[str]:
    """Neuron groups with a membrane ``v`` whose drive the quantizers scale (not sigma-delta)."""
    return [n for n, node in graph.nodes.items() if node.is_neuron and not node.graded]


def drive_probes(graph: Graph, name: str) -> list[str]:
    """What a chip keeps in the group's current register: its synaptic current state (``i``),
    or, for neurons without one, the summed input (the outputs of its predecessors)."""
    node = graph.nodes[name]
    return [f"{name}.{node.current}"] if node.current else list(graph.predecessors(name))


def observed_drive_stats(graph: Graph, calibration) -> dict[str, dict]:
    """Per neuron group: ``{"drive", "v", "observed": True}``, the per-neuron peak |drive| and
    |membrane| of a float run on ``calibration``."""
    groups = neuron_groups(graph)
    probes = {}
    for n in groups:
        probes[f"{n}.drive"] = drive_probes(graph, n)
        probes[f"{n}.membrane"] = [f"{n}.{graph.nodes[n].membrane}"]
    peak = activity_stats(graph, calibration, probes)
    return {n: {"drive": peak[f"{n}.drive"], "v": peak[f"{n}.membrane"], "observed": True} for n in groups}


def neuron_drive_stats(graph: Graph, x: np.ndarray | None) -> dict[str, dict[str, np.ndarray]]:
    """Per neuron group: the largest |v| and |synaptic drive| per neuron, in float units.

    ``drive`` is what a chip keeps in its current register: ``i`` for CubaLIF/CubaLI, the summed
    input for the others. With calibration data ``x`` these are observed maxima; without, they
    are worst-case bounds from the weights (every presynaptic neuron spiking in the same step).
    """
    stats: dict[str, dict[str, np.ndarray]] = {}
    if x is None:
        for n in neuron_groups(graph):
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
            if graph.nodes[n].current:
                bound = bound * np.abs(graph.nodes[n].w_in)  # the current settles at w_in * input
            stats[n] = {"drive": np.asarray(bound, dtype=float), "v": None, "observed": False}
        return stats
    return observed_drive_stats(graph, x)
