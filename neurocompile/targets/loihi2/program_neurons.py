"""Neuron groups of the Loihi 2 program format and their integer rules.

:class:`LoihiLIF` (Lava ``PyLifModelBitAcc``) and :class:`LoihiSigmaDelta`
(Lava ``PySigmaDeltaModelFixed``): the widths of their state and parameters
are class attributes, and the functions below are the one definition of
their per-step integer arithmetic.  The numpy emulator calls them directly;
the numba kernel (:mod:`.emulator_fast`) mirrors :func:`lif_step` with the
same constants, and :mod:`.sdn_fixed` runs :func:`delta_update`.

Standard library and numpy only, relative imports only (the Lava
interpreter loads the program layer by path; see :mod:`.program_base`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional

import numpy as np

from .program_base import (
    MAX_SIZE,
    _check_bool,
    _check_int,
    _check_int_array,
    _check_name,
    abs_int32,
    signed_range,
    wrap_int32,
)


@dataclass
class LoihiLIF:
    """A group of ``size`` CUBA LIF neurons, as Lava's ``PyLifModelBitAcc``.

    All quantities are integers. Per time step, with ``a`` the summed
    (already weight-exponent scaled) synaptic input of this step::

        act   = wrap32(a << 6)                    # MSB alignment of input
        d     = wrap32(trunc0(u * (4096 - (du + 1)) / 4096) + act)
        u     = d - 2**24  if d >  2**23          # one-shot 24-bit wrap:
                d + 2**24  if d <= -2**23         # result in (-2**23, 2**23]
                d          otherwise
        v     = clip(wrap32(trunc0(v * (4096 - dv) / 4096) + u + bias),
                     -(2**23 - 1), 2**23 - 1)
        spike = v > (vth << 6)                    # strictly greater
        v     = 0 where spike                     # u is NOT reset

    ``trunc0(x / 4096)`` is ``sign(x) * (|x| >> 12)``, i.e. division rounded
    toward zero.  Note the asymmetry: ``du`` decays by ``du + 1`` (so
    ``du = 4095`` clears u every step), ``dv`` by ``dv`` (so ``dv = 0``
    means no leak).  ``bias = bias_mant << bias_exp`` for ``bias_exp >= 0``
    and ``bias_mant >> -bias_exp`` (arithmetic, i.e. floor) otherwise; the
    bias is *not* shifted by 6, the threshold is.  ``wrap32`` is int32
    two's complement overflow as numpy produces it in Lava's model.
    ``u`` and ``v`` start at 0.  Probes read ``u`` and ``v`` at the end of a
    step, i.e. ``v`` after the reset.

    ``probe`` asks the runners to record ``u`` and ``v`` (spikes are always
    recorded).
    """

    name: str
    size: int
    du: int
    dv: int
    vth: int
    bias_mant: np.ndarray
    bias_exp: int = 0
    probe: bool = True

    #: state variables recorded when ``probe`` is set (runner result keys)
    STATE_VARS = ("u", "v")
    #: output spikes are binary (recorded as uint8 0/1)
    GRADED_OUTPUT = False

    # Bit widths of the state and parameters (Loihi / Lava fixed_pt).  The
    # integer rules below (decay, lif_wrap_u, lif_clip_v, lif_step) and the
    # numba kernel read these; nothing restates them.
    U_BITS = 24          # u: signed, wraps (one-shot) into (-2**23, 2**23]
    U_HALF = 1 << (U_BITS - 1)          # 2**23
    V_BITS = 24          # v: signed, saturates at +-(2**23 - 1)
    V_MAX = (1 << (V_BITS - 1)) - 1     # 2**23 - 1
    DU_BITS = 12         # du: unsigned, 0..4095
    DV_BITS = 12         # dv: unsigned, 0..4095
    DECAY_SHIFT = 12     # decays are x * (4096 - d) >> 12 (toward zero)
    DECAY_ONE = 1 << DECAY_SHIFT        # 4096: "no decay"
    VTH_BITS = 17        # vth: unsigned, 0..131071, compared as vth << 6
    VTH_SHIFT = 6
    ACT_SHIFT = 6        # synaptic input enters u as a << 6
    BIAS_MANT_BITS = 13  # bias_mant: signed, -4096..4095
    # Lava documents bias_exp as unsigned 3 bits (0..7); its fixed_pt model
    # also implements negative exponents as an arithmetic right shift, so we
    # accept -7..7.
    BIAS_EXP_MIN = -7
    BIAS_EXP_MAX = 7

    def validate(self) -> None:
        """Raise ValueError (naming the field) if a value is out of range."""
        owner = f"LoihiLIF({self.name!r})"
        _check_name(owner, self.name)
        _check_int(owner, "size", self.size, 1, MAX_SIZE)
        _check_int(owner, "du", self.du, 0, (1 << self.DU_BITS) - 1)
        _check_int(owner, "dv", self.dv, 0, (1 << self.DV_BITS) - 1)
        _check_int(owner, "vth", self.vth, 0, (1 << self.VTH_BITS) - 1)
        _check_int(owner, "bias_exp", self.bias_exp,
                   self.BIAS_EXP_MIN, self.BIAS_EXP_MAX)
        _check_int_array(owner, "bias_mant", self.bias_mant, (self.size,),
                         *signed_range(self.BIAS_MANT_BITS))
        if not isinstance(self.probe, (bool, np.bool_)):
            raise ValueError(f"{owner}.probe must be a bool")

    def effective_bias(self) -> np.ndarray:
        """Per-neuron bias added to v each step (int64): mant << / >> exp."""
        mant = np.asarray(self.bias_mant, dtype=np.int64)
        e = int(self.bias_exp)
        return mant << e if e >= 0 else mant >> (-e)

    def keep_u(self) -> int:
        """Factor of the u decay: ``4096 - (du + 1)`` (u decays by du + 1)."""
        return self.DECAY_ONE - (int(self.du) + 1)

    def keep_v(self) -> int:
        """Factor of the v decay: ``4096 - dv``."""
        return self.DECAY_ONE - int(self.dv)

    def scaled_vth(self) -> int:
        """The threshold v is compared with: ``vth << 6``."""
        return int(self.vth) << self.VTH_SHIFT


# ------------------------------------------------------------ LIF rules
def decay(x: np.ndarray, keep: int) -> np.ndarray:
    """``sign(x*keep) * (|x*keep| >> 12)``: x * keep / 4096 rounded to 0.

    ``keep`` is :meth:`LoihiLIF.keep_u` (``4096 - (du + 1)``) or
    :meth:`LoihiLIF.keep_v` (``4096 - dv``).
    """
    p = x * np.int64(keep)
    return np.sign(p) * (np.abs(p) >> LoihiLIF.DECAY_SHIFT)


def lif_wrap_u(d: np.ndarray) -> np.ndarray:
    """Lava's one-shot 24-bit wrap of u: into ``(-2**23, 2**23]``."""
    half = LoihiLIF.U_HALF
    return np.where(d > half, d - 2 * half,
                    np.where(d <= -half, d + 2 * half, d))


