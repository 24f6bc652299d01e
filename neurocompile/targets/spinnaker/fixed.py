"""The fixed-point arithmetic of sPyNNaker 7.x neuron cores, reproduced bit for bit in numpy.

Every value the ARM968 keeps is a 32-bit word. ``accum`` (s16.15, "S1615") is a signed word
with 15 fractional bits; ``unsigned long fract`` (u0.32, "U032") is an unsigned word with 32
fractional bits. Here a word is an ``int64`` numpy array holding the integer the word encodes
(its "raw" value); every function wraps its result to 32 bits the way the ARM code does.

Where each operation comes from (file names are sPyNNaker's ``neural_modelling/src`` and
spinn_common's ``include``/``src``; checked against the disassembly of the ``IF_curr_exp.aplx``
and ``IF_curr_delta.aplx`` binaries shipped in the sPyNNaker 1!7.4.1 wheel):

* :func:`mul_k` -- GCC's ``accum * accum`` on ARM: one ``smull`` (signed 32x32->64) and the
  middle word ``(hi << 17) | (lo >> 15)``, i.e. ``floor(a*b / 2**15)`` wrapped to 32 bits. No
  rounding and no saturation. Used by the LIF closed form and the delta input scaling.
* :func:`decay_s1615` -- ``neuron/decay.h``: signed accum times unsigned fract, the high word of
  the 64-bit product, ``floor(x*d / 2**32)``.
* :func:`kdivk` / :func:`kdivui` -- ``common/maths-util.h``: 64-bit unsigned division of the
  raw values, ``(a << 15) // b`` and ``a // n``, truncated to 32 bits.
* :func:`expk` / :func:`expulr` -- spinn_common ``stdfix-exp.c``. A table of ``2**32 e**k``
  (k = -13..12) gives the integer part, a table of ``2**32 (1 - e**(-j/16))`` the next four
  fractional bits and a fitted quadratic the last eleven; each correction is applied with
  ``scale64``, which rounds the low product up when its low word is >= 0x7FFFFFFF. ``expk``
  keeps bits 17..48 of that 64-bit result (an accum, truncated); ``expulr`` keeps the low
  32 bits (a u0.32, so ``expulr(0)`` is 0 because e**0 = 2**32 does not fit).
* :func:`s1615_from_host` -- the host side, spinn_front_end_common ``DataType.S1615``:
  ``round(Decimal(str(value)) * 32768)``, i.e. the decimal text of the float rounded half to even.
"""
from __future__ import annotations

from decimal import Decimal, getcontext

import numpy as np

ONE = 1 << 15                     # 1.0 as a raw accum
M32 = (1 << 32) - 1
INT32_MAX = (1 << 31) - 1
S1615_MIN, S1615_MAX = Decimal("-65536"), Decimal("65535.999969482421875")
U032_ONE = M32                    # 1.0ulr saturates to the largest u0.32 word


def wrap32(x) -> np.ndarray:
    """Two's complement wrap of int64 values to the int32 range."""
    x = np.asarray(x, dtype=np.int64)
    return ((x + (1 << 31)) & M32) - (1 << 31)


