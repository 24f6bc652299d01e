"""The local pool: shards merge into the single-process result; a dead worker's shard is retried;
an interrupted run resumes from the cache; the cache holds npz files only (no pickles)."""
from __future__ import annotations

import numpy as np
import pytest
from scale_fixtures import *  # noqa: F403 - the fixtures of this folder
from scale_tasks import crash_once_task, interrupted_task, same_result

import neurocompile as nc
from neurocompile.errors import NeuroCompileError
from neurocompile.parallel import map_shards, run_sharded
from neurocompile.parallel.run import run_task
from neurocompile.parallel.shards import array_hash, artifact_hash, merge, shard_bounds


def test_shard_bounds_cover_the_batch_once():
    for batch in (1, 2, 7, 24, 450):
        for n in (1, 2, 3, 8, 1000):
            b = shard_bounds(batch, n)
            assert b[0][0] == 0 and b[-1][1] == batch
            assert all(hi > lo for lo, hi in b) and all(b[i][1] == b[i + 1][0] for i in range(len(b) - 1))
            sizes = [hi - lo for lo, hi in b]
            assert max(sizes) - min(sizes) <= 1


def test_merge_joins_on_the_batch_axis_and_keeps_markers():
    a = {"x": np.zeros((3, 2, 4)), "+n": np.array(2), "=k": np.array(5)}
    b = {"x": np.ones((3, 1, 4)), "+n": np.array(1), "=k": np.array(5)}
    m = merge([a, b])
    assert m["x"].shape == (3, 3, 4) and m["x"][:, 2].all() and int(m["+n"]) == 3 and int(m["=k"]) == 5


def test_in_memory_artifact_hash_is_stable(tmp_path):
    art = nc.compile("zoo:digits", target="emulator")
    art.save(tmp_path / "a")
    art.path = None                                        # saved again: new zip timestamps, same hash
    art.save(tmp_path / "b")
    assert artifact_hash(tmp_path / "a") == artifact_hash(tmp_path / "b")
    assert array_hash({"x": np.zeros(3)}) != array_hash({"x": np.zeros(3, np.float32)})


@pytest.mark.parametrize("workers", [1, 2])
def test_pool_equals_single_process(emu_artifact, digits_data, workers):
    x, _ = digits_data
    ref = nc.run(emu_artifact, x, probes=["1.v"])
    stats = {}
    got = run_sharded(emu_artifact, x, probes=["1.v"], workers=workers, shard_size=5, stats=stats)
    same_result(ref, got)
    assert stats["shards"] == 5 and stats["executor"] == ("inline" if workers == 1 else "local pool")


def test_pool_float_and_spinnaker_equal_single_process(spin_artifact, digits_data):
    x, _ = digits_data
    for art in (spin_artifact, nc.compile("zoo:digits", target="float")):   # an in-memory artifact too
        same_result(nc.run(art, x), run_sharded(art, x, workers=2, shard_size=8))


def test_pool_retries_the_shard_of_a_dead_worker(emu_artifact, digits_data, tmp_path):
    x, _ = digits_data
    ref = nc.run(emu_artifact, x)
    log = tmp_path / "log"
    log.mkdir()
    done = []
    merged = map_shards(crash_once_task, emu_artifact, x, kwargs={"log_dir": str(log)}, workers=2, shard_size=6,
                        progress=lambda d, n: done.append(d))
    assert (log / "crashed").exists()
    np.testing.assert_array_equal(merged["out/output"], ref.output)
    assert done[-1] == x.shape[1] and done == sorted(done)     # every sample counted once


def test_interrupted_run_resumes_from_the_cache(emu_artifact, digits_data, tmp_path):
    x, _ = digits_data
    ref = run_task(str(emu_artifact), x)
    log, cache = tmp_path / "log", tmp_path / "cache"
    log.mkdir()
    flag = tmp_path / "stop"
    flag.touch()
    kw = {"log_dir": str(log), "stop_flag": str(flag), "stop_after": 3}
    with pytest.raises(RuntimeError, match="interrupted"):
        map_shards(interrupted_task, emu_artifact, x, kwargs=kw, workers=1, shard_size=4, cache=cache)
    cached = sorted(cache.rglob("*.npz"))
    assert len(cached) == 3                                    # shards 0..2 finished and were kept
    for f in cached:
        with np.load(f, allow_pickle=False) as z:             # plain arrays, no pickles
            assert all(z[k].dtype != object for k in z.files)
    flag.unlink()
    before = len(list(log.iterdir()))
    stats = {}
    merged = map_shards(interrupted_task, emu_artifact, x, kwargs=kw, workers=2, shard_size=4, cache=cache,
                        stats=stats)
    assert stats["cached"] == 3 and len(list(log.iterdir())) - before == 3   # only the missing shards ran
    for k in ref:
        np.testing.assert_array_equal(merged[k], ref[k])
    stats = {}
    map_shards(interrupted_task, emu_artifact, x, kwargs=kw, workers=2, shard_size=4, cache=cache, stats=stats)
    assert stats["cached"] == 6                               # a third run reads everything


def test_task_errors_are_not_retried(emu_artifact, tmp_path):
    bad = np.full((4, 6, 64), 0.5)                           # not spikes: the emulator refuses
    with pytest.raises(NeuroCompileError, match="spikes"):
        run_sharded(emu_artifact, bad, workers=2, shard_size=3)


def test_missing_dask_names_the_extra(monkeypatch, emu_artifact, digits_data):
    import builtins

    real = builtins.__import__

    def no_distributed(name, *a, **k):
        if name == "distributed" or name.startswith("distributed."):
            raise ImportError(name)
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_distributed)
    with pytest.raises(NeuroCompileError, match=r"neurocompile\[scale\]"):
        run_sharded(emu_artifact, digits_data[0], scheduler="tcp://127.0.0.1:1")
