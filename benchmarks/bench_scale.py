"""Million-neuron conv nets: compile and map time and peak memory per phase; emulator speed.

Run from the repository root::

    python benchmarks/bench_scale.py                       # the three networks, Loihi 2
    python benchmarks/bench_scale.py --nets 256 --json scale.json
    python benchmarks/bench_scale.py --targets loihi2,spinnaker   # + the SpiNNaker section
    python benchmarks/bench_scale.py --no-emulator         # compile phases only

Networks (issue 14): event-camera-style classifiers, NIR, dt = 1e-3 s. Input 2 x S x S
(S = 64, 128, 256), four 3x3 convolutions with 8-16-32-64 channels (padding 1, stride 1 for the
first, 2 after it, with bias), LIF (beta 0.9, threshold 1, reset to zero) after each, Flatten and a
dense readout (Affine, 10 LIF). 61k / 246k / 983k neurons. Weights are random but seeded (normal,
mean chosen so that every layer fires about 9 % of the time at 10 % input spikes). Each network is
written to a temporary ``.nir`` file with the ``nir`` package and read back through
``neurocompile.api.load_model``, so the NIR frontend is part of what is measured.

Compile phases, each in a fresh subprocess per (network, target) so that one network's memory
does not hide the next one's:

* ``load``: ``load_model(file.nir)``;
* ``passes``: the target's graph passes (remove-identity ... dense-form);
* ``lowering``: the graph -> program step (``quantize-loihi2``);
* ``partition``: cores and chips (``partition-loihi2``);
* ``save``: payload + ``Artifact.save`` to a temporary directory.

Per phase: wall time and the peak resident memory during the phase (``VmHWM`` of
``/proc/self/status``, reset before each phase through ``/proc/self/clear_refs``; ``ru_maxrss``
where that is not possible, then the figure is the process's peak so far). ``peak_mib`` is the
peak of the whole compile. ``tracemalloc`` (``--tracemalloc``) adds the peak of Python/numpy
allocations per phase (slower).

Emulator: the compiled Loihi 2 program on the numba kernel (``FastPlan.run``, prepared once,
``probes=False``) against snnTorch's float forward pass of the same network (the same float
weights: ``nn.Conv2d`` + ``snn.Leaky(beta=0.9, reset_mechanism="zero")``, ``nn.Flatten``,
``nn.Linear`` + ``snn.Leaky``; eager, ``torch.no_grad()``, timed with 1 thread and with the
emulator's threads, the faster counts: on a machine shared with other jobs torch's OpenMP threads
can wait on a busy core), ``--steps`` steps of Bernoulli input at ``--rate``, batch 1 and 8, best of
``--repeat``. Steps per second = steps / wall time (the whole batch advances one step). The
emulator is checked bit-exact against the numpy reference emulator on the first
``--check-steps`` steps at batch 2 (spikes, u and v of every group), and firing rates are shown
for both (snnTorch is float, so its spikes are not expected to be identical). The numpy reference
emulator's own speed (batch 1, those steps) is shown too: it is what ran conv programs before
the kernel covered them.

SpiNNaker: the section ``spinnaker_phases`` runs only with ``--targets`` naming spinnaker (its
lowering is another engineer's work; this script only measures the same phases with the
SpiNNaker target's own passes).
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

SIZES = (64, 128, 256)
CHANNELS = (8, 16, 32, 64)
N_OUT = 10
DT = 1e-3
BETA = 0.9
#: mean input per spike (in thresholds, summed over a tap's fan-in) per conv layer, and spread
MEANS = (1.5, 1.8, 1.8, 1.8)
SPREAD = 0.5


# ---------------------------------------------------------------- the networks
def net_params(size: int, seed: int = 0) -> list[dict]:
    """The layers' float parameters: convs then the readout (``kind``, ``weight``, ``bias``...)."""
    rng = np.random.default_rng(seed)
    layers, c_in, hw = [], 2, size
    for i, c in enumerate(CHANNELS):
        stride = 1 if i == 0 else 2
        fan = c_in * 9
        w = rng.normal(MEANS[i] / fan, SPREAD / np.sqrt(fan), (c, c_in, 3, 3)).astype(np.float32)
        b = rng.normal(0.0, 0.02, c).astype(np.float32)
        out = (hw + 2 - 3) // stride + 1
        layers.append({"kind": "conv", "weight": w, "bias": b, "stride": stride, "in_hw": hw, "out_hw": out})
        c_in, hw = c, out
    n_flat = c_in * hw * hw
    w = rng.normal(1.0 / n_flat, 1.0 / np.sqrt(n_flat), (N_OUT, n_flat)).astype(np.float32)
    layers.append({"kind": "fc", "weight": w, "bias": np.zeros(N_OUT, np.float32), "in_shape": (c_in, hw, hw)})
    return layers


