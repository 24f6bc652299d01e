"""Finished shards on disk: ``<dir>/<artifact hash>/<shard key>.npz``, written atomically, read
without pickles (``allow_pickle=False``), so a rerun after an interruption resumes.

The default directory is ``$NEUROCOMPILE_CACHE`` or ``~/.cache/neurocompile/shards`` (under
``$XDG_CACHE_HOME`` when set). Keys are sha256 hashes of the artifact's content and of the shard
(its input arrays and the task with its arguments): a changed model or input never hits.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from neurocompile.utils.atomic import write_npz


def default_cache_dir() -> Path:
    if os.environ.get("NEUROCOMPILE_CACHE"):
        return Path(os.environ["NEUROCOMPILE_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "neurocompile" / "shards"


class ShardCache:
    def __init__(self, directory: str | Path | None = None):
        self.dir = Path(directory) if directory is not None else default_cache_dir()

    def _path(self, artifact_key: str, shard_key: str) -> Path:
        return self.dir / artifact_key[:32] / f"{shard_key[:40]}.npz"

    def get(self, artifact_key: str, shard_key: str) -> dict[str, np.ndarray] | None:
        p = self._path(artifact_key, shard_key)
        if not p.is_file():
            return None
        try:
            with np.load(p, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except (OSError, ValueError, KeyError, EOFError):
            return None                     # a damaged entry is recomputed (and rewritten)

    def put(self, artifact_key: str, shard_key: str, arrays: dict[str, np.ndarray]) -> None:
        write_npz(self._path(artifact_key, shard_key), arrays)


def open_cache(cache) -> ShardCache | None:
    """``cache``: None/False (no cache), True or "default" (the default dir), a path, or a ShardCache."""
    if cache is None or cache is False or (isinstance(cache, str) and cache.lower() in ("none", "off", "")):
        return None
    if isinstance(cache, ShardCache):
        return cache
    if cache is True or cache == "default":
        return ShardCache()
    return ShardCache(cache)