def lif_clip_v(v: np.ndarray) -> np.ndarray:
    """v saturates at ``+-(2**23 - 1)``."""
    return np.clip(v, -LoihiLIF.V_MAX, LoihiLIF.V_MAX)


def lif_step(lif: LoihiLIF, u: np.ndarray, v: np.ndarray, a_in: np.ndarray,
             bias: np.ndarray, vth_scaled: int):
    """One LIF step on (B, size) int64 state: returns new ``(u, v, spikes)``.

    ``a_in`` is the int32-valued summed synaptic input of this step,
    ``bias`` the :meth:`~LoihiLIF.effective_bias` and ``vth_scaled`` the
    :meth:`~LoihiLIF.scaled_vth`; the equations are those of
    :class:`LoihiLIF` (u wrap, v clip, strict threshold, v reset to 0 after
    the spike).
    """
    act = wrap_int32(a_in << LoihiLIF.ACT_SHIFT)
    d = wrap_int32(decay(u, lif.keep_u()) + act)
    u = lif_wrap_u(d)
    v = wrap_int32(decay(v, lif.keep_v()) + u + bias)
    v = lif_clip_v(v)
    spikes = v > vth_scaled
    v = np.where(spikes, 0, v)
    return u, v, spikes


@dataclass
class LoihiSigmaDelta:
    """``size`` sigma-delta neurons, as Lava's ``PySigmaDeltaModelFixed``.

    Graded (integer payload) output; all state is int32 and every ``+``/``-``
    below wraps like int32 (``wrap32``).  ``s = spike_exp + state_exp``;
    Lava's process scales the threshold and the bias once at build time:
    ``VTH = vth << s`` and ``BIAS = bias << s``.  Per step, with ``a`` the
    int32 sum of this step's incoming connection outputs::

        sigma   = sigma + a                        # sigma decoder
        act_new = sigma + BIAS                     # "unit" activation
        act_new = max(act_new, 0)                  # "relu" only
        delta   = act_new - act + residue
        # without cum_error:
        out     = delta if abs(delta) >= VTH else 0
        # with cum_error:
        error   = error + delta
        out     = delta if abs(error) >= VTH else 0
        error   = 0 where out != 0
        residue = delta - out
        act     = act_new
        s_out   = out >> state_exp                 # arithmetic (floor)

    Notes (verified in ``lava/proc/sdn/models.py`` and ``process.py``):

    * the comparison is ``>=`` (Lava's docstring says ``>``);
    * ``spike_exp`` is only used to scale ``vth`` and ``bias``: the input is
      NOT shifted (unlike Lava's stand-alone ``Delta`` process) and the
      output is shifted right by ``state_exp`` only;
    * ``abs`` is int32 ``np.abs``: ``abs(-2**31)`` stays ``-2**31``;
    * the output of step t depends on the input of step t (no internal
      delay); the one-step delay is in the connections, as for LIF;
    * ``residue`` and ``act`` keep the ``state_exp`` scaling.

    ``sigma``, ``act``, ``residue`` and ``error`` start at 0 and are what
    ``probe`` records (values at the end of the step); the output values are
    recorded as ``spikes`` (int64 holding int32 payloads, 0 = no spike).
    """

    name: str
    size: int
    vth: int
    bias: Optional[np.ndarray] = None  # (size,) ints, None = zeros
    act_mode: str = "relu"             # "relu" or "unit"
    cum_error: bool = False
    spike_exp: int = 0
    state_exp: int = 0
    probe: bool = True

    STATE_VARS = ("sigma", "act", "residue", "error")
    GRADED_OUTPUT = True
    ACT_MODES = ("relu", "unit")
    EXP_MAX = 7              # spike_exp / state_exp: Lava precision 3 bits
    # Lava declares the state 24-bit (it is int32 in the model, not clipped)
    STATE_BITS = 24
    STATE_MAX = (1 << (STATE_BITS - 1)) - 1
    VTH_SCALED_MAX = STATE_MAX         # vth << s: positive 24-bit
    BIAS_SCALED_BITS = STATE_BITS      # bias << s: signed 24-bit

    def validate(self) -> None:
        """Raise ValueError (naming the field) if a value is out of range."""
        owner = f"LoihiSigmaDelta({self.name!r})"
        _check_name(owner, self.name)
        _check_int(owner, "size", self.size, 1, MAX_SIZE)
        _check_int(owner, "spike_exp", self.spike_exp, 0, self.EXP_MAX)
        _check_int(owner, "state_exp", self.state_exp, 0, self.EXP_MAX)
        s = int(self.spike_exp) + int(self.state_exp)
        _check_int(owner, "vth", self.vth, 0, self.VTH_SCALED_MAX >> s)
        if self.bias is not None:
            lo, hi = signed_range(self.BIAS_SCALED_BITS)
            _check_int_array(owner, "bias", self.bias, (self.size,),
                             -((-lo) >> s), hi >> s)
        if self.act_mode not in self.ACT_MODES:
            raise ValueError(f"{owner}.act_mode must be one of "
                             f"{self.ACT_MODES}, got {self.act_mode!r}")
        _check_bool(owner, "cum_error", self.cum_error)
        _check_bool(owner, "probe", self.probe)

    def scaled_vth(self) -> int:
        """The threshold Lava compares with: ``vth << (spike + state exp)``."""
        return int(self.vth) << (int(self.spike_exp) + int(self.state_exp))

    def scaled_bias(self) -> np.ndarray:
        """(size,) int64: ``bias << (spike_exp + state_exp)`` (0 if None)."""
        if self.bias is None:
            return np.zeros(int(self.size), np.int64)
        return np.asarray(self.bias, dtype=np.int64) << (
            int(self.spike_exp) + int(self.state_exp))


