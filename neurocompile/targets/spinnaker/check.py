"""Compare the compiler's predictions with what sPyNNaker chose when it mapped the program.

``mapping`` is the JSON that ``run_pynn.py --mapping-report`` writes (see ``board.mapping_report``):
per population the ring-buffer shifts, weight scales and neuron parameter words sPyNNaker
generated, per projection the 16-bit synaptic words, and the placements. Every difference is
listed; an empty list means the prediction was exact.
"""
from __future__ import annotations

import numpy as np

from neurocompile.targets.spinnaker.program import RAW_FIELDS, Program


def compare_mapping(prog: Program, mapping: dict) -> dict:
    """{"mismatches": [...], "sdram_ratio": {...}, "cores": n, "chips": n} (ratio = actual/estimate)."""
    bad: list[str] = []
    for p in prog.populations:
        got = mapping["populations"][p.name]
        if got["shifts"] != prog.shifts[p.name]:
            bad.append(f"{p.name}: ring-buffer shifts {got['shifts']} != predicted {prog.shifts[p.name]}")
        if got["weight_scales"] != [2.0 ** (15 - s) for s in prog.shifts[p.name]]:
            bad.append(f"{p.name}: weight scales {got['weight_scales']}")
        for f in RAW_FIELDS:
            if f in got["raw"] and not np.array_equal(got["raw"][f], p.raw[f]):
                bad.append(f"{p.name}.{f}: parameter words differ")
        if not np.array_equal(got["raw"]["refract_timer"], p.refract_timer):
            bad.append(f"{p.name}.refract_timer differs")
        if got["raw"]["timestep"] != [32768] * p.size:
            bad.append(f"{p.name}: timestep words {set(got['raw']['timestep'])} != 32768 (1.0 ms)")
    for pr in prog.projections:
        got = mapping["projections"][pr.name]
        want = np.stack([pr.pre_idx, pr.post_idx, pr.w_int, np.full(pr.pre_idx.size, pr.delay)])
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
    ratio = {name: sum(c["sdram"] for c in v["cores"]) / res["sdram_bytes"][name] for name, v in cores.items()}
    return {"mismatches": bad, "sdram_ratio": ratio, "cores": mapping["cores"], "chips": mapping["chips"],
            "predicted_cores": res["total_cores"], "predicted_chips_lower_bound": res["chips"]}
