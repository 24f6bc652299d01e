"""``validate``'s target runs, data-parallel: each shard of the input becomes a :class:`Trace` on a
worker (:func:`neurocompile.parallel.map_shards`), and the shards' traces are joined on the batch
axis into exactly the trace one process computes (the comparisons and the report then match)."""
from __future__ import annotations

import time

import numpy as np

from neurocompile.errors import NeuroCompileError
from neurocompile.parallel import map_shards
from neurocompile.parallel.run import load_cached
from neurocompile.targets.registry import resolve_run
from neurocompile.validate.traces import Trace, run_target

SEP = "|"


def _put(out: dict, prefix: str, name: str, key: str, arr) -> None:
    if SEP in name or SEP in key:
        raise NeuroCompileError(f"a group name holds '{SEP}', which sharded validate cannot carry", node=name)
    if arr is not None:
        out[SEP.join((prefix, name, key))] = np.asarray(arr)


def trace_task(artifact_path: str, x, *, target: str) -> dict[str, np.ndarray]:
    """One shard of ``run_target`` on a worker, as flat arrays (batch on axis 1)."""
    artifact = load_cached(artifact_path)
    runner = None if target == "float" else resolve_run(target)[1]
    tr = run_target(artifact, target, x, runner=runner)
    out: dict[str, np.ndarray] = {"=exact": np.array(tr.exact), "=steps": np.array(tr.steps)}
    for n, d in tr.aligned.items():
        for k, v in d.items():
            _put(out, "aligned", n, k, v)
    for n, v in tr.outputs.items():
        _put(out, "outputs", n, "", v)
    for n, d in (tr.raw or {}).items():
        if isinstance(d, dict):
            for k, v in d.items():
                _put(out, "raw", n, k, v)
        else:
            out[SEP.join(("=raw", n, ""))] = np.asarray(d)
    if tr.raw is None:
        out["=noraw"] = np.array(True)
    return out


def sharded_trace(artifact, target: str, x, *, groups, workers=None, scheduler=None, cache=None,
                  shard_size=None, progress=None) -> Trace:
    t0 = time.perf_counter()
    flat = map_shards(trace_task, artifact, x, kwargs={"target": target}, workers=workers, scheduler=scheduler,
                      cache=cache, shard_size=shard_size, progress=progress)
    aligned = {n: {"spikes": None, "v": None} for n in groups}
    outputs, raw = {}, {}
    for key, arr in flat.items():
        if key in ("=exact", "=steps", "=noraw"):
            continue
        prefix, name, sub = key.split(SEP)
        if prefix == "aligned":
            aligned.setdefault(name, {})[sub] = arr
        elif prefix == "outputs":
            outputs[name] = arr
        elif prefix == "raw":
            raw.setdefault(name, {})[sub] = arr
        elif prefix == "=raw":
            raw[name] = arr.item() if arr.ndim == 0 else arr
    return Trace(target, bool(flat["=exact"]), aligned, outputs, raw=None if "=noraw" in flat else raw,
                 steps=int(flat["=steps"]), wall_s=time.perf_counter() - t0)


def sharded_run(artifact, target: str, x, runner, **opts) -> Trace:
    """``run_target`` in shards; the runner's availability is checked here, before any worker starts."""
    from neurocompile.errors import BackendError
    from neurocompile.validate.traces import neuron_groups

    if runner is not None:
        ok, why = runner.available()
        if not ok:
            raise BackendError(f"{target}: {why}")
    return sharded_trace(artifact, target, x, groups=neuron_groups(artifact), **opts)
