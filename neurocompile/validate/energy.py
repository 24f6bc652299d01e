"""Published per-operation figures for energy and time ESTIMATES. Each constant names its source.

These are estimates, not measurements: real consumption depends on placement, traffic, idle
power and clocking. Loihi 2's per-operation energies are not published in this form; the Loihi
(first generation) figures are used and labelled as such.
"""
from __future__ import annotations

ESTIMATES = {
    "loihi2": {
        "label": "Loihi (1st gen.) per-op energies applied to Loihi 2 (estimate)",
        "source": "M. Davies et al., 'Loihi: A Neuromorphic Manycore Processor with On-Chip Learning', "
                  "IEEE Micro 38(1), 2018, Table 2 (synaptic spike op 23.6 pJ; active neuron update 52 pJ)",
        "synop_J": 23.6e-12,
        "neuron_update_J": 52e-12,
    },
    "spinnaker": {
        "label": "SpiNNaker whole-system energy per synaptic event (estimate)",
        "source": "S. J. van Albada et al., 'Performance Comparison of the Digital Neuromorphic Hardware "
                  "SpiNNaker and the Neural Network Simulation Software NEST for a Full-Scale Cortical "
                  "Microcircuit Model', Front. Neurosci. 12:291, 2018 (5.9 uJ per synaptic event, "
                  "idle power included); sPyNNaker runs one 1 ms step per timer tick in real time",
        "synop_J": 5.9e-6,
        "neuron_update_J": 0.0,
        "step_s": 1e-3,
    },
}


def estimate(chip: str, synops: float, neuron_updates: float, steps: int) -> dict:
    """Energy (J) and time (s) estimate for a run, labelled with the figures' source."""
    e = ESTIMATES.get(chip)
    if e is None:
        return {}
    out = {"chip": chip, "label": e["label"], "source": e["source"], "is_estimate": True,
           "energy_J": synops * e["synop_J"] + neuron_updates * e["neuron_update_J"]}
    if "step_s" in e:
        out["time_s"] = steps * e["step_s"]
    return out
