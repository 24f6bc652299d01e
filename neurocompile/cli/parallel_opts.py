"""``--workers``, ``--scheduler``, ``--cache``, ``--shard-size`` for ``run`` and ``validate``."""
from __future__ import annotations

import sys

import click

#: with --workers auto, batches at least this large run on a pool of the machine's cores
AUTO_MIN_BATCH = 256


def parallel_options(f):
    f = click.option("--shard-size", type=click.IntRange(min=1), help=(
        "Samples per shard (default: four shards per worker)."))(f)
    f = click.option("--cache", "cache", metavar="DIR|none", help=(
        "Keep finished shards here so that a rerun resumes (default with workers: "
        "~/.cache/neurocompile/shards; 'none': off)."))(f)
    f = click.option("--scheduler", metavar="ADDRESS", help=(
        "Run the shards on a Dask cluster: tcp://HOST:8786, or 'dask' for Dask's own configuration "
        "(needs pip install 'neurocompile[scale]'; the artifact must be on a filesystem the workers see)."))(f)
    f = click.option("--workers", "-j", default="auto", show_default=True, metavar="N|auto", help=(
        "Local worker processes; the input is split along the batch axis and merged (bit-identical). "
        f"auto: the machine's cores for batches of {AUTO_MIN_BATCH}+ samples, else 1."))(f)
    return f


def parallel_settings(workers: str, scheduler: str | None, cache: str | None, shard_size: int | None,
                      batch: int) -> dict | None:
    """Keyword arguments for ``run_sharded``/``validate``, or None to run in this process as before."""
    from neurocompile.errors import NeuroCompileError
    from neurocompile.parallel.run import default_workers

    if str(workers).lower() == "auto":
        n = default_workers() if batch >= AUTO_MIN_BATCH else 1
    else:
        try:
            n = int(workers)
        except ValueError:
            raise NeuroCompileError(f"--workers takes a number or 'auto', got '{workers}'") from None
        if n < 1:
            raise NeuroCompileError(f"--workers must be at least 1, got {n}")
    sharded = n > 1 or scheduler is not None
    if not sharded and cache is None and shard_size is None:
        return None
    return {"workers": n, "scheduler": scheduler, "shard_size": shard_size,
            "cache": (True if sharded else None) if cache is None else cache}


def batch_of(x) -> int:
    import numpy as np

    return int(np.shape(x)[1]) if np.ndim(x) >= 3 else 1


def run_parallel(art, x, probe, on, settings: dict):
    """``run_sharded`` with a progress bar over samples."""
    from neurocompile.parallel import run_sharded

    with click.progressbar(length=batch_of(x), label="running (samples)", file=sys.stderr) as bar:
        last = [0]

        def progress(done, total):
            bar.update(done - last[0])
            last[0] = done

        return run_sharded(art, x, probes=probe, record_spikes=True, on=on, progress=progress, **settings)


def validate_progress(target: str, done: int, total: int) -> None:
    click.echo(f"  {target}: {done}/{total} samples", err=True)
