"""``run_sharded`` and ``map_shards``: split, run on workers, cache, merge."""
from __future__ import annotations

import contextlib
import os
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

from neurocompile.api import run as api_run
from neurocompile.errors import NeuroCompileError
from neurocompile.ir.batch import batched_inputs
from neurocompile.ir.interpreter import RunResult
from neurocompile.parallel.cache import open_cache
from neurocompile.parallel.shards import array_hash, artifact_hash, merge, n_shards_for, shard_bounds, take
from neurocompile.targets.artifact import Artifact, is_artifact, load_artifact

_LOADED: dict[str, tuple[int, Artifact]] = {}


def load_cached(path: str) -> Artifact:
    """The artifact at ``path``, loaded once per worker process (reloaded when its manifest changes)."""
    p = Path(path)
    if not is_artifact(p):
        import socket

        raise NeuroCompileError(f"no artifact at {path} on worker {socket.gethostname()}: workers read the "
                                "artifact by its path (use a filesystem every worker sees)")
    stamp = (p / "manifest.json").stat().st_mtime_ns
    hit = _LOADED.get(str(p))
    if hit is None or hit[0] != stamp:
        hit = (stamp, load_artifact(p))
        _LOADED[str(p)] = hit
    return hit[1]


def run_task(artifact_path: str, x, *, on=None, probes=(), record_spikes=True) -> dict[str, np.ndarray]:
    """One shard of ``api.run`` on a worker: outputs and probes, batch on axis 1."""
    res = api_run(load_cached(artifact_path), x, probes=tuple(probes), record_spikes=record_spikes, on=on)
    out = {f"out/{k}": np.asarray(v) for k, v in res.outputs.items()}
    out.update({f"probe/{k}": np.asarray(v) for k, v in res.probes.items()})
    return out


def _shard_call(task, artifact_path: str, x, kwargs: dict) -> dict[str, np.ndarray]:
    """What a worker executes (a module-level function: pickled by reference)."""
    out = task(artifact_path, x, **kwargs)
    for k, v in out.items():
        if not k.startswith(("+", "=")) and np.ndim(v) < 2:
            raise NeuroCompileError(f"shard result '{k}' has no batch axis (shape {np.shape(v)})")
    return out


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def saved(artifact: Artifact | str | Path):
    """The artifact's directory: its own when it was loaded or saved, else a temporary copy."""
    if not isinstance(artifact, Artifact):
        yield load_cached(str(artifact)), Path(artifact)
        return
    if artifact.path is not None and is_artifact(artifact.path):
        yield artifact, Path(artifact.path)
        return
    with tempfile.TemporaryDirectory(prefix="nc-shards-") as tmp:
        copy = Artifact(target=artifact.target, graph=artifact.graph, report=artifact.report,
                        payload=artifact.payload)
        copy.save(Path(tmp) / "artifact")
        yield artifact, Path(tmp) / "artifact"


def shard_plan(batch: int, workers: int | None = None, shard_size: int | None = None) -> list[tuple[int, int]]:
    workers = default_workers() if workers is None else workers
    return shard_bounds(batch, n_shards_for(batch, workers, shard_size))


def _executor(workers: int, scheduler, retries: int, n_jobs: int):
    if scheduler is not None:
        from neurocompile.parallel.dask import DaskExecutor

        return DaskExecutor(scheduler, retries=retries)
    if workers > 1 and n_jobs > 1:
        from neurocompile.parallel.pool import LocalPool

        return LocalPool(workers, retries=retries)
    from neurocompile.parallel.pool import InlineExecutor

    return InlineExecutor()


def map_shards(task: Callable, artifact: Artifact | str | Path, x, *, kwargs: dict | None = None,
               workers: int | None = None, scheduler=None, cache=None, shard_size: int | None = None,
               retries: int = 2, progress: Callable[[int, int], None] | None = None,
               stats: dict | None = None) -> dict[str, np.ndarray]:
    """Run ``task(artifact_path, x_shard, **kwargs)`` on every shard of ``x`` and merge the results.

    ``task`` is a module-level function returning ``{name: array}`` with the batch on axis 1
    (names starting ``+`` are summed, ``=`` kept once). ``workers``: local processes (default:
    the machine's cores; 1 runs here); ``scheduler``: a Dask scheduler address or Client (then
    ``workers`` is ignored); ``cache``: a directory, True (the default one) or None.
    ``progress(samples_done, samples)``; ``stats`` receives the plan and timings.
    """
    kwargs = dict(kwargs or {})
    store = open_cache(cache)
    with saved(artifact) as (art, path):
        xs = batched_inputs(art.graph, x)
        single = len(xs) == 1
        B = next(iter(xs.values())).shape[1]
        bounds = shard_plan(B, 1 if scheduler is None and workers == 1 else workers, shard_size)
        t0 = time.perf_counter()
        akey = artifact_hash(path) if store is not None else ""
        task_id = f"{task.__module__}.{task.__qualname__}"
        results: dict[int, dict] = {}
        keys, jobs = {}, {}
        for k, (lo, hi) in enumerate(bounds):
            shard = take(xs, lo, hi)
            if store is not None:
                keys[k] = array_hash(shard, extra=[task_id, kwargs])
                hit = store.get(akey, keys[k])
                if hit is not None:
                    results[k] = hit
                    continue
            jobs[k] = (task, str(path), next(iter(shard.values())) if single else shard, kwargs)
        done = [sum(hi - lo for k, (lo, hi) in enumerate(bounds) if k in results)]
        if progress:
            progress(done[0], B)

        def on_done(k, result):
            if k in results:
                return
            if store is not None:
                store.put(akey, keys[k], result)
            results[k] = result
            done[0] += bounds[k][1] - bounds[k][0]
            if progress:
                progress(done[0], B)

        ex = _executor(default_workers() if workers is None else workers, scheduler, retries, len(jobs))
        if jobs:
            ex.map(_shard_call, jobs, on_done)
        missing = [k for k in range(len(bounds)) if k not in results]
        if missing:  # pragma: no cover - every executor either finishes or raises
            raise NeuroCompileError(f"shards {missing} did not finish")
        merged = merge([results[k] for k in range(len(bounds))])
        if stats is not None:
            stats.update(shards=len(bounds), cached=len(bounds) - len(jobs), executor=ex.name,
                         wall_s=time.perf_counter() - t0)
        return merged


def run_sharded(artifact: Artifact | str | Path, x, *, probes=(), record_spikes: bool = True, on: str | None = None,
                workers: int | None = None, scheduler=None, cache=None, shard_size: int | None = None,
                retries: int = 2, progress: Callable[[int, int], None] | None = None,
                stats: dict | None = None) -> RunResult:
    """:func:`neurocompile.api.run`, data-parallel: the same RunResult, bit for bit."""
    merged = map_shards(run_task, artifact, x, kwargs=dict(on=on, probes=list(probes), record_spikes=record_spikes),
                        workers=workers, scheduler=scheduler, cache=cache, shard_size=shard_size,
                        retries=retries, progress=progress, stats=stats)
    outputs = {k[4:]: v for k, v in merged.items() if k.startswith("out/")}
    probes_out = {k[6:]: v for k, v in merged.items() if k.startswith("probe/")}
    return RunResult(outputs=outputs, probes=probes_out)
