"""Activity and cost metrics of one run: spikes, rates, sparsity, synaptic ops, energy estimate."""
from __future__ import annotations

import numpy as np

from neurocompile.ir import nodes as N
from neurocompile.targets.artifact import Artifact
from neurocompile.targets.loihi2.conv import connection_counts
from neurocompile.validate import energy
from neurocompile.validate.traces import Trace, neuron_groups


def run_metrics(artifact: Artifact, tr: Trace, chip: str | None, x_flat: np.ndarray) -> dict:
    """``x_flat``: the input as (T, B, n_in); its spikes count as synaptic ops too."""
    graph = artifact.graph
    fan_out: dict[str, np.ndarray] = {}
    program = artifact.payload.get("program") if isinstance(artifact.payload, dict) else None
    if program is not None:  # the synapses the chip really holds (quantized zeros dropped)

        for d in program.synapses:
            if d.src in graph.nodes or d.src == "input":  # not the bias clock's helper synapses
                fan_out[d.src] = fan_out.get(d.src, 0) + connection_counts(d)[1]
    else:  # dense form: every synapse matrix is a Linear/Affine
        for name, node in graph.nodes.items():
            if isinstance(node, N.Linear):
                (src,) = graph.predecessors(name)
                key = "input" if src in graph.inputs else src
                fan_out[key] = fan_out.get(key, 0) + np.count_nonzero(node.weight, axis=0)
    layers, synops, updates = {}, 0.0, 0.0
    for n in neuron_groups(artifact):
        s = tr.aligned[n]["spikes"]
        v = tr.aligned[n]["v"]
        T, B, size = v.shape
        updates += T * B * size
        if s is None:
            layers[n] = {"neurons": size, "readout": True}
            continue
        s = s != 0  # spikes, or sent graded messages (sigma-delta)
        total = float(s.sum())
        per_neuron = s.sum(axis=(0, 1))
        ops = float((s.sum(axis=(0, 1)) * fan_out[n]).sum()) if n in fan_out else 0.0
        synops += ops
        layers[n] = {"neurons": size, "spikes": int(total), "spikes_per_sample": total / B,
                     "rate_per_step": total / (T * B * size), "sparsity": 1.0 - float((s > 0).mean()),
                     "silent_neurons": int((per_neuron == 0).sum()),
                     "always_firing_neurons": int((per_neuron == T * B).sum()), "synops": ops}
    if "input" in fan_out:
        synops += float((x_flat.sum(axis=(0, 1)) * fan_out["input"]).sum())
    T = tr.steps
    out = {"target": tr.target, "steps": T, "wall_s": tr.wall_s, "layers": layers,
           "synaptic_ops": synops, "neuron_updates": updates}
    lat = artifact.report.get("latency")
    if lat:
        out["latency_steps"] = int(max(lat.values()))
    if chip:
        out["estimate"] = energy.estimate(chip, synops, updates, T)
    return out
