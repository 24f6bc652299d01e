"""The memory budget: how much one allocation decided by an input file may take.

Files declare sizes (npy/npz headers, HDF5 dataset shapes, conv layers folded to dense matrices)
before anything is allocated. :func:`check_alloc` compares such a size with the budget and
refuses with both figures instead of letting numpy raise ``MemoryError`` or the machine swap.

The budget is ``NEUROCOMPILE_MEMORY_BUDGET`` when set: bytes, or a number with a suffix
``K``/``M``/``G``/``T`` (powers of 1024; ``KiB``, ``GB``... also accepted), e.g. ``8G``.
Otherwise half of ``MemAvailable`` in ``/proc/meminfo`` (at least 256 MiB), or 4 GiB where that
file does not exist.
"""
from __future__ import annotations

import os
import re

from neurocompile.errors import NeuroCompileError

ENV = "NEUROCOMPILE_MEMORY_BUDGET"
FALLBACK = 4 << 30
MINIMUM = 256 << 20
_SUFFIX = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(text: str) -> int:
    """``"8G"`` -> 8 GiB in bytes; raises ValueError for anything else than a size."""
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?)\s*([kKmMgGtT]?)(?:i?[bB])?\s*", text)
    if not m:
        raise ValueError(f"not a size: {text!r}")
    return int(float(m.group(1)) * _SUFFIX[m.group(2).lower()])


def _available() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def memory_budget() -> tuple[int, str]:
    """(budget in bytes, where it comes from)."""
    text = os.environ.get(ENV)
    if text:
        try:
            return parse_size(text), ENV
        except ValueError:
            raise NeuroCompileError(f"{ENV}={text!r} is not a size (bytes, or e.g. 512M, 8G)") from None
    avail = _available()
    if avail is None:
        return FALLBACK, f"default; set {ENV}"
    return max(MINIMUM, avail // 2), f"half of MemAvailable; set {ENV}"


def fmt_bytes(n: float) -> str:
    for unit, size in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} bytes"


def check_alloc(nbytes: int | float, what: str, file: str | None = None, node: str | None = None,
                budget: tuple[int, str] | None = None) -> None:
    """Refuse (NeuroCompileError) when ``nbytes`` exceed the memory budget (``budget``: a
    :func:`memory_budget` result computed once for many checks)."""
    budget, source = budget or memory_budget()
    if nbytes > budget:
        raise NeuroCompileError(f"needs {fmt_bytes(nbytes)} for {what}, budget {fmt_bytes(budget)} ({source})",
                                file=None if file is None else str(file), node=node)
