"""Opening users' files: only regular files, never FIFOs, devices or directories.

A FIFO opened for reading blocks until a writer appears (forever, usually); a device such as
``/dev/zero`` never ends; a directory is not a file. Every reader calls :func:`regular_file`
(or :func:`open_regular`) first. Symlinks are resolved, so a link to ``/dev/zero`` is refused
like the device itself.
"""
from __future__ import annotations

import fcntl
import os
import stat
from pathlib import Path

from neurocompile.errors import NeuroCompileError
from neurocompile.utils.budget import check_alloc

_KINDS = [(stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket")]


def _kind(mode: int) -> str:
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"


def regular_file(path: str | os.PathLike, what: str = "file") -> Path:
    """``path`` (unchanged) if it names a regular file after resolving symlinks.

    Raises :class:`NeuroCompileError` naming the path: missing, a directory, a FIFO, a device...
    Never opens the file.
    """
    p = Path(path)
    try:
        st = os.stat(p)  # follows symlinks
    except FileNotFoundError:
        # the wording the readers always used (tests and users match on it)
        missing = "no such weights file" if what == "weights file" else "no such file"
        raise NeuroCompileError(missing, file=str(path)) from None
    except OSError as err:
        raise NeuroCompileError(f"cannot read the {what}: {err.strerror or err}", file=str(path)) from None
    if not stat.S_ISREG(st.st_mode):
        raise NeuroCompileError(f"the {what} is {_kind(st.st_mode)}, not a regular file", file=str(path))
    return p


def open_regular(path: str | os.PathLike, what: str = "file"):
    """Open a regular file for binary reading (``O_NONBLOCK``, checked again on the open fd).

    Race-free against a file swapped for a FIFO between the check and the open: the open does
    not block and ``fstat`` of the descriptor decides.
    """
    regular_file(path, what)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as err:
        raise NeuroCompileError(f"cannot open the {what}: {err.strerror or err}", file=str(path)) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NeuroCompileError(f"the {what} is {_kind(st.st_mode)}, not a regular file", file=str(path))
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        fcntl.fcntl(fd, fcntl.F_SETFL, flags & ~os.O_NONBLOCK)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bytes(path: str | os.PathLike, what: str = "file", limit: int | None = None) -> bytes:
    """The contents of a regular file; ``limit`` bytes at most (else an error), default: the
    memory budget."""
    with open_regular(path, what) as fh:
        size = os.fstat(fh.fileno()).st_size
        if limit is not None and size > limit:
            raise NeuroCompileError(f"the {what} is {size} bytes, more than the {limit} allowed", file=str(path))
        check_alloc(size, f"reading the {what}", file=str(path))
        try:
            return fh.read()
        except OSError as err:
            raise NeuroCompileError(f"cannot read the {what}: {err.strerror or err}", file=str(path)) from None


def read_text(path: str | os.PathLike, what: str = "file", limit: int | None = None) -> str:
    try:
        return read_bytes(path, what, limit).decode("utf-8")
    except UnicodeDecodeError as err:
        raise NeuroCompileError(f"the {what} is not UTF-8 text: {err.reason} at byte {err.start}",
                                file=str(path)) from None


def check_tree(directory: str | os.PathLike, what: str = "artifact") -> None:
    """Every entry under ``directory`` is a regular file or a directory (symlinks resolved);
    nothing in it is a FIFO, a device or a socket. Used before reading a whole artifact."""
    root = Path(directory)
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in filenames + dirnames:
            p = Path(dirpath) / name
            try:
                st = os.stat(p)
            except OSError:
                continue  # a dangling link: the reader that needs it reports it missing
            if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
                raise NeuroCompileError(f"the {what} holds {_kind(st.st_mode)}, not a regular file", file=str(p))
