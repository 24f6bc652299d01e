"""Splitting an input along the batch axis, merging shard results, and the hashes the cache uses."""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np

from neurocompile.errors import NeuroCompileError

#: result keys with this prefix hold a per-shard scalar that is summed over shards
SUM = "+"
#: result keys with this prefix hold a value every shard must agree on (kept once)
SAME = "="


def shard_bounds(batch: int, n_shards: int) -> list[tuple[int, int]]:
    """``n_shards`` contiguous [lo, hi) ranges covering ``range(batch)``, sizes differing by <= 1."""
    n = max(1, min(int(n_shards), batch))
    base, extra = divmod(batch, n)
    out, lo = [], 0
    for k in range(n):
        hi = lo + base + (1 if k < extra else 0)
        out.append((lo, hi))
        lo = hi
    return out


def n_shards_for(batch: int, workers: int, shard_size: int | None = None) -> int:
    """Default: four shards per worker (balance and small retries), one when there is one worker."""
    if shard_size:
        return max(1, math.ceil(batch / int(shard_size)))
    return 1 if workers <= 1 else min(batch, 4 * workers)


def take(xs: dict[str, np.ndarray], lo: int, hi: int) -> dict[str, np.ndarray]:
    return {k: np.ascontiguousarray(v[:, lo:hi]) for k, v in xs.items()}


def merge(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Shard results in shard order -> one result: arrays joined on axis 1 (the batch axis)."""
    keys = list(parts[0])
    for p in parts[1:]:
        if list(p) != keys:
            raise NeuroCompileError(f"shards returned different results: {sorted(keys)} vs {sorted(p)}")
    out = {}
    for k in keys:
        if k.startswith(SUM):
            out[k] = np.asarray(sum(np.asarray(p[k]) for p in parts))
        elif k.startswith(SAME):
            out[k] = parts[0][k]
        else:
            out[k] = np.concatenate([p[k] for p in parts], axis=1)
    return out


def _update_array(h, name: str, arr: np.ndarray) -> None:
    arr = np.ascontiguousarray(arr)
    h.update(json.dumps([name, arr.dtype.str, list(arr.shape)]).encode())
    h.update(arr.tobytes())


def array_hash(arrays: dict[str, np.ndarray], extra=None) -> str:
    """sha256 of names, dtypes, shapes and bytes (and ``extra``, JSON-encoded)."""
    h = hashlib.sha256()
    h.update(json.dumps(extra, sort_keys=True, default=str).encode())
    for k in sorted(arrays):
        _update_array(h, k, np.asarray(arrays[k]))
    return h.hexdigest()


def artifact_hash(path: str | Path) -> str:
    """sha256 of an artifact directory's content: file names and bytes, npz files by their arrays
    (a re-saved in-memory artifact gets the same hash though zip timestamps differ)."""
    from neurocompile.utils.npfiles import load_npz

    root = Path(path)
    h = hashlib.sha256()
    for f in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = f.relative_to(root).as_posix()
        if rel.startswith(".") or "/." in rel:
            continue
        h.update(rel.encode() + b"\0")
        if f.suffix == ".npz":
            for k, v in sorted(load_npz(f).items()):
                _update_array(h, k, v)
        elif f.name == "manifest.json":   # the version string changes with every release, not the program
            doc = json.loads(f.read_text())
            doc.pop("neurocompile", None)
            h.update(json.dumps(doc, sort_keys=True).encode())
        else:
            h.update(f.read_bytes())
    return h.hexdigest()
