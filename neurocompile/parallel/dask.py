"""The Dask executor: the same shards on a ``dask.distributed`` cluster.

``scheduler`` is an address (``tcp://HOST:8786``), a ``distributed.Client``, or ``"dask"`` for Dask's
own configuration (``DASK_SCHEDULER_ADDRESS`` / ``scheduler-address`` in ~/.config/dask). Workers
read the artifact by its path: on more than one machine it must be on a shared filesystem. When a
worker dies the scheduler moves its shards to the others (up to Dask's
``distributed.scheduler.allowed-failures``, default 3, then ``KilledWorker``); an error raised by
a task is the user's error and is not retried, as in the local pool.
"""
from __future__ import annotations

from typing import Callable

from neurocompile.errors import NeuroCompileError

EXTRA = "pip install 'neurocompile[scale]'"


def _distributed():
    try:
        import distributed
    except ImportError:
        raise NeuroCompileError(f"--scheduler needs Dask distributed, which is not installed: {EXTRA}") from None
    return distributed


def connect(scheduler):
    """(client, owned): ``owned`` clients are closed by the caller."""
    distributed = _distributed()
    if isinstance(scheduler, distributed.Client):
        return scheduler, False
    if scheduler in ("dask", "auto", True):
        import dask

        address = dask.config.get("scheduler-address", None) or dask.config.get("scheduler_address", None)
        if not address:
            raise NeuroCompileError("--scheduler dask: Dask's configuration names no scheduler "
                                    "(set DASK_SCHEDULER_ADDRESS or give tcp://HOST:8786)")
        scheduler = address
    try:
        return distributed.Client(scheduler, timeout="20s"), True
    except (OSError, TimeoutError) as err:
        raise NeuroCompileError(f"cannot reach the Dask scheduler {scheduler}: {err}") from None


class DaskExecutor:
    name = "dask"

    def __init__(self, scheduler, retries: int = 2):
        self.scheduler = scheduler
        self.retries = retries

    def map(self, fn: Callable, jobs: dict, on_done: Callable) -> None:
        distributed = _distributed()
        client, owned = connect(self.scheduler)
        try:
            futs = {client.submit(fn, *args, pure=False): k for k, args in jobs.items()}
            seen = set()
            try:
                for f in distributed.as_completed(list(futs)):
                    k = futs[f]
                    result = f.result()
                    if k not in seen:          # each shard counted once
                        seen.add(k)
                        on_done(k, result)
                    f.release()
            finally:
                for f in futs:
                    f.cancel()
        finally:
            if owned:
                client.close()
