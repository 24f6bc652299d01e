"""A real dask.distributed LocalCluster (2 worker processes): the sharded run equals the
single-process one, a killed worker's shard is retried, an interrupted run resumes."""
from __future__ import annotations

import time

import numpy as np
import pytest
from scale_fixtures import *  # noqa: F403 - the fixtures of this folder
from scale_tasks import crash_once_task, interrupted_task, same_result

import neurocompile as nc
from neurocompile.parallel import map_shards, run_sharded
from neurocompile.parallel.run import run_task

distributed = pytest.importorskip("distributed", reason="pip install 'neurocompile[scale]'")


@pytest.fixture(scope="module")
def cluster():
    cl = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=50)
    try:
        yield cl
    finally:
        cl.close()


@pytest.fixture
def client(cluster):
    with distributed.Client(cluster) as c:
        yield c


def test_dask_equals_single_process(client, emu_artifact, digits_data):
    x, _ = digits_data
    ref = nc.run(emu_artifact, x, probes=["1.v", "3.v"])
    stats = {}
    got = run_sharded(emu_artifact, x, probes=["1.v", "3.v"], scheduler=client, shard_size=5, stats=stats)
    same_result(ref, got)
    assert stats["executor"] == "dask" and stats["shards"] == 5


def test_dask_by_address(cluster, spin_artifact, digits_data):
    x, _ = digits_data
    same_result(nc.run(spin_artifact, x), run_sharded(spin_artifact, x, scheduler=cluster.scheduler_address,
                                                        shard_size=8))


def test_dask_retries_the_shard_of_a_killed_worker(client, emu_artifact, digits_data, tmp_path):
    x, _ = digits_data
    log = tmp_path / "log"
    log.mkdir()
    done = []
    merged = map_shards(crash_once_task, emu_artifact, x, kwargs={"log_dir": str(log)}, scheduler=client,
                        shard_size=6, progress=lambda d, n: done.append(d))
    assert (log / "crashed").exists()                       # one worker process died mid-shard
    np.testing.assert_array_equal(merged["out/output"], nc.run(emu_artifact, x).output)
    assert done[-1] == x.shape[1] and len(done) == 5         # 0, then each of 4 shards once


def test_dask_resume_after_interruption(client, emu_artifact, digits_data, tmp_path):
    x, _ = digits_data
    log, cache, flag = tmp_path / "log", tmp_path / "cache", tmp_path / "stop"
    log.mkdir()
    flag.touch()
    kw = {"log_dir": str(log), "stop_flag": str(flag), "stop_after": 2}
    with pytest.raises(RuntimeError, match="interrupted"):
        map_shards(interrupted_task, emu_artifact, x, kwargs=kw, scheduler=client, shard_size=4, cache=cache,
                   retries=0)
    deadline = time.monotonic() + 30
    while any(client.processing().values()) and time.monotonic() < deadline:
        time.sleep(0.05)                                     # shards still running when it stopped end
    n_cached = len(list(cache.rglob("*.npz")))
    assert 0 < n_cached < 6
    flag.unlink()
    before = len(list(log.iterdir()))
    stats = {}
    merged = map_shards(interrupted_task, emu_artifact, x, kwargs=kw, scheduler=client, shard_size=4, cache=cache,
                        stats=stats)
    assert stats["cached"] == n_cached and len(list(log.iterdir())) - before == 6 - n_cached
    ref = run_task(str(emu_artifact), x)
    for k in ref:
        np.testing.assert_array_equal(merged[k], ref[k])


def test_cli_scheduler_address_and_dask_config(cluster, emu_artifact, digits_data, tmp_path):
    import dask
    from click.testing import CliRunner

    from neurocompile.cli.main import cli

    x, _ = digits_data
    np.save(tmp_path / "X.npy", x)
    ref = nc.run(emu_artifact, x).output
    for sched in (cluster.scheduler_address, "dask"):
        out = tmp_path / f"out-{len(sched)}.npz"
        with dask.config.set({"scheduler-address": cluster.scheduler_address}):
            res = CliRunner().invoke(cli, ["run", str(emu_artifact), "-i", str(tmp_path / "X.npy"), "-o", str(out),
                                           "--scheduler", sched, "--shard-size", "6", "--cache", "none"])
        assert res.exit_code == 0, res.output
        with np.load(out) as z:
            np.testing.assert_array_equal(z["output"], ref)
