"""Git LFS pointer files in place of a model: one clear error instead of a format error.

A repository that keeps models in Git LFS checks out a ~130-byte text file
(``version https://git-lfs.github.com/spec/v1`` / ``oid sha256:...`` / ``size N``) until
``git lfs pull`` fetches the data; HDF5 and ONNX readers then fail with messages such as
``file signature not found``.
"""
from __future__ import annotations

import os
from pathlib import Path

from neurocompile.errors import NeuroCompileError

LFS_SIGNATURE = b"version https://git-lfs.github.com/spec/v1"


def is_lfs_pointer(path: str | os.PathLike) -> bool:
    """True when ``path`` is a regular file starting with the Git LFS pointer line."""
    try:
        p = Path(path)
        if not p.is_file() or p.stat().st_size > 1024:
            return False
        with open(p, "rb") as fh:
            return fh.read(len(LFS_SIGNATURE)) == LFS_SIGNATURE
    except OSError:
        return False


def refuse_lfs_pointer(path: str | os.PathLike) -> None:
    """Raise a one-line error naming the file if it is a Git LFS pointer."""
    if not is_lfs_pointer(path):
        return
    size = ""
    try:
        for line in Path(path).read_text(errors="replace").splitlines():
            if line.startswith("size "):
                size = f" of a {line[5:].strip()}-byte file"
    except OSError:
        pass
    raise NeuroCompileError(f"this is a Git LFS pointer{size}, not the model itself: fetch the data with "
                            f"`git lfs pull` (or download the real file)", file=str(path))
