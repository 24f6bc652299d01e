"""Comparisons between runs: exact equality between bit-accurate runs, and float vs quantized."""
from __future__ import annotations

import numpy as np

from neurocompile.ir.readout import predict
from neurocompile.targets.artifact import Artifact
from neurocompile.targets.loihi2.conv import conv_pairs
from neurocompile.validate.traces import Trace, neuron_groups


def first_mismatch(artifact: Artifact, a: Trace, b: Trace) -> dict | None:
    """The earliest (step, group, neuron, variable) where two bit-accurate runs differ, with both
    values and the neuron's inputs at that step; None when they are identical everywhere.

    Steps are on the chip's time base (step 0 = first input step; Dense hops add latency).
    """
    best = None
    for group in neuron_groups(artifact):
        ra, rb = a.raw[group], b.raw[group]
        for key in ("spikes", "v", "u"):
            if key not in ra or key not in rb:
                continue
            diff = np.asarray(ra[key]) != np.asarray(rb[key])
            diff = diff.reshape(diff.shape[:2] + (-1,))
            if not diff.any():
                continue
            t = int(np.argmax(diff.reshape(diff.shape[0], -1).any(axis=1)))
            if best is None or t < best[0]:
                b_idx, i = np.argwhere(diff[t])[0]
                best = (t, group, int(i), key, int(b_idx))
    if best is None:
        return None
    t, group, i, key, bi = best
    out = {"step": t, "node": group, "neuron": i, "variable": key, "batch": bi,
           a.target: _state(a.raw[group], t, bi, i), b.target: _state(b.raw[group], t, bi, i),
           "inputs": _inputs(artifact, a, b, group, t, bi, i)}
    return out


def _state(r: dict, t: int, b: int, i: int) -> dict:
    """Neuron ``i`` (flat index, also for (C, H, W) groups) at step t and t-1."""
    s = {k: int(np.ravel(r[k][t, b])[i]) for k in ("spikes", "u", "v") if k in r}
    if t > 0:
        s.update({f"{k}_prev": int(np.ravel(r[k][t - 1, b])[i]) for k in ("u", "v") if k in r})
    return s


def _inputs(artifact: Artifact, a: Trace, b: Trace, group: str, t: int, bi: int, i: int) -> list[dict]:
    """Per incoming synapse matrix: the summed input the neuron received at step t, in each run
    (computed from the source's spikes at t-1, as a Dense hop delays by one step)."""
    if not isinstance(artifact.payload, dict) or "program" not in artifact.payload:
        return []  # SpiNNaker traces compare spikes on the graph's time base
    program = artifact.payload["program"]
    rows = []
    for d in program.synapses:
        if d.dst != group or t == 0:
            continue
        if np.ndim(d.weights) == 2:
            w = d.effective_weights()[i]
        else:  # a convolution: the kernel taps that reach neuron i, as a dense row (its channel's pairs only)
            o = i // int(np.prod(d.out_shape()[1:]))
            src, dst, tap = conv_pairs(d.weights, d.in_shape, d.stride, d.padding, d.dilation, d.groups,
                                       range(o, o + 1))
            w = np.zeros(d.in_size(), dtype=np.int64)
            np.add.at(w, src[dst == i], np.asarray(d.weights).ravel()[tap[dst == i]].astype(np.int64))
        entry = {"synapses": d.name, "source": d.src, "weight_exp": d.weight_exp}
        for tr in (a, b):
            if d.src == "input":
                entry[tr.target] = None  # the same external input for both runs
                continue
            s = np.asarray(tr.raw[d.src]["spikes"][t - 1, bi]).astype(np.int64).ravel()
            acc = int(w @ s)
            entry[tr.target] = acc << d.weight_exp if d.weight_exp >= 0 else acc >> -d.weight_exp
        rows.append(entry)
    return rows


def float_vs_quantized(artifact: Artifact, f: Trace, q: Trace, tol: float = 0.05) -> dict:
    """Per-layer spike-count differences, output agreement, and where the difference grows."""
    layers, growth_at = [], None
    for n in neuron_groups(artifact):
        fs, qs = f.aligned[n]["spikes"], q.aligned[n]["spikes"]
        if fs is None or qs is None:
            fv, qv = f.aligned[n]["v"], q.aligned[n]["v"]
            err = float(np.abs(fv - qv).max())
            layers.append({"node": n, "readout": True, "max_abs_v_error": err})
            continue
        fs, qs = fs != 0, qs != 0  # spikes, or sent graded messages (sigma-delta)
        fc, qc = float(fs.sum()), float(qs.sum())
        rel = abs(fc - qc) / max(fc, 1.0)
        per_neuron = np.abs(fs.sum(axis=0).astype(np.int64) - qs.sum(axis=0))
        mismatch = float((fs != qs).mean())
        layers.append({"node": n, "float_spikes": int(fc), "quantized_spikes": int(qc),
                       "rel_count_diff": rel, "spike_mismatch_fraction": mismatch,
                       "max_neuron_count_diff": int(per_neuron.max()) if per_neuron.size else 0})
        if growth_at is None and rel > tol:
            growth_at = n

    pf = predict(artifact.graph, next(iter(f.outputs.values())))
    pq = predict(artifact.graph, next(iter(q.outputs.values())))
    agree = float((pf == pq).mean())
    return {"layers": layers, "class_agreement": agree, "difference_grows_at": growth_at,
            "tolerance": tol}
