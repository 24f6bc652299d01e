"""Atomic writes: outputs appear whole or not at all.

Whether a path may be written at all is decided first, by
:func:`neurocompile.utils.outputs.claim_output`; this module only does the write.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from neurocompile.errors import NeuroCompileError
from neurocompile.utils.npfiles import load_npz as _load


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; on success move it into place with os.replace.

    Works for files and directories (an existing directory at ``path`` is replaced: callers
    check with ``claim_output`` that it is an earlier output of theirs). Failures to create or
    move are reported as :class:`NeuroCompileError` naming the path.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp_dir = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    except OSError as err:
        raise NeuroCompileError(f"cannot write here: {err.strerror or err}", file=str(path)) from None
    tmp = tmp_dir / path.name
    try:
        yield tmp
        try:
            if path.is_dir() and not path.is_symlink() and tmp.is_dir():
                old = tmp_dir / f".old-{os.getpid()}"
                os.replace(path, old)      # the old output moves into our temporary directory
                os.replace(tmp, path)
            else:
                os.replace(tmp, path)
        except OSError as err:
            raise NeuroCompileError(f"cannot move the output into place: {err.strerror or err}",
                                    file=str(path)) from None
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def write_bytes(path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json(path, obj) -> None:
    write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


def write_npz(path, arrays: dict[str, np.ndarray]) -> None:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    write_bytes(path, buf.getvalue())


def load_npz(path) -> dict[str, np.ndarray]:
    """Load an npz without pickles, headers checked against the file and the memory budget
    (see :mod:`neurocompile.utils.npfiles`); errors are NeuroCompileErrors naming the file."""
    return _load(path)
