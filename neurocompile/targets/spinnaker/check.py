"""Compare the compiler's predictions with what sPyNNaker chose when it mapped the program.

``mapping`` is the JSON that ``run_pynn.py --mapping-report`` writes (see ``board.mapping_report``):
per population the ring-buffer shifts, weight scales and neuron parameter words sPyNNaker
generated, per projection the 16-bit synaptic words, the current-source region of every core
(decoded), and the placements. Every difference is listed; an empty list means the prediction was
exact.

For a direct-input program the mapping is built with the first sample of an input ``x``; the
prediction is :func:`.host_input.plan` of the same ``x``: the ``i_offset``/``isyn_exc`` words of
that sample and, when some sample varies in time, one step source per neuron whose ticks and
S1615 words (read back from the generated region) must equal the predicted table.
"""
from __future__ import annotations

import numpy as np

from neurocompile.targets.spinnaker import host_input as H
from neurocompile.targets.spinnaker.program import RAW_FIELDS, Program


def _check_currents(prog: Program, mapping: dict, x, bad: list[str]) -> dict[str, int]:
    """Compare the host input's words; returns the predicted current-source SDRAM per population."""
    plans = H.plan(prog.host_entries(), np.asarray(x, dtype=np.float64))
    stepping = H.any_step(plans)
    per_core = int(prog.report.get("resources", {}).get("neurons_per_core", 256))
    extra = {}
    for hp in plans:
        got = mapping["populations"][hp["pop"]]
        for f in ("i_offset", "isyn_exc"):
            if f in got["raw"] and not np.array_equal(got["raw"][f], hp[f][0]):
                bad.append(f"{hp['pop']}.{f}: the words of sample 0 differ from the host input's")
        cores = got.get("current_sources", [])
        n = prog.population(hp["pop"]).size
        if not stepping:
            if any(c.get("n_sources", 0) for c in cores):
                bad.append(f"{hp['pop']}: current sources generated where none were predicted")
            continue
        have = {}
        for c in cores:
            if c.get("error"):
                bad.append(f"{hp['pop']}: current-source region: {c['error']}")
                continue
            for j, srcs in enumerate(c.get("neurons", [])):
                have[c["lo"] + j] = srcs
        for j in range(n):
            want = (hp["times"][0, j].tolist(), hp["amps"][0, j].tolist())
            srcs = have.get(j, [])
            if len(srcs) != 1 or list(map(list, srcs[0])) != [want[0], want[1]]:
                bad.append(f"{hp['pop']}[{j}]: step current source {srcs} != predicted {want}")
                break
        K = hp["times"].shape[2]
        extra[hp["pop"]] = sum(H.sdram_bytes(n, min(per_core, n - lo), [K] * n) for lo in range(0, n, per_core))
    return extra


def predicted_conv_words(prog: Program) -> dict[str, dict]:
    """Per ConvolutionConnector projection (the script's name: the channel pair's exc and inh
    projections merged): the kernel words sPyNNaker writes (flipped, C order of the (k, k)
    array; positive words excitatory, negative ones inhibitory), the delay and the padding."""
    out: dict[str, dict] = {}
    for pr in prog.projections:
        if pr.conv is None or pr.conv["connector"] != "conv":
            continue
        name = pr.name.rpartition(".")[0]
        d = out.setdefault(name, {"post": pr.post, "words": np.zeros(pr.w_int.shape[2:], np.int64),
                                  "delay": pr.delay, "padding": list(pr.conv["padding"])})
        sign = 1 if pr.receptor == "excitatory" else -1
        d["words"] = d["words"] + sign * pr.w_int[0, 0]
    for d in out.values():
        d["words"] = d["words"][::-1, ::-1].reshape(-1).tolist()
    return out