def n_neurons(size: int) -> int:
    total, hw = 0, size
    for i, c in enumerate(CHANNELS):
        hw = (hw - 1) // (1 if i == 0 else 2) + 1
        total += c * hw * hw
    return total + N_OUT


def build_nir(size: int, seed: int = 0):
    """The network as a ``nir.NIRGraph`` (LIF written as snnTorch's exporter writes Leaky:
    ``tau = dt/(1-beta)``, ``r = tau/dt``, so that forward Euler gives ``v = beta*v + x``)."""
    import nir

    tau = DT / (1 - BETA)

    def lif(shape):
        return nir.LIF(tau=np.full(shape, tau), r=np.full(shape, tau / DT), v_leak=np.zeros(shape),
                       v_threshold=np.ones(shape))

    nodes = {"input": nir.Input(input_type={"input": np.array([2, size, size])})}
    edges, prev, c_in = [], "input", 2
    for i, p in enumerate(net_params(size, seed)):
        if p["kind"] == "conv":
            nodes[f"conv{i}"] = nir.Conv2d(input_shape=(p["in_hw"], p["in_hw"]), weight=p["weight"],
                                           stride=p["stride"], padding=1, dilation=1, groups=1, bias=p["bias"])
            c_in = p["weight"].shape[0]
            nodes[f"lif{i}"] = lif((c_in, p["out_hw"], p["out_hw"]))
            edges += [(prev, f"conv{i}"), (f"conv{i}", f"lif{i}")]
            prev = f"lif{i}"
        else:
            nodes["flat"] = nir.Flatten(input_type={"input": np.array(p["in_shape"])}, start_dim=0, end_dim=-1)
            nodes["fc"] = nir.Affine(weight=p["weight"], bias=p["bias"])
            nodes["readout"] = lif((N_OUT,))
            nodes["output"] = nir.Output(output_type={"output": np.array([N_OUT])})
            edges += [(prev, "flat"), ("flat", "fc"), ("fc", "readout"), ("readout", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges)


def write_nir(size: int, directory: str, seed: int = 0) -> str:
    import nir

    path = os.path.join(directory, f"convnet{size}.nir")
    nir.write(path, build_nir(size, seed))
    return path


# ---------------------------------------------------------------- phases (child process)
def _hwm_mib() -> float:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def measure_phases(path: str, target: str, use_tracemalloc: bool) -> dict:
    """Run one compile phase by phase in this process; time and peak memory of each."""
    import tracemalloc

    from neurocompile import api
    from neurocompile.ir.graph import Graph
    from neurocompile.passes.base import Lowering, PassContext
    from neurocompile.targets.artifact import Artifact
    from neurocompile.targets.registry import get_target

    tgt = get_target(target)
    opts = tgt.Options.from_dict({}, target)
    ctx = PassContext(target=target, options=opts)
    steps = tgt.passes(opts)
    lower_at = next(i for i, s in enumerate(steps) if isinstance(s, Lowering))
    phases = {"passes": steps[:lower_at], "lowering": steps[lower_at:lower_at + 1],
              "partition": steps[lower_at + 1:]}
    out: dict = {"target": target, "phases": {}, "resettable_peak": _reset_hwm()}
    value = {}

    def phase(name, fn):
        resettable = _reset_hwm()
        if use_tracemalloc:
            tracemalloc.start()
        t0 = time.perf_counter()
        result = fn()
        wall = time.perf_counter() - t0
        entry = {"s": round(wall, 3), "peak_rss_mib": round(_hwm_mib(), 1), "peak_is_phase": resettable}
        if use_tracemalloc:
            entry["tracemalloc_peak_mib"] = round(tracemalloc.get_traced_memory()[1] / 2 ** 20, 1)
            tracemalloc.stop()
        out["phases"][name] = entry
        return result

    value["graph"] = phase("load", lambda: api.load_model(path, dt=DT, reset="zero"))

    def run_steps(v, group):
        for s in group:
            v = s.run(v, ctx)
            v.validate()
        return v

    v = phase("passes", lambda: run_steps(value["graph"], phases["passes"]))
    v = phase("lowering", lambda: run_steps(v, phases["lowering"]))
    v = phase("partition", lambda: run_steps(v, phases["partition"]))

    def save():
        lowered = v if isinstance(v, Graph) else v.graph
        art = Artifact(target=tgt.name, graph=lowered, report=ctx.report, payload=tgt.payload(lowered, v, ctx))
        with tempfile.TemporaryDirectory() as d:
            art.save(os.path.join(d, "art"))
            size = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(d) for f in fs)
        return size

    out["artifact_bytes"] = phase("save", save)
    out["total_s"] = round(sum(p["s"] for p in out["phases"].values()), 3)
    out["peak_mib"] = max(p["peak_rss_mib"] for p in out["phases"].values())
    res = ctx.report.get("resources") or ctx.report.get("spinnaker", {}).get("resources")
    if res:
        out["resources"] = {k: res[k] for k in res if k not in ("per_core",)}
        if "per_core" in res:
            cores = res["per_core"]
            out["resources"]["per_core_summary"] = {
                "max_neurons": max(c["n_neurons"] for c in cores), "max_synapses": max(c["synapses"] for c in cores),
                "max_axons": max(c.get("axons", 0) for c in cores)}
    program = getattr(v, "program", None)
    if program is not None and hasattr(program, "synapses"):   # a Loihi 2 program
        out["program"] = program_summary(program)
    return out


