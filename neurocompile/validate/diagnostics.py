"""Quantization diagnostics with warnings that say what to change."""
from __future__ import annotations

import numpy as np

from neurocompile.targets.artifact import Artifact
from neurocompile.validate.traces import Trace, neuron_groups

V_LIMIT = (1 << 23) - 1
U_LIMIT = 1 << 23


def loihi2_diagnostics(artifact: Artifact, tr: Trace) -> dict:
    q = artifact.report.get("quantization", {})
    program = artifact.payload["program"]
    out, warnings = {"synapses": {}, "groups": {}}, []
    for d in program.synapses:
        r = q.get(d.name, {})
        out["synapses"][d.name] = {k: r.get(k) for k in ("weight_exp", "sign_mode", "rel_rms_error",
                                                          "max_abs_error_thr", "clipped", "nonzero")}
        if r.get("clipped"):
            warnings.append(f"{d.name}: {r['clipped']} weights clipped to the 8-bit range: "
                            "calibrate with representative data (--calibration) or reduce the weight spread")
        if (r.get("rel_rms_error") or 0) > 0.05:
            warnings.append(f"{d.name}: weight rounding error {r['rel_rms_error']:.1%} of the RMS weight: "
                            "compile with --split-weights (about 16-bit weights), or clip large weights in training")
    for n in neuron_groups(artifact):
        lif = program.neuron(n)
        if not hasattr(lif, "du"):  # sigma-delta groups have no u/v registers to diagnose
            continue
        raw = tr.raw[n]
        v, u = np.asarray(raw["v"]), np.asarray(raw["u"])
        s = np.asarray(raw["spikes"])
        v_clip = int((v <= -V_LIMIT).sum())      # the low clip changes dynamics
        v_top = int((v >= V_LIMIT).sum())        # the high clip only ever ends in a spike
        u_peak = float(np.abs(u).max() / U_LIMIT) if u.size else 0.0
        per = s.sum(axis=(0, 1))
        steps = s.shape[0] * s.shape[1]
        g = {"vth": lif.vth, "threshold_share_of_v_range": (lif.vth << 6) / V_LIMIT,
             "v_saturated_steps": v_clip, "v_top_clipped_steps": v_top, "u_peak_share_of_range": u_peak,
             "never_fire": int((per == 0).sum()), "always_fire": int((per >= steps).sum()),
             "neurons": lif.size}
        rep = q.get(n, {})
        g.update({k: rep[k] for k in ("headroom", "calibrated", "beta", "beta_q", "alpha", "alpha_q", "note")
                  if k in rep})
        out["groups"][n] = g
        if v_clip:
            warnings.append(f"{n}: v saturated at -(2^23-1) in {v_clip} neuron-steps (strong inhibition): "
                            "calibrate with data that reaches the real input range")
        if u_peak > 0.9:
            warnings.append(f"{n}: |u| reached {u_peak:.0%} of its 24-bit range (it wraps beyond): "
                            "pass --calibration with stronger inputs, or lower the fan-in")
        node = artifact.graph.nodes.get(n)
        spiking = bool(getattr(node, "spiking", True))   # readouts (LI, Integrator) never fire by design
        if not spiking:
            pass
        elif g["never_fire"] == lif.size and lif.vth < (1 << 17) - 1:
            warnings.append(f"{n}: no neuron fired: inputs too weak or threshold too high")
        elif g["never_fire"] > 0.5 * lif.size:
            warnings.append(f"{n}: {g['never_fire']} of {lif.size} neurons never fired")
        if g["always_fire"] and spiking:
            warnings.append(f"{n}: {g['always_fire']} neurons fired at every step (saturated)")
        if g["threshold_share_of_v_range"] < 1e-3:
            warnings.append(f"{n}: the threshold uses {g['threshold_share_of_v_range']:.2e} of v's range: "
                            "low membrane resolution; calibrate to allow a larger vth")
        if "note" in rep:
            warnings.append(f"{n}: {rep['note']}")
    out["warnings"] = warnings
    return out
