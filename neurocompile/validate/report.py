"""Write a validation report: JSON for machines, Markdown for people, PNG plots (matplotlib)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from neurocompile.targets.loihi2.quantize import decays
from neurocompile.utils.atomic import atomic_path
from neurocompile.utils.outputs import DIR_KINDS, claim_output
from neurocompile.validate.traces import neuron_groups

REPORT_FORMAT = DIR_KINDS["report"][1]


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o).__name__)


def write_report(directory: str | Path, report: dict, traces: dict, artifact, *, force: bool = False,
                 inputs=()) -> list[str]:
    """Write report.json, report.md and plots into ``directory`` atomically; return file names.

    ``directory`` must be absent, empty or an earlier report (see ``utils.outputs``).
    """
    directory = claim_output(directory, "report", force=force, inputs=inputs)
    with atomic_path(directory) as tmp:
        tmp.mkdir()
        plots = _plots(tmp, report, traces, artifact)
        report = dict(report, plots=plots, format=REPORT_FORMAT)
        (tmp / "report.json").write_text(json.dumps(report, indent=2, default=_json_default) + "\n")
        (tmp / "report.md").write_text(markdown(report))
    return ["report.json", "report.md", *plots]


def markdown(r: dict) -> str:
    L = [f"# neurocompile validation: {r['model']}", "",
         f"Targets: {', '.join(r['targets'])}; {r['steps']} steps, batch {r['batch']}.", ""]
    L += ["## Exact comparisons (bit-accurate targets)", ""]
    for c in r["exact"]:
        if c["equal"]:
            L.append(f"- {c['a']} vs {c['b']}: **identical** (every spike, u and v of every group and step)")
        else:
            m = c["first_mismatch"]
            L.append(f"- {c['a']} vs {c['b']}: **DIFFER** first at step {m['step']}, node `{m['node']}`, "
                     f"neuron {m['neuron']} ({m['variable']}, batch {m['batch']}): "
                     f"{c['a']}={m[c['a']]}, {c['b']}={m[c['b']]}; inputs: {m['inputs']}")
    if not r["exact"]:
        L.append("- (none requested)")
    L += ["", "## Float reference vs quantized", ""]
    for name, c in r["float_vs_quantized"].items():
        L.append(f"### {name}")
        L.append(f"class agreement: {c['class_agreement']:.1%}; difference first exceeds "
                 f"{c['tolerance']:.0%} at: {c['difference_grows_at'] or 'nowhere'}")
        L.append("")
        L.append("| layer | float spikes | quantized spikes | rel. diff | spike mismatch |")
        L.append("|---|---|---|---|---|")
        for layer in c["layers"]:
            if layer.get("readout"):
                L.append(f"| {layer['node']} | readout | | max |dv| {layer['max_abs_v_error']:.3g} | |")
            else:
                L.append(f"| {layer['node']} | {layer['float_spikes']} | {layer['quantized_spikes']} | "
                         f"{layer['rel_count_diff']:.2%} | {layer['spike_mismatch_fraction']:.2%} |")
        L.append("")
    if r.get("accuracy"):
        L += ["## Accuracy", ""] + [f"- {t}: {a:.2%}" for t, a in r["accuracy"].items()] + [""]
    L += ["## Activity and cost per run", ""]
    for t, m in r["metrics"].items():
        L.append(f"### {t}")
        L.append(f"synaptic ops: {m['synaptic_ops']:.3g}; neuron updates: {m['neuron_updates']:.3g}; "
                 f"latency: {m.get('latency_steps', 0)} steps; wall time {m['wall_s']:.3f} s")
        if m.get("estimate"):
            e = m["estimate"]
            extra = f", time {e['time_s']:.3g} s" if "time_s" in e else ""
            L.append(f"energy ESTIMATE: {e['energy_J']:.3g} J{extra} ({e['label']}; source: {e['source']})")
        L.append("")
        L.append("| layer | neurons | spikes/sample | rate/step | sparsity | silent | always |")
        L.append("|---|---|---|---|---|---|---|")
        for n, x in m["layers"].items():
            if x.get("readout"):
                L.append(f"| {n} | {x['neurons']} | readout | | | | |")
            else:
                L.append(f"| {n} | {x['neurons']} | {x['spikes_per_sample']:.1f} | {x['rate_per_step']:.4f} | "
                         f"{x['sparsity']:.3f} | {x['silent_neurons']} | {x['always_firing_neurons']} |")
        L.append("")
    if r.get("diagnostics"):
        L += ["## Quantization diagnostics", ""]
        for t, d in r["diagnostics"].items():
            L.append(f"### {t}")
            for n, g in d["groups"].items():
                L.append(f"- `{n}`: vth={g['vth']} (threshold = {g['threshold_share_of_v_range']:.2%} of v's range), "
                         f"headroom {g.get('headroom')}, v saturated {g['v_saturated_steps']}x, "
                         f"peak |u| {g['u_peak_share_of_range']:.1%} of range, never fire {g['never_fire']}, "
                         f"always fire {g['always_fire']}")
            for n, s in d["synapses"].items():
                L.append(f"- `{n}`: weight_exp {s['weight_exp']}, {s['sign_mode']}, rounding error "
                         f"{(s['rel_rms_error'] or 0):.2%} RMS, clipped {s['clipped']}")
            L.append("")
            if d["warnings"]:
                L += ["Warnings:", ""] + [f"- {w}" for w in d["warnings"]] + [""]
    if r.get("resources"):
        L += ["## Resources", ""]
        for chip, res in r["resources"].items():
            if not res:
                continue
            if chip == "loihi2":
                L.append(f"- Loihi 2: {res['cores']} core(s) on {res['chips']} chip(s), {res['neurons']} neurons, "
                         f"{res['synapses']} synapses; {res.get('inter_core_routes', 0)} of "
                         f"{res.get('spike_routes', 0)} spike routes cross cores")
            elif chip == "spinnaker":
                L.append(f"- SpiNNaker: {res.get('total_cores')} core(s), at least {res.get('chips')} chip(s), "
                         f"SDRAM {res.get('total_sdram_bytes', 0) / 1e6:.2f} MB (estimate)")
        L.append("")
    if r.get("plots"):
        L += ["## Plots", ""] + [f"![{p}]({p})" for p in r["plots"]] + [""]
    return "\n".join(L) + "\n"


def _plots(d: Path, report: dict, traces: dict, artifact) -> list[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        report.setdefault("notes", []).append("matplotlib is not installed: no plots")
        return []

    files = []
    groups = neuron_groups(artifact)
    spiking = [g for g in groups if next(iter(traces.values())).aligned[g]["spikes"] is not None]
    # 1. rasters: one row per layer, one column per run, first sample
    runs = list(traces)
    if not spiking:
        return files
    fig, axes = plt.subplots(len(spiking), len(runs), figsize=(4 * len(runs), 1.8 * len(spiking) + 0.6),
                             squeeze=False, sharex=True)
    for i, g in enumerate(spiking):
        for j, t in enumerate(runs):
            s = traces[t].aligned[g]["spikes"][:, 0]
            tt, nn = np.nonzero(s)  # spikes, or sent graded messages
            ax = axes[i, j]
            ax.scatter(tt, nn, s=1.5, marker="|", color="k")
            ax.set_ylim(-1, s.shape[-1])
            ax.set_xlim(-1, s.shape[0])
            ax.set_ylabel(g if j == 0 else "")
            if i == 0:
                ax.set_title(t)
    axes[-1, 0].set_xlabel("time step (float time base)")
    fig.tight_layout()
    fig.savefig(d / "raster.png", dpi=90)
    plt.close(fig)
    files.append("raster.png")
    # 2. traces of the first diverging neuron (exact mismatch) or the most different neuron
    target = _divergent(report, traces, spiking)
    if target:
        g, i, title = target
        fig, ax = plt.subplots(figsize=(8, 3))
        for t in runs:
            ax.plot(traces[t].aligned[g]["v"][:, 0, i], label=f"{t} v", lw=1)
        ax.set_title(title)
        ax.set_xlabel("time step")
        ax.legend()
        fig.tight_layout()
        fig.savefig(d / "divergence.png", dpi=90)
        plt.close(fig)
        files.append("divergence.png")
    # 3. quantization error histograms per synapse matrix
    hist = _weight_errors(artifact)
    if hist:
        fig, axes = plt.subplots(1, len(hist), figsize=(3.2 * len(hist), 2.6), squeeze=False)
        for ax, (name, err) in zip(axes[0], hist.items()):
            ax.hist(err, bins=50, color="tab:blue")
            ax.set_title(f"{name}: weight error")
            ax.set_xlabel("quantized - float (threshold units)")
        fig.tight_layout()
        fig.savefig(d / "weight_error.png", dpi=90)
        plt.close(fig)
        files.append("weight_error.png")
    return files


def _divergent(report, traces, spiking):
    for c in report["exact"]:
        if not c["equal"]:
            m = c["first_mismatch"]
            return m["node"], m["neuron"], f"first exact mismatch: {m['node']}[{m['neuron']}] at chip step {m['step']}"
    if "float" in traces and len(traces) > 1 and spiking:
        other = next(t for t in traces if t != "float")
        best = None
        for g in spiking:
            d = np.abs(traces["float"].aligned[g]["spikes"][:, 0].sum(0)
                       - traces[other].aligned[g]["spikes"][:, 0].sum(0))
            if d.size and (best is None or d.max() > best[0]):
                best = (d.max(), g, int(d.argmax()))
        if best:
            return best[1], best[2], f"largest spike-count difference: {best[1]}[{best[2]}] (float vs {other})"
    return None


def _weight_errors(artifact) -> dict:
    """Per synapse matrix (Dense or kept Conv): quantized minus float weight, in threshold units,
    over the weights that are nonzero in the float model."""
    payload = artifact.payload
    if not isinstance(payload, dict) or "program" not in payload:
        return {}

    program, graph = payload["program"], artifact.graph
    out = {}
    for d in program.synapses:
        node = graph.nodes.get(d.name)
        if node is None or not hasattr(node, "weight") or d.dst not in payload["scales"]:
            continue  # helper synapses (the bias clock) have no float counterpart here
        lif = program.neuron(d.dst)
        if not hasattr(lif, "du"):
            continue  # sigma-delta synapses use another unit rule (see quantize/loihi2_sdn.py)
        scale = np.ravel(payload["scales"][d.dst])
        gain = np.ravel(decays(graph.nodes[d.dst], graph, d.dst)[4])
        gain = np.broadcast_to(gain, scale.shape) if gain.size == 1 else gain
        w = np.asarray(node.weight, dtype=float)
        if w.ndim == 2:
            target = (gain * scale)[:, None] * w / 64.0
            q = d.effective_weights() * 2.0 ** d.weight_exp
        else:  # kept convolution: one scale per output channel; Lava uses the kernel as given
            per_ch = (gain * scale).reshape(w.shape[0], -1)[:, 0]
            target = per_ch.reshape((-1,) + (1,) * (w.ndim - 1)) * w / 64.0
            q = np.asarray(d.weights, dtype=float)
        mask = w != 0
        out[d.name] = ((q - target)[mask] / lif.vth).ravel()
    return out
