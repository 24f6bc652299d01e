"""Where a command may write: never over a path that is not an earlier neurocompile output.

Every user-facing output (an artifact, a validation report, a data directory, an IR dump, a
``run`` outputs file, an encoded input, a NIR file) goes through :func:`claim_output` before
anything is written, and then through :func:`~neurocompile.utils.atomic.atomic_path`, which
moves the finished output into place in one step.

The rules, in order:

* an empty path, ``/``, the home directory, the current directory or any directory above it
  are refused;
* a path that is, or contains, one of the command's inputs is refused (``compile
  models/net.nir -o models`` would delete the model);
* a symbolic link is refused (it points at somebody else's file);
* an absent path, or an empty directory, may be written;
* an existing path is replaced only when it holds an earlier output of the same kind,
  recognised by its marker (an artifact's ``manifest.json``, a report's ``report.json``, the
  marker file of a data directory or IR dump, the marker array of an outputs file, the root
  attribute ``neurocompile_format`` of a NIR or netx file);
  ``force=True`` also replaces an earlier neurocompile output of another kind;
* anything else (a user's directory, a foreign file) is refused with the reason.
"""
from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

from neurocompile.errors import NeuroCompileError

#: marker array in every outputs ``.npz`` that ``run`` writes
NPZ_MARKER = "neurocompile_format"

#: kinds of directory output -> (marker file, expected ``format`` value)
DIR_KINDS = {
    "artifact": ("manifest.json", "neurocompile.artifact"),
    "report": ("report.json", "neurocompile.report"),
    "data": ("neurocompile-data.json", "neurocompile.data"),
    "ir-dump": ("neurocompile-ir.json", "neurocompile.ir-dump"),
}
#: kinds of file output -> format recorded inside the file (None: the file cannot carry a marker)
FILE_KINDS = {"outputs": "neurocompile.outputs", "array": None, "nir": "neurocompile.nir",
              "netx": "neurocompile.netx"}
#: root attribute of the HDF5 files neurocompile writes (NIR, netx) naming their kind
HDF5_MARKER = "neurocompile_format"
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def mark_hdf5(path, kind: str) -> None:
    """Record ``kind`` in the root attributes of the HDF5 file at ``path`` (before it is moved
    into place), so that a later command may replace it."""
    import h5py

    with h5py.File(path, "a") as f:
        f.attrs[HDF5_MARKER] = FILE_KINDS[kind]


def _hdf5_kind(path: Path) -> str | None:
    """The kind recorded by :func:`mark_hdf5`, reading only the root attributes (no links are
    followed, no data read); None for other files or without h5py."""
    try:
        with open(path, "rb") as fh:
            if fh.read(8) != _HDF5_SIGNATURE:
                return None
        import h5py

        with h5py.File(path, "r") as f:
            fmt = f.attrs.get(HDF5_MARKER)
    except Exception:  # noqa: BLE001 - unreadable or not ours: not a neurocompile output
        return None
    fmt = fmt.decode() if isinstance(fmt, bytes) else fmt
    return next((k for k, v in FILE_KINDS.items() if v is not None and v == fmt and k in ("nir", "netx")), None)


def marker(kind: str) -> tuple[str, dict]:
    """The marker file name and content that identify a directory output of ``kind``."""
    name, fmt = DIR_KINDS[kind]
    return name, {"format": fmt}


def output_kind(path: Path) -> str | None:
    """The kind of neurocompile output at ``path``, or None when it is not one."""
    try:
        if path.is_symlink():
            return None
        if path.is_dir():
            for kind, (name, fmt) in DIR_KINDS.items():
                f = path / name
                if f.is_file() and not f.is_symlink() and f.stat().st_size < 64 << 20:
                    try:
                        doc = json.loads(f.read_text())
                    except (ValueError, OSError, UnicodeDecodeError):
                        continue
                    if isinstance(doc, dict) and doc.get("format") == fmt:
                        return kind
            return None
        if path.is_file() and path.suffix == ".npz" and zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                if f"{NPZ_MARKER}.npy" in z.namelist():
                    return "outputs"
        if path.is_file() and path.stat().st_size < 4 << 30:
            return _hdf5_kind(path)
    except OSError:
        return None
    return None


def _is_within(inner: Path, outer: Path) -> bool:
    return inner == outer or outer in inner.parents


def _input_file(inp) -> Path | None:
    """The file or directory an input names (``file.py:factory`` names ``file.py``), resolved."""
    if inp is None:
        return None
    text = os.fspath(inp)
    for cand in (text, text.rsplit(":", 1)[0]):
        try:
            if cand and Path(cand).exists():
                return Path(cand).resolve()
        except (OSError, RuntimeError):
            return None
    return None


def claim_output(path, kind: str, *, force: bool = False, inputs=()) -> Path:
    """Check that ``path`` may receive an output of ``kind``; return it as a Path.

    Raises :class:`NeuroCompileError` (naming the path and the reason) before anything is
    written. ``inputs`` are paths the command reads; the output may not be or contain one.
    """
    if kind not in DIR_KINDS and kind not in FILE_KINDS:
        raise ValueError(f"unknown output kind {kind!r}")
    text = os.fspath(path) if path is not None else ""
    if not str(text).strip():
        raise NeuroCompileError("the output path is empty")
    p = Path(text)
    where = str(text)
    try:
        real = p.resolve()
        cwd = Path.cwd().resolve()
    except (OSError, RuntimeError) as err:
        raise NeuroCompileError(f"cannot resolve the output path: {err}", file=where) from None
    try:
        home = Path.home().resolve()
    except (OSError, RuntimeError, KeyError):
        home = None
    if real == Path(real.anchor):
        raise NeuroCompileError("refusing to write over the file-system root", file=where)
    if _is_within(cwd, real):
        raise NeuroCompileError("refusing to write over the current directory or a directory above it; "
                                "name a new directory such as build/out", file=where)
    if home is not None and real == home:
        raise NeuroCompileError("refusing to write over the home directory", file=where)
    for inp in inputs:
        src = _input_file(inp)
        if src is not None and _is_within(src, real):
            raise NeuroCompileError(f"refusing to write over the input '{inp}'; choose another output path",
                                    file=where)
    if p.is_symlink():
        raise NeuroCompileError("is a symbolic link; refusing to replace what it points at", file=where)
    if not p.exists():
        return p
    is_dir_kind = kind in DIR_KINDS
    if is_dir_kind and not p.is_dir():
        raise NeuroCompileError(f"exists and is not a directory; a {kind} is a directory", file=where)
    if not is_dir_kind and p.is_dir():
        raise NeuroCompileError(f"is a directory; the {kind} output is a file", file=where)
    if not is_dir_kind and not p.is_file():
        raise NeuroCompileError("exists and is not a regular file (a device or FIFO?)", file=where)
    if is_dir_kind:
        try:
            empty = not any(os.scandir(p))
        except OSError as err:
            raise NeuroCompileError(f"cannot read the directory: {err.strerror}", file=where) from None
        if empty:
            return p
    found = output_kind(p)
    if found == kind or (force and found is not None):
        return p
    if found is not None:
        raise NeuroCompileError(f"holds a neurocompile {found}, not a {kind}; pass --force to replace it",
                                file=where)
    if is_dir_kind:
        raise NeuroCompileError(f"exists and is not a neurocompile {kind}; refusing to replace a directory "
                                "that is not ours: remove it or choose another path", file=where)
    raise NeuroCompileError("exists and is not a neurocompile output; refusing to replace it: "
                            "remove it or choose another path", file=where)
