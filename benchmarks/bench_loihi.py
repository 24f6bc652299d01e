"""Speed of the Loihi emulators against snnTorch and Lava, on one network.

Run from the repository root::

    python benchmarks/bench_loihi.py                 # everything
    python benchmarks/bench_loihi.py --no-lava --repeat 10

Network: 784-512-256-10 CUBA LIF (three Dense + three LIF groups), random
Gaussian float weights quantized to Loihi 8-bit weights (MIXED sign mode,
weight_exp 0), du/dv for alpha = beta = 0.9, threshold 1.0 in float units;
100 steps of Bernoulli input spikes at 10 %; batch 1 and 64.

Contenders (all timed as best of ``--repeat`` after warm-up runs):

* ``fast``: :mod:`neurocompile.targets.loihi2.emulator_fast` (numba); ``kernel`` is
  ``FastPlan.run`` on a prepared plan, ``e2e`` is ``loihi_fast.run(program,
  x)`` including validation and weight preparation on every call.
* ``numpy``: the reference :func:`neurocompile.targets.loihi2.emulator.run`.
* ``snntorch``: the same float weights (dequantized) in ``nn.Linear`` +
  ``snn.Synaptic`` (reset to zero), eager, ``torch.no_grad()``,
  ``torch.set_num_threads(2)``, a Python loop over the steps.
* ``lava``: Lava 0.10 ``Loihi2SimCfg(select_tag="fixed_pt")`` at batch 1 via
  :func:`neurocompile.targets.loihi2.lava.host.run_many_in_lava`, timed
  *inside* the Lava subprocess (``wall_build_run_s``: build the processes,
  compile, run, stop; interpreter start, imports and result readout
  excluded).  The first run of the subprocess is its warm-up.

All emulators run with ``probes=False`` (spikes only; the LIF groups have
``probe=False``, so Lava records spikes only as well).  Bit exactness is
checked: fast == numpy (spikes; and spikes, u, v with probes on) at both
batch sizes, and fast == Lava (spikes) at batch 1.

Synaptic events = sum over Dense of (source spikes over all steps) x fan-out
(destination size), summed over the batch: the work an event-driven
simulator does.  The JIT compile time of the fast kernel is measured
separately, in fresh interpreters: cold (empty numba cache) and warm
(loading the cached machine code).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from neurocompile.targets.loihi2 import emulator as loihi  # noqa: E402
from neurocompile.targets.loihi2 import emulator_fast as loihi_fast  # noqa: E402
from neurocompile.targets.loihi2.program import LoihiDense, LoihiLIF, LoihiProgram  # noqa: E402

SIZES = (784, 512, 256, 10)
WEIGHT_SD = (0.015, 0.012, 0.03)   # gives ~10 / 12 / 25 % firing rates
ALPHA = BETA = 0.9                 # synaptic / membrane decay per step


# ---------------------------------------------------------------- network
def build_network(seed: int = 0):
    """The Loihi program and the matching float model parameters.

    Returns ``(program, layers)`` where ``layers`` is a list of
    ``(weight (out, in) float32, threshold)`` holding the dequantized
    weights, so that the snnTorch model computes the same network in float.
    """
    rng = np.random.default_rng(seed)
    du = int(round(4096 * (1 - ALPHA))) - 1     # u keeps 4096-(du+1)
    dv = int(round(4096 * (1 - BETA)))          # v keeps 4096-dv
    neurons, synapses, layers = [], [], []
    for i in range(len(SIZES) - 1):
        w = rng.normal(0.0, WEIGHT_SD[i], (SIZES[i + 1], SIZES[i]))
        scale = np.abs(w).max() / 255           # float per weight unit
        wq = np.clip(np.round(w / scale), -256, 255).astype(np.int64)
        vth = int(round(1.0 / scale))           # threshold 1.0
        name = f"L{i + 1}"
        neurons.append(LoihiLIF(name, SIZES[i + 1], du=du, dv=dv, vth=vth,
                                bias_mant=np.zeros(SIZES[i + 1], np.int64),
                                probe=False))
        src = "input" if i == 0 else f"L{i}"
        syn = LoihiDense(f"D{i + 1}", src, name, wq)
        synapses.append(syn)
        layers.append(((syn.effective_weights() * scale).astype(np.float32),
                       1.0))
    return LoihiProgram(SIZES[0], neurons, synapses), layers


def make_input(n_steps: int, batch: int, rate: float, seed: int):
    """(T, batch, 784) bool Bernoulli spikes."""
    rng = np.random.default_rng(seed)
    return rng.random((n_steps, batch, SIZES[0])) < rate


def synaptic_events(program: LoihiProgram, x, result) -> int:
    """Sum over Dense of source spikes (all steps, whole batch) x fan-out."""
    total = 0
    for s in program.synapses:
        spikes = x if s.src == "input" else result[s.src]["spikes"]
        total += int(np.count_nonzero(spikes)) * program.neuron(s.dst).size
    return total


# ---------------------------------------------------------------- timing
def best_of(fn, repeat: int, warmup: int = 1) -> float:
    """Best wall time (s) of ``repeat`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def snntorch_runner(layers, x, threads: int = 2):
    """A no-arg callable running the snnTorch model on x; and the model."""
    import snntorch as snn
    import torch
    import torch.nn as nn

    torch.set_num_threads(threads)

    class Net(nn.Module):
        """784-512-256-10 Linear + Synaptic (reset to zero)."""

        def __init__(self):
            super().__init__()
            self.fcs = nn.ModuleList()
            self.lifs = nn.ModuleList()
            for w, thr in layers:
                fc = nn.Linear(w.shape[1], w.shape[0], bias=False)
                fc.weight.data = torch.from_numpy(np.ascontiguousarray(w))
                self.fcs.append(fc)
                self.lifs.append(snn.Synaptic(alpha=ALPHA, beta=BETA,
                                              threshold=thr,
                                              reset_mechanism="zero"))

        def forward(self, xs):
            states = [lif.reset_mem() for lif in self.lifs]
            out = []
            for t in range(xs.shape[0]):
                h = xs[t]
                for k, (fc, lif) in enumerate(zip(self.fcs, self.lifs)):
                    syn, mem = states[k]
                    h, syn, mem = lif(fc(h), syn, mem)
                    states[k] = (syn, mem)
                out.append(h)
            return torch.stack(out)

    net = Net().eval()
    xt = torch.from_numpy(x.astype(np.float32))

    def run():
        with torch.no_grad():
            return net(xt)

    return run


def jit_times(repo: str) -> dict:
    """Kernel compile (empty cache) and cache-load times, fresh processes."""
    code = ("import sys; sys.path.insert(0, %r); "
            "from neurocompile.emulator import loihi_fast as f; "
            "print(f.warmup())" % repo)
    out = {}
    with tempfile.TemporaryDirectory(prefix="nc-numba-cache-") as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for key in ("cold_compile_s", "warm_cache_load_s"):
            r = subprocess.run([sys.executable, "-c", code], env=env,
                               capture_output=True, text=True, check=True)
            out[key] = float(r.stdout.strip().splitlines()[-1])
    return out


def _probed(program: LoihiProgram) -> LoihiProgram:
    """A copy of ``program`` with every LIF group's ``probe`` flag on."""
    return LoihiProgram(program.n_inputs, [
        LoihiLIF(n.name, n.size, n.du, n.dv, n.vth, n.bias_mant, n.bias_exp,
                 True) for n in program.neurons], program.synapses)


def same(a, b, program, keys=("spikes",)) -> bool:
    """True if results a and b agree on ``keys`` of every LIF group."""
    return all(np.array_equal(a[n.name][k], b[n.name][k])
               for n in program.neurons for k in keys)


# ---------------------------------------------------------------- main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--no-lava", action="store_true",
                    help="skip the Lava fixed_pt run")
    ap.add_argument("--repeat", type=int, default=7,
                    help="timed runs per contender (best is reported)")
    ap.add_argument("--lava-repeat", type=int, default=5,
                    help="timed Lava runs (after one warm-up run)")
    ap.add_argument("--lava-python", default=None,
                    help="Lava interpreter (default: $NEUROCOMPILE_LAVA_"
                         "PYTHON, then find_lava_python())")
    ap.add_argument("--no-jit", action="store_true",
                    help="skip the fresh-process JIT compile measurement")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--rate", type=float, default=0.10)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 64])
    ap.add_argument("--json", default=None, help="also write results here")
    args = ap.parse_args(argv)

    import torch
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, "
          f"torch {torch.__version__}, cpus {os.cpu_count()}, numba "
          + (__import__("numba").__version__ if loihi_fast.available()
             else "MISSING (fast = numpy reference)"))
    program, layers = build_network()
    T = args.steps
    res = {"steps": T, "rate": args.rate, "rows": [], "checks": {}}

    if loihi_fast.available():
        first = loihi_fast.warmup()
        res["first_call_in_process_s"] = first
        print(f"fast kernel first call in this process: {first * 1e3:.0f} ms"
              f" (JIT compile or on-disk cache load)")
        if not args.no_jit:
            res["jit"] = jit_times(REPO)
            print(f"fast kernel JIT, fresh process: cold compile "
                  f"{res['jit']['cold_compile_s']:.2f} s, cached load "
                  f"{res['jit']['warm_cache_load_s']:.2f} s")

    def row(name, batch, seconds, events, note=""):
        r = dict(name=name, batch=batch, ms=seconds * 1e3,
                 steps_per_s=T / seconds, sample_steps_per_s=T * batch /
                 seconds, events_per_s=events / seconds, note=note)
        res["rows"].append(r)
        return r

    times = {}
    for batch in args.batches:
        x = make_input(T, batch, args.rate, seed=batch)
        ref = loihi.run(program, x, probes=False)
        events = synaptic_events(program, x, ref)
        rates = [float(ref[n.name]["spikes"].mean()) for n in
                 program.neurons]
        print(f"\nbatch {batch}: firing rates "
              + ", ".join(f"{n.name} {r:.1%}" for n, r in
                          zip(program.neurons, rates))
              + f"; {events:,} synaptic events")
        res.setdefault("events", {})[batch] = events
        res.setdefault("rates", {})[batch] = rates
        if loihi_fast.available():
            plan = loihi_fast.prepare(program)
            fast = plan.run(x, probes=False)
            ok = same(fast, ref, program)
            # with probes: u and v too (the groups have probe=False, so
            # flip them on a copy of the program)
            probed = _probed(program)
            ok_uv = same(loihi_fast.run(probed, x), loihi.run(probed, x),
                         probed, ("spikes", "u", "v"))
            res["checks"][f"fast==numpy b{batch}"] = bool(ok and ok_uv)
            times[("kernel", batch)] = best_of(
                lambda: plan.run(x, probes=False), args.repeat, 2)
            times[("e2e", batch)] = best_of(
                lambda: loihi_fast.run(program, x, probes=False),
                args.repeat, 1)
            row("fast kernel (prepared plan)", batch,
                times[("kernel", batch)], events)
            row("fast e2e (validate+prepare+run)", batch,
                times[("e2e", batch)], events)
        times[("numpy", batch)] = best_of(
            lambda: loihi.run(program, x, probes=False),
            max(1, min(args.repeat, 5)), 1)
        row("numpy reference emulator", batch, times[("numpy", batch)],
            events)
        snn_run = snntorch_runner(layers, x)
        times[("snntorch", batch)] = best_of(snn_run, args.repeat, 2)
        row("snnTorch eager float (2 threads)", batch,
            times[("snntorch", batch)], events, "float, not bit-exact")

    if not args.no_lava and 1 in args.batches:
        from neurocompile.targets.loihi2.lava.host import find_lava_python, run_many_in_lava
        py = (args.lava_python or os.environ.get("NEUROCOMPILE_LAVA_PYTHON")
              or find_lava_python())
        if not py:
            print("\nlava: no interpreter (set NEUROCOMPILE_LAVA_PYTHON); "
                  "skipped")
        else:
            x = make_input(T, 1, args.rate, seed=1)
            t0 = time.perf_counter()
            outs = run_many_in_lava([(program, x)] * (args.lava_repeat + 1),
                                    python=py, timeout=1800)
            wall = time.perf_counter() - t0
            build_run = [float(o["wall_build_run_s"][0]) for o in outs]
            times[("lava", 1)] = min(build_run[1:])
            res["lava_build_run_s"] = build_run
            res["lava_subprocess_wall_s"] = wall
            ref = loihi.run(program, x, probes=False)
            res["checks"]["numpy==lava b1"] = all(
                same(o, ref, program) for o in outs)
            if loihi_fast.available():
                fast = loihi_fast.run(program, x, probes=False)
                res["checks"]["fast==lava b1"] = all(
                    same(o, fast, program) for o in outs)
            row("Lava fixed_pt CPU (build+run in-proc)", 1,
                times[("lava", 1)], res["events"][1],
                "excl. interpreter start")
            print("lava: build+run per run (first = warm-up) "
                  + ", ".join(f"{t * 1e3:.0f}" for t in build_run)
                  + f" ms; whole subprocess incl. start-up {wall:.1f} s")

    # ------------------------------------------------------------ report
    print(f"\n{T} steps, input rate {args.rate:.0%}, best of "
          f"{args.repeat}:")
    hdr = (f"{'contender':40s} {'batch':>5s} {'ms/run':>9s} "
           f"{'steps/s':>10s} {'sample-steps/s':>15s} {'syn events/s':>13s}")
    print(hdr)
    print("-" * len(hdr))
    for r in res["rows"]:
        print(f"{r['name']:40s} {r['batch']:5d} {r['ms']:9.3f} "
              f"{r['steps_per_s']:10.0f} {r['sample_steps_per_s']:15.0f} "
              f"{r['events_per_s']:13.3g}  {r['note']}")

    print("\nratios (time of the other / time of the fast emulator):")
    ratios = res.setdefault("ratios", {})
    for batch in args.batches:
        for kind in ("kernel", "e2e"):
            if (kind, batch) not in times:
                continue
            parts = []
            for other in ("lava", "snntorch", "numpy"):
                if (other, batch) in times:
                    ratio = times[(other, batch)] / times[(kind, batch)]
                    ratios[f"{other}/{kind} b{batch}"] = ratio
                    parts.append(f"{other} {ratio:.1f}x")
            print(f"  batch {batch:3d} fast {kind:6s}: " + ", ".join(parts))
    goals = {}
    if ("e2e", 1) in times:
        e2e1 = times[("e2e", 1)]
        goals["b1 < 6.5 ms / 100 steps (Brian2 C++ standalone), e2e"] = \
            e2e1 * 100 / T < 6.5e-3
        if ("lava", 1) in times:
            goals["b1 >= 100x Lava fixed_pt, e2e"] = \
                times[("lava", 1)] / e2e1 >= 100
    if ("e2e", 64) in times:
        goals["b64 >= 4x snnTorch eager, e2e"] = \
            times[("snntorch", 64)] / times[("e2e", 64)] >= 4
    for k, ok in res["checks"].items():
        goals[f"bit-exact: {k}"] = ok
    print("\ngoals:")
    for k, ok in goals.items():
        print(f"  [{'PASS' if ok else 'FAIL'}] {k}")
    res["goals"] = goals
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1, default=str)
    return 0 if all(goals.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