def _check_conv_connectors(prog: Program, mapping: dict, bad: list[str]) -> None:
    """Every core of a local-only population holds every predicted connector of it, with the
    predicted kernel words, receptor types (exc 0, inh 1), delay, kernel shape and padding."""
    want = predicted_conv_words(prog)
    seen = set()
    for name, d in want.items():
        cores = mapping["populations"].get(d["post"], {}).get("local_only")
        if not cores:
            bad.append(f"{name}: '{d['post']}' was not mapped to local-only (convolution) cores")
            continue
        k = int(np.sqrt(len(d["words"])))
        for core in cores:
            got = [c for c in core["connectors"] if c["projection"] == name]
            if len(got) != 1:
                bad.append(f"{name}: {len(got)} connectors on a core of '{d['post']}', expected 1")
                continue
            c = got[0]
            if c["words"] != d["words"]:
                bad.append(f"{name}: kernel words {c['words']} != predicted {d['words']}")
            fields = {"kernel_shape": [k, k], "padding": d["padding"], "pos_type": 0, "neg_type": 1,
                      "delay": d["delay"], "delay_stage": 0}
            for f, v in fields.items():
                if c[f] != v:
                    bad.append(f"{name}: connector {f} {c[f]} != predicted {v}")
            seen.add(name)
    for p in prog.populations:
        for core in mapping["populations"][p.name].get("local_only") or []:
            for c in core["connectors"]:
                if c["projection"] not in want:
                    bad.append(f"{p.name}: connector of an unknown projection {c['projection']}")


def compare_mapping(prog: Program, mapping: dict, x=None) -> dict:
    """{"mismatches": [...], "sdram_ratio": {...}, "cores": n, "chips": n} (ratio = actual/estimate);
    ``x`` is the input the mapping was built with (direct-input programs)."""
    bad: list[str] = []
    host_pops = {e.pop for e in prog.host_input.entries} if prog.host_input is not None else set()
    if host_pops and x is None:
        raise ValueError("a direct-input program's mapping is checked against its input x")
    extra = _check_currents(prog, mapping, x, bad) if host_pops else {}
    for p in prog.populations:
        got = mapping["populations"][p.name]
        if got["shifts"] != prog.shifts[p.name]:
            bad.append(f"{p.name}: ring-buffer shifts {got['shifts']} != predicted {prog.shifts[p.name]}")
        if got["weight_scales"] != [2.0 ** (15 - s) for s in prog.shifts[p.name]]:
            bad.append(f"{p.name}: weight scales {got['weight_scales']}")
        for f in RAW_FIELDS:
            if p.name in host_pops and f in ("i_offset", "isyn_exc"):
                continue   # the sample's words, compared above
            if f in got["raw"] and not np.array_equal(got["raw"][f], p.raw[f]):
                bad.append(f"{p.name}.{f}: parameter words differ")
        if not np.array_equal(got["raw"]["refract_timer"], p.refract_timer):
            bad.append(f"{p.name}.refract_timer differs")
        if got["raw"]["timestep"] != [32768] * p.size:
            bad.append(f"{p.name}: timestep words {set(got['raw']['timestep'])} != 32768 (1.0 ms)")
    _check_conv_connectors(prog, mapping, bad)
    for pr in prog.projections:
        if pr.conv is not None and pr.conv["connector"] == "conv":
            continue
        got = mapping["projections"][pr.name]
        pre, post, w_int, _ = pr.synapses()
        want = np.stack([pre, post, w_int, np.full(pre.size, pr.delay)])
        have = np.array([got["pre"], got["post"], got["w_int"], got["delay"]])
        want = want[:, np.lexsort(want[::-1])]
        have = have[:, np.lexsort(have[::-1])]
        if have.shape != want.shape or not np.array_equal(have, want):
            bad.append(f"{pr.name}: synaptic words differ from the predicted 16-bit weights and delays")
    res = prog.report["resources"]
    cores = {**mapping["populations"], **mapping["sources"]}
    for name, n in res["cores"].items():
        if len(cores[name]["cores"]) != n:
            bad.append(f"{name}: {len(cores[name]['cores'])} cores, predicted {n}")
    slots = [(c["x"], c["y"], c["p"]) for v in cores.values() for c in v["cores"]]
    if len(slots) != len(set(slots)):
        bad.append("two populations were placed on the same core")
    if mapping["chips"] < res["chips"]:
        bad.append(f"{mapping['chips']} chips used, below the predicted lower bound {res['chips']}")
    ratio = {name: sum(c["sdram"] for c in v["cores"]) / (res["sdram_bytes"][name] + extra.get(name, 0))
             for name, v in cores.items()}
    return {"mismatches": bad, "sdram_ratio": ratio, "cores": mapping["cores"], "chips": mapping["chips"],
            "predicted_cores": res["total_cores"], "predicted_chips_lower_bound": res["chips"]}
