"""Reading .npy / .npz files without trusting them.

Headers are read first (``numpy.lib.format``), so a file that declares a huge array, an object
(pickled) dtype or more data than it holds is refused before anything is allocated: the declared
size is checked against the file's real size and against the memory budget
(:mod:`neurocompile.utils.budget`). Every failure is a :class:`NeuroCompileError` naming the file
(and the array); corrupt and truncated files never escape as ``BadZipFile``/``EOFError``.
"""
from __future__ import annotations

import io
import math
import os
import zipfile
import zlib
from pathlib import Path

import numpy as np

from neurocompile.errors import NeuroCompileError
from neurocompile.utils.budget import check_alloc, memory_budget
from neurocompile.utils.files import open_regular

MAX_MEMBERS = 100_000
_fmt = np.lib.format


def _header(fh, where: str, file: str):
    """(shape, fortran_order, dtype, header length) of the npy stream at ``fh``'s position."""
    start = fh.tell() if fh.seekable() else 0
    try:
        version = _fmt.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = _fmt.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, fortran, dtype = _fmt.read_array_header_2_0(fh)
        else:
            shape, fortran, dtype = _fmt._read_array_header(fh, version)
    except Exception as err:  # noqa: BLE001 - numpy raises ValueError/EOFError/SyntaxError...
        msg = " ".join(str(err).split())[:200]
        raise NeuroCompileError(f"{where}is not a valid .npy array (bad header: {msg})", file=file) from None
    if dtype.hasobject:
        raise NeuroCompileError(f"{where}holds Python objects (a pickle), which are never loaded", file=file)
    if not all(isinstance(s, int) and s >= 0 for s in shape):
        raise NeuroCompileError(f"{where}declares an invalid shape {shape}", file=file)
    hlen = (fh.tell() - start) if fh.seekable() else None
    return tuple(shape), fortran, dtype, hlen


def _declared(shape, dtype) -> int:
    return math.prod(shape) * dtype.itemsize


def _read(fh, shape, fortran, dtype, where: str, file: str) -> np.ndarray:
    count = math.prod(shape)
    arr = np.empty(count, dtype=dtype)
    nbytes = count * dtype.itemsize
    if nbytes:
        buf = memoryview(arr.view(np.uint8)).cast("B")
        got = 0
        try:
            while got < nbytes:
                n = fh.readinto(buf[got:])
                if not n:
                    break
                got += n
        except (OSError, zipfile.BadZipFile, EOFError, ValueError) as err:
            raise NeuroCompileError(f"{where}cannot be read (corrupt: {err})", file=file) from None
        if got != nbytes:
            raise NeuroCompileError(f"{where}is truncated: {got} of {nbytes} bytes", file=file)
    if fortran:
        return arr.reshape(shape[::-1]).transpose()
    return arr.reshape(shape)


def load_npy(path, what: str = "array file") -> np.ndarray:
    """One array from a .npy file."""
    file = str(path)
    with open_regular(path, what) as fh:
        size = os.fstat(fh.fileno()).st_size
        shape, fortran, dtype, hlen = _header(fh, "", file)
        need = _declared(shape, dtype)
        if need > size - hlen:
            raise NeuroCompileError(f"is truncated: the header declares {need} bytes of data, the file holds "
                                    f"{size - hlen}", file=file)
        check_alloc(need, f"the array {shape} {dtype}", file=file)
        return _read(fh, shape, fortran, dtype, "", file)


def _open_zip(fh, file: str) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(fh)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as err:
        raise NeuroCompileError(f"is not a valid .npz (zip) file: {err}", file=file) from None


def _members(zf: zipfile.ZipFile, file: str) -> dict[str, zipfile.ZipInfo]:
    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS:
        raise NeuroCompileError(f"holds {len(infos)} members (at most {MAX_MEMBERS} are read)", file=file)
    out = {}
    for info in infos:
        if info.is_dir():
            continue
        name = info.filename
        if not name.endswith(".npy"):
            raise NeuroCompileError(f"member '{name}' is not a .npy array", file=file)
        out[name[:-4]] = info
    return out


def _npz(zf: zipfile.ZipFile, file: str, keys, load: bool) -> dict:
    """Members of an npz (all, or ``keys``): each header is checked against the member's size
    and the running total against the memory budget before the member's data is read.
    -> {key: array} (``load``) or {key: (shape, fortran, dtype)}."""
    members = _members(zf, file)
    budget = memory_budget()
    out, total = {}, 0
    for key in members if keys is None else keys:
        info = members[key]
        where = f"array '{key}' "
        try:
            with zf.open(info) as m:
                shape, fortran, dtype, _ = _header(m, where, file)
                hlen = m.tell()
                need = _declared(shape, dtype)
                if need > info.file_size - hlen:
                    raise NeuroCompileError(f"{where}is truncated or inconsistent: the header declares {need} "
                                            f"bytes, the member holds {max(0, info.file_size - hlen)}", file=file)
                total += need
                check_alloc(total, f"the arrays of the npz (up to '{key}' {shape} {dtype})", file=file,
                            budget=budget)
                out[key] = _read(m, shape, fortran, dtype, where, file) if load else (shape, fortran, dtype)
        except NeuroCompileError:
            raise
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, RuntimeError,
                zlib.error) as err:
            raise NeuroCompileError(f"{where}cannot be read (corrupt npz: {err})", file=file) from None
    return out


def scan_npz(zf: zipfile.ZipFile, file: str, keys=None) -> dict[str, tuple]:
    """Headers only, checked; nothing is loaded. -> {key: (shape, fortran, dtype)}"""
    return _npz(zf, file, keys, load=False)


def read_npz(source, file: str, keys=None) -> dict[str, np.ndarray]:
    """Arrays of an npz (a file object or bytes), headers checked first."""
    if isinstance(source, (bytes, bytearray)):
        source = io.BytesIO(source)
    with _open_zip(source, file) as zf:
        return _npz(zf, file, keys, load=True)


def npz_keys(path, what: str = "npz file") -> list[str]:
    with open_regular(path, what) as fh:
        with _open_zip(fh, str(path)) as zf:
            return list(_members(zf, str(path)))


def load_npz(path, what: str = "npz file", keys=None) -> dict[str, np.ndarray]:
    """Arrays of an .npz file (all, or ``keys``)."""
    with open_regular(path, what) as fh:
        return read_npz(fh, str(path), keys)


def check_npz_file(path, what: str = "npz file") -> None:
    """Headers only (for files another module loads itself)."""
    with open_regular(path, what) as fh:
        with _open_zip(fh, str(path)) as zf:
            scan_npz(zf, str(path))


def is_npz(path) -> bool:
    with open_regular(path, "array file") as fh:
        return fh.read(4) == b"PK\x03\x04" or (Path(path).suffix == ".npz")