def program_summary(program) -> dict:
    """What the program stores: per connection its kind and stored elements (no dense
    matrices for structure: convs keep their kernel)."""
    conns = []
    for s in program.synapses:
        w = np.asarray(s.weights)
        conns.append({"name": s.name, "kind": type(s).__name__, "stored": int(w.size), "shape": list(w.shape)})
    return {"neurons": int(sum(n.size for n in program.neurons)), "connections": conns,
            "stored_weights": int(sum(c["stored"] for c in conns))}


def phases_in_subprocess(path: str, target: str, use_tracemalloc: bool) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--child", path, target]
    if use_tracemalloc:
        cmd.append("--tracemalloc")
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    if r.returncode != 0:
        tail = (r.stderr or r.stdout).strip().splitlines()[-3:]
        return {"target": target, "error": " | ".join(tail), "exit": r.returncode}
    return json.loads(r.stdout.strip().splitlines()[-1])


def loihi2_phases(path, args):
    return phases_in_subprocess(path, "loihi2", args.tracemalloc)


def spinnaker_phases(path, args):
    """SpiNNaker: the same phases with the SpiNNaker target's passes (its lowering of convolutions
    is the SpiNNaker engineer's; this only measures it). Runs only with --targets spinnaker."""
    r = phases_in_subprocess(path, "spinnaker", args.tracemalloc)
    if "error" not in r and "resources" in r:
        r["spinnaker"] = spinnaker_summary(r["resources"])
        print(spinnaker_line(r["spinnaker"]), flush=True)
    return r


def spinnaker_summary(res: dict) -> dict:
    """The SpiNNaker mapping in a few numbers (``report["spinnaker"]["resources"]``, see
    docs/spinnaker-conv.md): cores by kind (local-only conv, standard, spike sources), chips
    (lower bound from cores and from SDRAM packing), boards, synapses, SDRAM (estimates)."""
    per_core = {n: res["sdram_bytes"][n] / res["cores"][n] for n in res["cores"] if res["cores"][n]}
    worst = max(per_core, key=per_core.get) if per_core else None
    return {"populations": len(res["cores"]), "cores": res["total_cores"], "cores_by_kind": res.get("cores_by_kind"),
            "chips": res["chips"], "chips_for_cores": res.get("chips_for_cores"),
            "chips_for_sdram": res.get("chips_for_sdram"), "boards": res.get("boards"),
            "synapses": res.get("total_synapses"), "sdram_mib": round(res["total_sdram_bytes"] / 2 ** 20, 1),
            "max_sdram_mib_per_core": round(per_core[worst] / 2 ** 20, 2) if worst else 0.0,
            "max_sdram_population": worst}