# ---------------------------------------------------- sigma-delta rules
def sigma_delta_activation(state: Dict[str, np.ndarray], a_in: np.ndarray,
                           bias: np.ndarray, relu: bool) -> np.ndarray:
    """Sigma decoder and activation of :class:`LoihiSigmaDelta`: updates
    ``state["sigma"]`` and returns the new activation (int64 holding int32).
    """
    sigma = wrap_int32(state["sigma"] + a_in)
    act = wrap_int32(sigma + bias)
    if relu:
        act = np.maximum(act, 0)
    state["sigma"] = sigma
    return act


def delta_update(state: Dict[str, np.ndarray], act_new: np.ndarray,
                 vth: int, cum_error: bool, state_exp: int) -> np.ndarray:
    """Delta encoder shared by Lava's SigmaDelta and Delta fixed_pt models.

    Updates ``state["act"]``, ``["residue"]`` and ``["error"]`` (int64
    holding int32) for the activation ``act_new`` and returns the graded
    output ``out >> state_exp`` (see :class:`LoihiSigmaDelta`).
    """
    delta = wrap_int32(act_new - state["act"] + state["residue"])
    if cum_error:
        error = wrap_int32(state["error"] + delta)
        out = np.where(abs_int32(error) >= vth, delta, 0)
        state["error"] = np.where(abs_int32(out) > 0, 0, error)
    else:
        out = np.where(abs_int32(delta) >= vth, delta, 0)
    state["residue"] = wrap_int32(delta - out)
    state["act"] = act_new
    return out >> int(state_exp)


def sigma_delta_step(sd: LoihiSigmaDelta, state: Dict[str, np.ndarray],
                     a_in: np.ndarray, bias: np.ndarray,
                     vth: int) -> np.ndarray:
    """One sigma-delta step; updates ``state`` (sigma, act, residue, error;
    (B, size) int64 holding int32) in place and returns the graded output.

    Equations of :class:`LoihiSigmaDelta`; ``bias``/``vth`` are the scaled
    values (:meth:`~LoihiSigmaDelta.scaled_bias`,
    :meth:`~LoihiSigmaDelta.scaled_vth`).
    """
    act = sigma_delta_activation(state, a_in, bias, sd.act_mode == "relu")
    return delta_update(state, act, vth, bool(sd.cum_error),
                        int(sd.state_exp))


__all__ = ["LoihiLIF", "LoihiSigmaDelta", "decay", "lif_wrap_u",
           "lif_clip_v", "lif_step", "sigma_delta_activation",
           "delta_update", "sigma_delta_step"]
