#!/usr/bin/env python
"""Run a SpiNNaker artifact's PyNN program on NEST (``pyNN.nest``); executed as a script by path.

The network is built by the artifact's own ``run_pynn.py`` (its ``build``: the same populations,
parameters, initial values and projections). One difference is forced by NEST: a
``spike_generator`` cannot hold a spike at t = 0, where sPyNNaker's input step 0 is sent. So every
spike-source time is moved SHIFT = 2 ticks later (pyNN.nest sends a source's spikes through a
parrot neuron, one min_delay earlier), the outputs are read back 2 ticks earlier, and each
population's bias ``i_offset`` is switched on only when its input can reach it (sPyNNaker holds
the population with an initial refractory count instead, which NEST's models cannot set).
IF_curr_delta weights are converted (see ``delta_weights``).

    python nest_driver.py PROGRAM_DIR --input x.npy --output out.npz --ticks N [--record-v]

``out.npz``: ``spikes/<pop>`` (N, batch, n) 0/1 on the program's tick base (a spike NEST stamps
at time t ms belongs to tick t - 1, the step that computed it) and ``v/<pop>`` in mV after each tick.
Imports numpy and PyNN only.
"""
import argparse
import importlib.util
import sys
from pathlib import Path

import numpy as np

SHIFT = 2   # ticks the whole program runs later on NEST
READ = 0    # a spike NEST stamps at t ms (the end of the step that computed it) is program tick t - SHIFT


def load_script(program_dir: Path):
    spec = importlib.util.spec_from_file_location("nc_run_pynn", program_dir / "run_pynn.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class Shifted:
    """``pyNN.nest`` with every SpikeSourceArray's times moved SHIFT ticks later."""

    def __init__(self, sim, dt):
        self._sim, self._dt = sim, dt

    def __getattr__(self, name):
        return getattr(self._sim, name)

    def shift(self, times):
        return [[float(t) + SHIFT * self._dt for t in ts] for ts in times]

    def SpikeSourceArray(self, spike_times):
        return self._sim.SpikeSourceArray(spike_times=self.shift(spike_times))


def delta_weights(doc, arrays) -> None:
    """IF_curr_delta: sPyNNaker treats a weight as a current w (nA) for one tick, which moves v by
    R (1 - exp(-dt/tau_m)) w (R = tau_m / cm); NEST's iaf_psc_delta adds the weight to v (mV) at
    once, in mV, one port for both signs (pyNN 0.13 passes an 'inhibitory' weight to NEST unsigned).
    Projections onto IF_curr_delta populations get the factor per target neuron, and inhibitory
    ones become negative weights on the excitatory port."""
    index = {p["name"]: i for i, p in enumerate(doc["populations"])}
    dt = doc["timestep_ms"]
    for i, pr in enumerate(doc["projections"]):
        k = index.get(pr["post"])
        if k is None or doc["populations"][k]["model"] != "IF_curr_delta":
            continue
        tau_m = arrays[f"pop{k}.raw.tau_m"] / 32768.0
        cm = arrays[f"pop{k}.raw.cm"] / 32768.0
        factor = tau_m / cm * (1.0 - np.exp(-dt / tau_m))
        post = arrays[f"proj{i}.post_idx"].astype(int)
        sign = -1.0 if pr["receptor"] == "inhibitory" else 1.0
        arrays[f"proj{i}.weight"] = sign * np.abs(arrays[f"proj{i}.weight"]) * factor[post]
        pr["receptor"] = "excitatory"


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("program_dir")
    ap.add_argument("--input", required=True)
    ap.add_argument("--output", required=True)
    ap.add_argument("--ticks", type=int, required=True)
    ap.add_argument("--record-v", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--chunk", type=int, default=50, help="samples simulated together (one copy each)")
    args = ap.parse_args(argv)
    program_dir = Path(args.program_dir)
    mod = load_script(program_dir)
    import pyNN.nest as nest_sim

    if not hasattr(nest_sim.IF_curr_delta, "variable_map"):
        # pyNN 0.13's IF_curr_delta on NEST names no recordable for 'v' (IF_curr_exp maps it to V_m)
        nest_sim.IF_curr_delta.variable_map = {"v": "V_m"}
        nest_sim.IF_curr_delta.scale_factors = {"v": 1}
    doc, arrays = mod.load_program()
    dt = doc["timestep_ms"]
    delta_weights(doc, arrays)
    x = np.load(args.input, allow_pickle=False)
    T, B, _ = x.shape
    n_ticks = args.ticks
    run_ms = (n_ticks + SHIFT + 2) * dt
    held = dict(arrays)
    starts: dict[int, list[int]] = {}
    for k, p in enumerate(doc["populations"]):
        held[f"pop{k}.raw.i_offset"] = np.zeros_like(arrays[f"pop{k}.raw.i_offset"])
        starts.setdefault(int(p["latency"]), []).append(k)
    out = {"spikes/" + p["name"]: np.zeros((n_ticks, B, p["size"]), np.uint8) for p in doc["populations"]}
    if args.record_v:
        out.update({"v/" + p["name"]: np.zeros((n_ticks, B, p["size"])) for p in doc["populations"]})
    # NEST has no full reset between runs (pyNN.reset refuses): each chunk of samples is one fresh
    # network holding an independent copy of the program per sample, built by the script's build()
    for lo in range(0, B, args.chunk):
        hi = min(B, lo + args.chunk)
        # on_grid: iaf_psc_exp / iaf_psc_delta on the 1 ms grid, as sPyNNaker (not the *_ps models)
        nest_sim.setup(timestep=dt, threads=args.threads, min_delay=dt, spike_precision="on_grid")
        sim = Shifted(nest_sim, dt)
        copies = [mod.build(sim, doc, held, False, args.record_v, x[:, b:b + 1], n_ticks)[0]
                  for b in range(lo, hi)]
        # sPyNNaker holds a population (its initial refractory count) until its input can reach it;
        # here its bias current i_offset is switched on at NEST tick `latency` instead (v stays at
        # its initial value until then); on zoo:digits this gives the emulator's spike count per layer
        now = 0
        for tick in sorted(starts):
            if tick > now:
                nest_sim.run((tick - now) * dt)
                now = tick
            for k in starts[tick]:
                p = doc["populations"][k]
                for cells in copies:
                    cells[p["name"]].set(i_offset=(arrays[f"pop{k}.raw.i_offset"] / 32768.0).tolist())
        nest_sim.run(run_ms - now * dt)
        for b, cells in zip(range(lo, hi), copies):
            for p in doc["populations"]:
                block = cells[p["name"]].get_data(["spikes", "v"] if args.record_v else ["spikes"])
                seg = block.segments[-1]
                spk = out["spikes/" + p["name"]]
                for j, st in enumerate(seg.spiketrains):
                    ticks = np.rint(np.asarray(st.magnitude) / dt).astype(int) - SHIFT - READ
                    ok = (ticks >= 0) & (ticks < n_ticks)
                    spk[ticks[ok], b, j] = 1
                if args.record_v and seg.analogsignals:
                    sig = np.asarray(seg.analogsignals[0].magnitude)   # v at 0, dt, 2dt, ... (NEST time)
                    rows = sig[SHIFT + READ:SHIFT + READ + n_ticks]     # after program tick 0, 1, ...
                    out["v/" + p["name"]][:rows.shape[0], b] = rows
        nest_sim.end()
    np.savez_compressed(args.output, **out)


if __name__ == "__main__":
    sys.exit(main())
