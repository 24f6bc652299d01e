"""The embedded executor: a pool of local worker processes (spawn context: numba, BLAS threads and
fork do not mix). A worker that dies has its shard (and every shard the broken pool still held)
run again on a fresh pool; an error raised by a task is the user's error and is not retried."""
from __future__ import annotations

import multiprocessing as mp
import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Callable

from neurocompile.errors import NeuroCompileError


class InlineExecutor:
    """One process, no pool: shards run here in order (``workers=1``)."""

    name = "inline"

    def map(self, fn: Callable, jobs: dict, on_done: Callable) -> None:
        for k, args in jobs.items():
            on_done(k, fn(*args))


def _init_worker(threads: int) -> None:
    """Each worker's share of the cores for the emulator's own threads (unless the user set it)."""
    os.environ.setdefault("NEUROCOMPILE_THREADS", str(threads))


class LocalPool:
    name = "local pool"

    def __init__(self, workers: int, retries: int = 2):
        self.workers = max(1, int(workers))
        self.retries = retries

    def map(self, fn: Callable, jobs: dict, on_done: Callable) -> None:
        pending = dict(jobs)
        attempts = dict.fromkeys(jobs, 0)
        ctx = mp.get_context("spawn")
        while pending:
            n = min(self.workers, len(pending))
            threads = max(1, (os.cpu_count() or 1) // n)
            ex = ProcessPoolExecutor(max_workers=n, mp_context=ctx, initializer=_init_worker, initargs=(threads,))
            broken = False
            try:
                futs = {ex.submit(fn, *args): k for k, args in pending.items()}
                waiting = set(futs)
                while waiting:
                    done, waiting = wait(waiting, return_when=FIRST_COMPLETED)
                    for f in done:
                        k = futs[f]
                        try:
                            result = f.result()
                        except BrokenProcessPool:
                            broken = True
                            continue
                        if k in pending:
                            del pending[k]
                            on_done(k, result)
            finally:
                ex.shutdown(wait=not broken, cancel_futures=True)
            if broken:
                for k in pending:
                    attempts[k] += 1
                    if attempts[k] > self.retries:
                        raise NeuroCompileError(f"a worker process died running shard {k} "
                                                f"{attempts[k]} times; giving up")
