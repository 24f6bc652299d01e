"""Integer primitives and field checks shared by the Loihi 2 program modules.

Part of the program layer (:mod:`.program`, :mod:`.program_neurons`,
:mod:`.program_synapses`, :mod:`.program_io`): standard library and numpy
only, and no absolute imports of ``neurocompile``, because the Lava
interpreter (Python 3.10, numpy 1.26) loads these files by path (see
``lava/run_program.py``).

The widths of every Loihi state and parameter are class attributes of the
group / connection dataclasses; this module holds what they all share: the
int32 arithmetic of Lava's numpy models and the validation helpers.
"""

from __future__ import annotations

import re

import numpy as np

INPUT = "input"  # reserved source name of the external spike input
MAX_SIZE = 1 << 24  # largest group / input size (and conv dimension) accepted

#: Lava's fixed_pt models keep their state, messages and sums in int32
INT32_BITS = 32
INT32_MIN = -(1 << (INT32_BITS - 1))
INT32_MAX = (1 << (INT32_BITS - 1)) - 1

_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}$")


# ------------------------------------------------------------ integer rules
def signed_range(bits: int):
    """Inclusive range of a two's complement integer of ``bits`` bits."""
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def wrap_int32(x: np.ndarray) -> np.ndarray:
    """int64 -> int64 with int32 two's complement overflow (as numpy casts)."""
    return x.astype(np.int32).astype(np.int64)


def wrap_bits(x: np.ndarray, bits: int) -> np.ndarray:
    """Signed ``bits``-bit wrap, ``(x + h) % 2**bits - h`` with
    ``h = 2**(bits-1)`` (Lava's ``signed_clamp``)."""
    half = np.int64(1 << (bits - 1))
    return ((x + half) & np.int64((1 << bits) - 1)) - half


def abs_int32(x: np.ndarray) -> np.ndarray:
    """``np.abs`` on int32 values: ``abs(-2**31)`` stays ``-2**31``."""
    return np.where(x == INT32_MIN, INT32_MIN, np.abs(x))


def shift_exp(acc: np.ndarray, exp: int) -> np.ndarray:
    """``acc << exp`` if ``exp > 0`` else ``acc >> -exp`` (floor), int64."""
    return acc << exp if exp > 0 else acc >> (-exp)


# ------------------------------------------------------------ field checks
def _check_int(owner: str, fname: str, value, lo: int, hi: int) -> int:
    """Return ``value`` as int, or raise ValueError naming ``owner.fname``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(
            value, (int, np.integer)):
        raise ValueError(f"{owner}.{fname} must be an int, got {value!r}")
    if not lo <= int(value) <= hi:
        raise ValueError(
            f"{owner}.{fname}={int(value)} is outside [{lo}, {hi}]")
    return int(value)


def _check_int_array(owner: str, fname: str, arr, shape, lo: int, hi: int):
    """Check an integer array's shape and value range (ValueError if bad)."""
    a = np.asarray(arr)
    if a.dtype.kind not in "iu":
        raise ValueError(
            f"{owner}.{fname} must be an integer array, got dtype {a.dtype}")
    if a.shape != tuple(shape):
        raise ValueError(
            f"{owner}.{fname} has shape {a.shape}, expected {tuple(shape)}")
    if a.size and (int(a.min()) < lo or int(a.max()) > hi):
        raise ValueError(
            f"{owner}.{fname} values span [{int(a.min())}, {int(a.max())}],"
            f" outside the representable range [{lo}, {hi}]")


def _check_name(owner: str, name, allow_input: bool = False) -> None:
    """Names match ``_NAME_RE``; group names may not be ``"input"``."""
    if not isinstance(name, str) or not _NAME_RE.match(name) or (
            not allow_input and name == INPUT):
        extra = "" if allow_input else f" and not be {INPUT!r}"
        raise ValueError(f"{owner}.name must match {_NAME_RE.pattern}"
                         f"{extra}")


def _check_bool(owner: str, fname: str, value) -> None:
    """Raise ValueError unless ``value`` is a bool."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{owner}.{fname} must be a bool, got {value!r}")


__all__ = ["INPUT", "MAX_SIZE", "INT32_BITS", "INT32_MIN", "INT32_MAX",
           "signed_range", "wrap_int32", "wrap_bits", "abs_int32",
           "shift_exp"]
