"""Task functions for tests/scale: importable by pool and Dask worker processes (this folder is on
sys.path, which spawned workers inherit). They wrap the real shard task with a failure."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from neurocompile.parallel.run import run_task


def _claim(path: Path) -> bool:
    """Atomically create ``path``; True for the one caller that did."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        return True
    except FileExistsError:
        return False


def _log_execution(log_dir: str) -> int:
    n = 0
    while not _claim(Path(log_dir) / f"exec-{n}"):
        n += 1
    return n


def crash_once_task(artifact_path, x, *, log_dir, **kwargs):
    """The first shard to start kills its worker process (no exception: the process is gone)."""
    _log_execution(log_dir)
    if _claim(Path(log_dir) / "crashed"):
        os._exit(17)
    return run_task(artifact_path, x, **kwargs)


def interrupted_task(artifact_path, x, *, log_dir, stop_flag, stop_after, **kwargs):
    """While ``stop_flag`` exists, the execution numbered ``stop_after`` and later ones fail (an
    interruption); every execution is logged."""
    n = _log_execution(log_dir)
    if os.path.exists(stop_flag) and n >= stop_after:
        raise RuntimeError("interrupted")
    return run_task(artifact_path, x, **kwargs)


def same_result(a, b):
    assert set(a.outputs) == set(b.outputs) and set(a.probes) == set(b.probes)
    for k in a.outputs:
        np.testing.assert_array_equal(a.outputs[k], b.outputs[k])
        assert a.outputs[k].dtype == b.outputs[k].dtype
    for k in a.probes:
        np.testing.assert_array_equal(a.probes[k], b.probes[k])