def spinnaker_line(s: dict) -> str:
    kinds = ", ".join(f"{v} {k}" for k, v in (s["cores_by_kind"] or {}).items())
    return (f"    SpiNNaker: {s['cores']} cores ({kinds}) in {s['populations']} populations, >= {s['chips']} chips "
            f"(cores {s['chips_for_cores']}, SDRAM {s['chips_for_sdram']}), {s['boards']} boards, "
            f"{s['synapses']} synapses, SDRAM ~{s['sdram_mib']:.0f} MiB (at most {s['max_sdram_mib_per_core']:.1f} "
            f"MiB a core, '{s['max_sdram_population']}')")


PHASES = {"loihi2": loihi2_phases, "spinnaker": spinnaker_phases}


# ---------------------------------------------------------------- emulator vs snnTorch
def snntorch_model(size: int, seed: int = 0):
    import snntorch as snn
    import torch

    mods = []
    for p in net_params(size, seed):
        if p["kind"] == "conv":
            co, ci = p["weight"].shape[:2]
            conv = torch.nn.Conv2d(ci, co, 3, stride=p["stride"], padding=1, bias=True)
            conv.weight.data = torch.from_numpy(p["weight"])
            conv.bias.data = torch.from_numpy(p["bias"])
            mods.append(conv)
        else:
            fc = torch.nn.Linear(p["weight"].shape[1], N_OUT, bias=True)
            fc.weight.data = torch.from_numpy(p["weight"])
            fc.bias.data = torch.from_numpy(p["bias"])
            mods.append(torch.nn.Sequential(torch.nn.Flatten(), fc))
    lifs = [snn.Leaky(beta=BETA, threshold=1.0, reset_mechanism="zero") for _ in mods]
    return mods, lifs


def snntorch_run(model, x):
    """x: (T, B, 2, S, S) float tensor; returns spike counts per layer (float forward pass)."""
    import torch

    mods, lifs = model
    with torch.no_grad():
        mems = [lif.init_leaky() for lif in lifs]
        counts = [0.0] * len(mods)
        for t in range(x.shape[0]):
            h = x[t]
            for k, (m, lif) in enumerate(zip(mods, lifs)):
                h, mems[k] = lif(m(h), mems[k])
                counts[k] += float(h.sum())
    return counts


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def emulator_vs_snntorch(size: int, path: str, args) -> dict:
    import torch

    from neurocompile import api
    from neurocompile.targets.loihi2 import emulator as reference
    from neurocompile.targets.loihi2 import emulator_fast as fast

    threads = fast.default_threads()
    torch.set_num_threads(threads)
    art = api.compile(path, target="loihi2", dt=DT, reset="zero")
    program = art.payload["program"]
    fast.warmup()
    plan = fast.prepare(program)
    res = {"threads": threads, "steps": args.steps, "rate": args.rate, "batches": {}}
    rng = np.random.default_rng(1)
    # bit exactness first: fast == numpy reference (spikes, u, v)
    xc = rng.random((args.check_steps, 2, program.n_inputs)) < args.rate
    got, want = plan.run(xc, probes=True), reference.run(program, xc, probes=True)
    res["bit_exact_vs_reference"] = all(np.array_equal(got[n.name][k], want[n.name][k])
                                        for n in program.neurons for k in want[n.name])
    x1 = xc[:, :1]
    t_ref = best_of(lambda: reference.run(program, x1, probes=False), 1)
    res["reference_batch1_steps_per_s"] = round(args.check_steps / t_ref, 1)
    model = snntorch_model(size)
    for batch in args.batches:
        x = rng.random((args.steps, batch, 2, size, size)) < args.rate
        xs = x.reshape(args.steps, batch, -1)
        plan.run(xs[:2], probes=False)
        t_emu = best_of(lambda: plan.run(xs, probes=False), args.repeat)
        out = plan.run(xs, probes=False)
        xt = torch.from_numpy(x.astype(np.float32))
        t_by_threads = {}
        for n_thr in sorted({1, threads}):   # snnTorch's best: on a busy machine 1 thread can win
            torch.set_num_threads(n_thr)
            snntorch_run(model, xt[:2])
            t_by_threads[n_thr] = best_of(lambda: snntorch_run(model, xt), args.repeat)
        t_snn = min(t_by_threads.values())
        counts = snntorch_run(model, xt)
        groups = [n.name for n in program.neurons if n.name in art.graph.nodes]
        emu_rates = {g: round(float(out[g]["spikes"].mean()), 4) for g in groups}
        sizes = [program.neuron(g).size for g in groups]
        snn_rates = {g: round(c / (args.steps * batch * n), 4) for g, c, n in zip(groups, counts, sizes)}
        res["batches"][str(batch)] = {
            "emulator_s": round(t_emu, 4), "emulator_steps_per_s": round(args.steps / t_emu, 1),
            "snntorch_s": round(t_snn, 4), "snntorch_steps_per_s": round(args.steps / t_snn, 1),
            "snntorch_s_by_threads": {str(k): round(v, 4) for k, v in t_by_threads.items()},
            "speedup": round(t_snn / t_emu, 2), "rates_emulator": emu_rates, "rates_snntorch": snn_rates}
    return res