def mul_k(a, b) -> np.ndarray:
    """``accum * accum`` as GCC compiles it for the ARM968: floor(a*b / 2**15), wrapped."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    return wrap32((a * b) >> 15)


def decay_s1615(x, d) -> np.ndarray:
    """``decay_s1615(x, d)`` (neuron/decay.h): floor(x * d / 2**32) with d an unsigned u0.32."""
    x = np.asarray(x, dtype=np.int64)
    d = np.asarray(d, dtype=np.int64)      # < 2**32, so |x*d| < 2**63 fits
    return (x * d) >> 32


def kdivk(a, b) -> np.ndarray:
    """``kdivk`` (common/maths-util.h) for positive accums: (a << 15) // b, truncated to 32 bits."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    if np.any(a < 0) or np.any(b <= 0):
        raise ValueError("kdivk is only used here with a >= 0 and b > 0")
    return wrap32(((a << 15) // b) & M32)


def kdivui(a, n: int) -> np.ndarray:
    """``kdivui`` (common/maths-util.h): a // n for a >= 0."""
    return np.asarray(a, dtype=np.int64) // int(n)


def ceil_accum(x) -> np.ndarray:
    """``lif_ceil_accum`` (neuron_model_lif_impl.h): integer part, plus one if any fraction."""
    x = np.asarray(x, dtype=np.int64)
    return (x >> 15) + ((x & 0x7FFF) > 0)


# -- exponential (spinn_common stdfix-exp.c) ---------------------------------------------------
def _tables():
    getcontext().prec = 60
    two32 = Decimal(1 << 32)
    hi = [int((two32 * Decimal(k - 13).exp()).to_integral_value()) for k in range(26)]
    mid = [int((two32 * (1 - (Decimal(-j) / 16).exp())).to_integral_value()) for j in range(16)]
    return np.array(hi, dtype=np.uint64), np.array(mid, dtype=np.uint64)


_EXP_HI, _EXPM1_MID = _tables()
# the three coefficients of the library's fitted quadratic for 1 - exp(-y / 2**47), y < 2**28
_SERIES = (np.uint64(5294), np.uint64(4293434720), np.uint64(2081624032))
_N_MAX, _N_MIN = 363408, -340695   # outside these expk/expulr saturate


def _coef_mult(c, x):
    return (c * x) >> np.uint64(32)


def _exp_series(y):
    m = np.uint64(M32)
    t = (_SERIES[1] - _coef_mult(_SERIES[2], y)) & m
    t = _coef_mult(t, y)
    return (t + _SERIES[0]) & m


def _scale64(x, y):
    """x * y / 2**32 with y a u0.32; the low partial product rounded as ``round64`` does."""
    m = np.uint64(M32)
    p = (x & m) * y
    r = (p >> np.uint64(32)) + ((p & m) >= np.uint64(0x7FFFFFFF)).astype(np.uint64)
    return r + (x >> np.uint64(32)) * y


def _expi64(n):
    """2**32 * e**(n / 2**15) as the library computes it (uint64), n in [_N_MIN, _N_MAX]."""
    n = np.asarray(n, dtype=np.int64)
    z = n >> 15
    f = n - (z << 15)
    frac = f > 0
    z = np.where(frac, z + 1, z)
    g = np.where(frac, 32768 - f, 0).astype(np.uint64)
    tmp = _EXP_HI[13 + z]
    corr1 = _scale64(tmp, _EXPM1_MID[(g >> np.uint64(11)).astype(np.int64)])
    t1 = tmp - corr1
    y = (g & np.uint64(0x7FF)) << np.uint64(17)
    t2 = t1 - _scale64(t1, _exp_series(y))
    return np.where(frac, t2, tmp)


def expk(x) -> np.ndarray:
    """``expk``: e**x for a raw accum x, as a raw accum (truncated)."""
    n = np.asarray(x, dtype=np.int64)
    safe = np.clip(n, _N_MIN, _N_MAX)
    r = (_expi64(safe) >> np.uint64(17)).astype(np.int64) & M32
    r = np.where(n > _N_MAX, INT32_MAX, np.where(n < _N_MIN, 0, r))
    return r.astype(np.int64)


def expulr(x) -> np.ndarray:
    """``expulr``: e**x for a raw accum x <= 0, as a raw u0.32 (low 32 bits of the result)."""
    n = np.asarray(x, dtype=np.int64)
    safe = np.clip(n, _N_MIN, _N_MAX)
    r = (_expi64(safe) & np.uint64(M32)).astype(np.int64)
    r = np.where(n > _N_MAX, INT32_MAX, np.where(n < _N_MIN, 0, r))
    return r.astype(np.int64)


# -- what the cores compute once at start-up from the raw parameters ---------------------------
def lif_init(tau_m, cm, tau_refrac, timestep) -> dict[str, np.ndarray]:
    """``neuron_model_initialise`` (models/neuron_model_lif_impl.h), one time step per tick.

    ``R_membrane = kdivk(tau_m, c_m)``, ``exp_TC = expk(-kdivk(ts, tau_m))``,
    ``T_refract = ceil(kdivk(T_refract_ms, ts))`` with ``ts = kdivui(time_step, 1)``.
    """
    ts = kdivui(timestep, 1)
    return {"R": kdivk(tau_m, cm),
            "exp_tc": expk(wrap32(-kdivk(ts, tau_m))),
            "t_refract": ceil_accum(kdivk(tau_refrac, ts))}


def exp_synapse_init(tau, timestep) -> tuple[np.ndarray, np.ndarray]:
    """``decay_and_init`` (synapse_types/exp_synapse_utils.h): per-tick decay and input factor.

    ``decay = expulr(-kdivk(ts, tau))`` and ``init = (kdivk(tau, ts) * (1.0ulr - decay)) >> 15``
    where ``1.0ulr`` is 0xFFFFFFFF; both are u0.32.
    """
    ts = kdivui(timestep, 1)
    decay = expulr(wrap32(-kdivk(ts, tau)))
    inv = np.int64(U032_ONE) - decay
    tau_over_ts = kdivk(tau, ts).astype(np.uint64)
    init = ((tau_over_ts * inv.astype(np.uint64)) >> np.uint64(15)) & np.uint64(M32)
    return decay, init.astype(np.int64)


def delta_input_scale(timestep) -> np.ndarray:
    """``input_type_initialise`` (input_types/input_type_delta.h): ``kdivk(1.0, ts)``."""
    return kdivk(ONE, kdivui(timestep, 1))


# -- host side ----------------------------------------------------------------------------------
def s1615_from_host(values) -> np.ndarray:
    """Raw S1615 words the sPyNNaker host writes for float parameters (round half to even of the
    decimal text of each float, as ``DataType.S1615.encode_as_int`` does); ValueError if out of
    range."""
    arr = np.asarray(values, dtype=np.float64)
    out = np.empty(arr.shape, dtype=np.int64)
    flat = out.reshape(-1)
    cache: dict[float, int] = {}
    for k, v in enumerate(arr.reshape(-1).tolist()):
        raw = cache.get(v)
        if raw is None:
            d = Decimal(str(v))
            if not S1615_MIN <= d <= S1615_MAX:
                raise ValueError(f"{v} does not fit an S1615 accum (-65536 .. 65535.99997)")
            raw = cache[v] = int(round(d * 32768))
        flat[k] = raw
    return out


def s1615_to_float(raw) -> np.ndarray:
    """The float value of raw accums (exact: every accum is a float64)."""
    return np.asarray(raw, dtype=np.float64) / ONE


def host_float_for(raw) -> np.ndarray:
    """A float the host converts back to exactly ``raw`` (raw / 32768 is exact in float64 and
    its shortest decimal text rounds back to the same word)."""
    return s1615_to_float(raw)
