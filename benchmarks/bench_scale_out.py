"""Scale-out: data-parallel ``validate`` on Lava and emulator throughput, 1 vs 2 workers.

Run from the repository root (Lava found through NEUROCOMPILE_LAVA_PYTHON)::

    NEUROCOMPILE_LAVA_PYTHON=.venv-lava/bin/python python benchmarks/bench_scale_out.py
    python benchmarks/bench_scale_out.py --no-lava --samples 10000
    python benchmarks/bench_scale_out.py --no-emulator --json lava.json

* Lava: ``validate`` of the 450 held-out digits (``neurocompile zoo-data digits``) with
  ``--targets lava`` in 8 shards (each its own Lava process), workers 1 (one after the other, in
  this process) and 2 (the local pool). The two reports' layer statistics and accuracy are checked
  equal.
* emulator: ``run_sharded`` of the digits tiled to ``--samples`` (10,000) samples with workers 1
  (in this process) and 2 (the pool), no cache; samples per second, outputs checked identical.
* per-shard overhead: the emulator in this process with 1 shard and with ``--overhead-shards``
  shards (the cost of splitting, a run call and merging per shard); for the pool also the
  difference between the pool's wall time and the ideal (single time / workers), per shard.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=10_000)
    ap.add_argument("--no-lava", action="store_true")
    ap.add_argument("--no-emulator", action="store_true")
    ap.add_argument("--overhead-shards", type=int, default=40)
    ap.add_argument("--json", help="write the numbers here")
    args = ap.parse_args()

    import neurocompile as nc
    from neurocompile.zoo import digits

    x, y = digits.test_data()
    x = np.asarray(x)
    res = {"cores": __import__("os").cpu_count()}
    emu = nc.compile("zoo:digits", target="emulator")

    # -- emulator throughput ------------------------------------------------------------------
    if not args.no_emulator:
        emulator_part(args, emu, x, res)
    lava_part(args, emu, x, y, res)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(res, fh, indent=1)


def emulator_part(args, emu, x, res):
    import neurocompile as nc
    from neurocompile.parallel import run_sharded

    big = np.resize(x.transpose(1, 0, 2), (args.samples,) + x.shape[::2]).transpose(1, 0, 2).copy()
    nc.run(emu, big[:, :50])                                         # JIT warm-up in this process
    one, t1 = timed(lambda: run_sharded(emu, big, workers=1))
    stats = {}
    two, t2 = timed(lambda: run_sharded(emu, big, workers=2, stats=stats))
    assert np.array_equal(one.output, two.output)
    _, t_1shard = timed(lambda: run_sharded(emu, big[:, :2000], workers=1, shard_size=2000))
    _, t_kshard = timed(lambda: run_sharded(emu, big[:, :2000], workers=1,
                                            shard_size=-(-2000 // args.overhead_shards)))
    res["emulator"] = {
        "samples": args.samples, "steps": int(big.shape[0]),
        "workers1_s": t1, "workers1_samples_per_s": args.samples / t1,
        "workers2_s": t2, "workers2_samples_per_s": args.samples / t2, "speedup": t1 / t2,
        "workers2_shards": stats["shards"],
        "pool_overhead_per_shard_s": (t2 - t1 / 2) / stats["shards"],
        "inline_overhead_per_shard_s": (t_kshard - t_1shard) / (args.overhead_shards - 1),
    }
    print(json.dumps(res["emulator"], indent=1), flush=True)



def lava_part(args, emu, x, y, res):
    from neurocompile.validate import validate

    # -- Lava: validate of the 450 digits -----------------------------------------------------
    if not args.no_lava:
        # the same 8 shards (one Lava process each) in this process, then on a pool of 2 workers; one
        # Lava process for all 450 can exceed the Lava host's 600 s limit on a loaded 2-core machine
        n_shards = 8
        size = -(-x.shape[1] // n_shards)
        rep1, l1 = timed(lambda: validate(emu, x, ["lava"], labels=y, artifact=emu, workers=1, shard_size=size))
        rep2, l2 = timed(lambda: validate(emu, x, ["lava"], labels=y, artifact=emu, workers=2, shard_size=size))
        same = rep1["accuracy"] == rep2["accuracy"] and rep1["metrics"]["lava"]["layers"] == \
            rep2["metrics"]["lava"]["layers"]
        res["lava"] = {"samples": int(x.shape[1]), "shards": n_shards, "workers1_s": l1, "workers2_s": l2,
                       "speedup": l1 / l2, "s_per_sample_1": l1 / x.shape[1],
                       "pool_overhead_per_shard_s": (l2 - l1 / 2) / n_shards,
                       "accuracy": rep1["accuracy"]["lava"], "reports_equal": bool(same)}
        print(json.dumps(res["lava"], indent=1), flush=True)


if __name__ == "__main__":
    main()