# ---------------------------------------------------------------- main
def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(measure_phases(sys.argv[2], sys.argv[3], "--tracemalloc" in sys.argv)))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nets", default=",".join(map(str, SIZES)), help="input sizes S (2 x S x S), comma separated")
    ap.add_argument("--targets", default="loihi2", help="loihi2 and/or spinnaker, comma separated")
    ap.add_argument("--tracemalloc", action="store_true", help="also the tracemalloc peak per phase (slower)")
    ap.add_argument("--no-emulator", action="store_true")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--check-steps", type=int, default=8)
    ap.add_argument("--rate", type=float, default=0.1)
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", help="write the numbers here")
    args = ap.parse_args()
    args.batches = [int(b) for b in args.batches.split(",")]
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    results = {"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]}, "nets": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for size in (int(s) for s in args.nets.split(",")):
            path = write_nir(size, tmp)
            entry = {"input": [2, size, size], "neurons": n_neurons(size), "nir_bytes": os.path.getsize(path)}
            for t in targets:
                entry[t] = PHASES[t](path, args)
                show_phases(size, entry[t])
            if not args.no_emulator:
                entry["emulator"] = emulator_vs_snntorch(size, path, args)
                show_emulator(size, entry["emulator"])
            results["nets"][str(size)] = entry
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1)
    return 0


def show_phases(size, r):
    if "error" in r:
        print(f"2x{size}x{size} {r['target']}: FAILED (exit {r['exit']}): {r['error']}")
        return
    parts = ", ".join(f"{k} {v['s']:.2f} s / {v['peak_rss_mib']:.0f} MiB" for k, v in r["phases"].items())
    res = r.get("resources", {})
    extra = (f"; {res.get('neurons')} neurons on {res.get('cores')} cores of {res.get('chips')} chip(s), "
             f"{res.get('inter_chip_routes', 0)} routes between chips") if res and r["target"] == "loihi2" else ""
    print(f"2x{size}x{size} {r['target']}: {r['total_s']:.2f} s, peak {r['peak_mib']:.0f} MiB ({parts}){extra}",
          flush=True)


def show_emulator(size, r):
    print(f"2x{size}x{size} numpy reference emulator batch 1: {r['reference_batch1_steps_per_s']:.1f} steps/s")
    for b, e in r["batches"].items():
        print(f"2x{size}x{size} emulator batch {b}: {e['emulator_steps_per_s']:.1f} steps/s vs snnTorch "
              f"{e['snntorch_steps_per_s']:.1f} steps/s ({e['speedup']:.1f}x); bit-exact vs reference: "
              f"{r['bit_exact_vs_reference']}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
