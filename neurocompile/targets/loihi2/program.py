"""Program format for Loihi-2 style fixed-point networks.

A :class:`LoihiProgram` is a plain description of integer parameters; it is
the common input of the numpy emulator (:mod:`neurocompile.targets.loihi2.emulator`)
and of the Lava harness (:mod:`neurocompile.targets.loihi2.lava`).  This
module only needs the standard library and numpy (>= 1.24, 1.x or 2.x), so it
imports both in the main interpreter and in the Lava interpreter.

Building blocks (each mirrors one Lava ``fixed_pt`` process model, lava-nc
0.10; the exact integer semantics are in the class docstrings):

* neuron groups: :class:`LoihiLIF` (``lava.proc.lif``) and
  :class:`LoihiSigmaDelta` (``lava.proc.sdn.SigmaDelta``, graded output);
* connections: :class:`LoihiDense` (``Dense``; with ``delays`` it is
  ``DelayDense``, with ``sparse=True`` it is ``Sparse`` / ``DelaySparse``,
  with ``num_message_bits > 0`` it consumes graded spikes) and
  :class:`LoihiConv` (``lava.proc.conv.Conv``);
* the external input: ``n_inputs`` lines, binary spikes by default or
  graded integer payloads when ``input_message_bits > 0``.

Every connection delays by at least one step, so the order of groups and
connections never matters.

On disk a program is a directory holding ``program.json`` (scalars, versioned)
and ``arrays.npz`` (integer arrays, loaded with ``allow_pickle=False``).
Programs using only LIF + plain Dense with binary input are written as
format version 1 (readable by older code); anything else is version 2.
Both versions load.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple, Union

import numpy as np

FORMAT_NAME = "neurocompile.loihi_program"
FORMAT_VERSION = 2          # newest version this module writes/reads
SUPPORTED_VERSIONS = (1, 2)
INPUT = "input"  # reserved source name of the external spike input
JSON_NAME = "program.json"
NPZ_NAME = "arrays.npz"

_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}$")


def _signed_range(bits: int):
    """Inclusive range of a two's complement integer of ``bits`` bits."""
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


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

    # Bit widths of the state and parameters (Loihi / Lava fixed_pt).
    U_BITS = 24          # u: signed, wraps (one-shot) into (-2**23, 2**23]
    V_BITS = 24          # v: signed, saturates at +-(2**23 - 1)
    DU_BITS = 12         # du: unsigned, 0..4095
    DV_BITS = 12         # dv: unsigned, 0..4095
    DECAY_SHIFT = 12     # decays are x * (4096 - d) >> 12 (toward zero)
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
        if not isinstance(self.name, str) or not _NAME_RE.match(self.name) \
                or self.name == INPUT:
            raise ValueError(f"{owner}.name must match {_NAME_RE.pattern} "
                             f"and not be {INPUT!r}")
        _check_int(owner, "size", self.size, 1, 1 << 24)
        _check_int(owner, "du", self.du, 0, (1 << self.DU_BITS) - 1)
        _check_int(owner, "dv", self.dv, 0, (1 << self.DV_BITS) - 1)
        _check_int(owner, "vth", self.vth, 0, (1 << self.VTH_BITS) - 1)
        _check_int(owner, "bias_exp", self.bias_exp,
                   self.BIAS_EXP_MIN, self.BIAS_EXP_MAX)
        _check_int_array(owner, "bias_mant", self.bias_mant, (self.size,),
                         *_signed_range(self.BIAS_MANT_BITS))
        if not isinstance(self.probe, (bool, np.bool_)):
            raise ValueError(f"{owner}.probe must be a bool")

    def effective_bias(self) -> np.ndarray:
        """Per-neuron bias added to v each step (int64): mant << / >> exp."""
        mant = np.asarray(self.bias_mant, dtype=np.int64)
        e = int(self.bias_exp)
        return mant << e if e >= 0 else mant >> (-e)


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
    VTH_SCALED_MAX = (1 << 23) - 1     # vth << s: positive 24-bit
    BIAS_SCALED_BITS = 24              # bias << s: signed 24-bit

    def validate(self) -> None:
        """Raise ValueError (naming the field) if a value is out of range."""
        owner = f"LoihiSigmaDelta({self.name!r})"
        _check_name(owner, self.name)
        _check_int(owner, "size", self.size, 1, 1 << 24)
        _check_int(owner, "spike_exp", self.spike_exp, 0, self.EXP_MAX)
        _check_int(owner, "state_exp", self.state_exp, 0, self.EXP_MAX)
        s = int(self.spike_exp) + int(self.state_exp)
        _check_int(owner, "vth", self.vth, 0, self.VTH_SCALED_MAX >> s)
        if self.bias is not None:
            lo, hi = _signed_range(self.BIAS_SCALED_BITS)
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


@dataclass
class LoihiDense:
    """Dense synapses from ``src`` (``"input"`` or a group) to group ``dst``.

    ``weights`` has shape ``(dst_size, src_size)``.  Lava's
    ``PyDenseModelBitAcc`` turns them into effective weights once:

    1. sign mode from the raw matrix (``utils.weightutils.determine_sign_mode``):
       EXCITATORY if ``min >= 0`` (an all-zero matrix too), INHIBITORY if
       ``max <= 0``, else MIXED;
    2. clip to 8 bits for that mode: MIXED ``[-256, 255]``, EXCITATORY
       ``[0, 255]``, INHIBITORY ``[-255, 0]`` (``validate`` rejects values
       that would be clipped);
    3. drop ``k = 8 - num_weight_bits + (1 if MIXED else 0)`` low bits:
       ``(w >> k) << k`` (floor) for MIXED/EXCITATORY, and on ``-w`` for
       INHIBITORY (so magnitudes are truncated toward zero).  Hence a MIXED
       matrix loses its lowest bit even at 8 bits: 3 -> 2, -3 -> -4.

    Per step, with the binary source spikes ``s`` of that step (any nonzero
    input counts as a spike), ``acc = W_eff @ s`` (exact integer) and the
    output is ``acc << weight_exp`` if ``weight_exp > 0`` else
    ``acc >> -weight_exp`` (arithmetic shift of the *sum*: floor).  The
    result is sent as int32 (wraps on overflow), and the inputs of all
    connections into one group are summed in int32.

    Delay: the value computed from the spikes of step t is delivered to the
    destination at step t + 1 (each Dense sends its buffer from the previous
    step before computing the new one; the buffer starts at 0).  A hop from
    the external input or from a LIF therefore costs exactly one step.

    Optional extensions (defaults give the behaviour above):

    ``num_message_bits > 0`` -- graded input (Lava ``num_message_bits``):
        ``s`` is the source's integer payload instead of ``s != 0`` (LIF
        spikes are then 1, sigma-delta outputs and graded external inputs
        their value).  Lava multiplies the payload by the weight as is: no
        scaling, and no truncation to ``num_message_bits`` (only ``> 0``
        matters in Lava's Python models).  Dense computes
        ``weights.dot(s)`` in int32, so the sum wraps to int32 *before*
        the exponent shift: ``out = wrap32(acc) >> -weight_exp`` (or
        ``wrap32(acc << weight_exp)``).  Identical to the binary formula
        unless the sum leaves int32.

    ``delays`` (int array shaped like ``weights``, 0..63) -- ``DelayDense``:
        a spike of step t through a synapse of delay d reaches the
        destination at step ``t + 1 + d`` (delay 0 = plain Dense timing;
        Lava's bit-accurate model rejects delays > 63, the 6-bit Loihi 2
        limit).  The exponent shift is applied per delay class: for every
        d, ``acc_d = sum_j [delay_ij == d] W_eff_ij s_j`` is shifted
        separately (floor per class) and the shifted classes arriving in the
        same step are added in an int32 buffer.  So with ``weight_exp < 0``
        a delayed Dense whose delays differ is *not* the same as a Dense on
        the summed input.  Graded: each product ``W_eff_ij * s_j`` wraps to
        int32 before the (int64) sum, then the shift.

    ``sparse=True`` -- Lava ``Sparse`` (weights as a scipy csr matrix) or,
        with ``delays``, ``DelaySparse``.  Verified in
        ``lava/proc/sparse/models.py``: sign-mode detection (the implicit
        zeros are zeros of the dense matrix too), clipping, truncation,
        weight_exp and timing are identical to Dense, so a sparse LoihiDense
        gives exactly the dense results.  Only ``DelaySparse`` differs in
        overflow corner cases: its per-class sums are computed in int32
        (``csr.dot``), so each class sum wraps to int32 before the shift
        (binary and graded alike), where ``DelayDense`` uses int64 sums.
        Zero-weight entries need no storage: ``delays`` at zero weights are
        ignored.
    """

    name: str
    src: str
    dst: str
    weights: np.ndarray
    weight_exp: int = 0
    num_weight_bits: int = 8
    num_message_bits: int = 0
    delays: Optional[np.ndarray] = None
    sparse: bool = False

    WEIGHT_BITS = 8          # raw weights: MIXED -256..255, else 0..+-255
    NUM_WEIGHT_BITS_MIN = 1
    NUM_WEIGHT_BITS_MAX = 8
    WEIGHT_EXP_MIN = -8      # 4-bit signed weight exponent
    WEIGHT_EXP_MAX = 7
    MAX_DELAY = 63           # Loihi 2: 6-bit delays (Lava checks > 63)
    NUM_MESSAGE_BITS_MAX = 24  # graded spike payload width on Loihi 2

    def sign_mode(self) -> str:
        """'excitatory', 'inhibitory' or 'mixed', as Lava detects it."""
        w = np.asarray(self.weights)
        if w.size == 0 or w.min() >= 0:
            return "excitatory"
        if w.max() <= 0:
            return "inhibitory"
        return "mixed"

    @property
    def graded(self) -> bool:
        """True if the source payload is used (``num_message_bits > 0``)."""
        return int(self.num_message_bits) > 0

    def max_delay(self) -> int:
        """Largest delay (0 without ``delays``)."""
        if self.delays is None or np.size(self.delays) == 0:
            return 0
        return int(np.max(self.delays))

    def lava_process(self) -> str:
        """The Lava process used: Dense, Sparse, DelayDense or DelaySparse."""
        base = "Sparse" if self.sparse else "Dense"
        return ("Delay" + base) if self.delays is not None else base

    def validate(self) -> None:
        """Raise ValueError (naming the field) if a value is out of range.

        Shapes against the connected groups are checked by
        :meth:`LoihiProgram.validate`.
        """
        owner = f"LoihiDense({self.name!r})"
        _check_name(owner, self.name, allow_input=True)
        _check_int(owner, "weight_exp", self.weight_exp,
                   self.WEIGHT_EXP_MIN, self.WEIGHT_EXP_MAX)
        _check_int(owner, "num_weight_bits", self.num_weight_bits,
                   self.NUM_WEIGHT_BITS_MIN, self.NUM_WEIGHT_BITS_MAX)
        _check_int(owner, "num_message_bits", self.num_message_bits,
                   0, self.NUM_MESSAGE_BITS_MAX)
        _check_bool(owner, "sparse", self.sparse)
        w = np.asarray(self.weights)
        if w.ndim != 2:
            raise ValueError(f"{owner}.weights must be 2-D, got {w.ndim}-D")
        full = 1 << self.WEIGHT_BITS
        if w.size and self.sign_mode() == "inhibitory":
            lo, hi = -(full - 1), 0
        else:
            lo, hi = -full, full - 1
        _check_int_array(owner, "weights", w, w.shape, lo, hi)
        if self.delays is not None:
            _check_int_array(owner, "delays", self.delays, w.shape, 0,
                             self.MAX_DELAY)

    def effective_weights(self) -> np.ndarray:
        """The int64 weights Lava's fixed_pt Dense really uses (see class)."""
        w = np.asarray(self.weights, dtype=np.int64)
        mode = self.sign_mode()
        full = 1 << self.WEIGHT_BITS
        k = self.WEIGHT_BITS - int(self.num_weight_bits)
        if mode == "mixed":
            return (np.clip(w, -full, full - 1) >> (k + 1)) << (k + 1)
        if mode == "inhibitory":
            m = np.clip(-w, 0, full - 1)
            return -((m >> k) << k)
        return (np.clip(w, 0, full - 1) >> k) << k


def _pair(value):
    """``v`` -> ``(v, v)``; a 1- or 2-sequence -> a 2-tuple; else unchanged."""
    if isinstance(value, (int, np.integer)) and not isinstance(
            value, (bool, np.bool_)):
        return (int(value), int(value))
    if isinstance(value, (list, tuple, np.ndarray)):
        seq = list(np.asarray(value).reshape(-1)) if isinstance(
            value, np.ndarray) else list(value)
        if len(seq) == 1:
            seq = seq * 2
        return tuple(int(v) if isinstance(v, (int, np.integer)) else v
                     for v in seq)
    return value


@dataclass
class LoihiConv:
    """2-D convolution from ``src`` to ``dst``, as Lava's ``PyConvModelFixed``.

    Layout follows PyTorch: the source group (size ``C*H*W``) is a
    ``(C, H, W)`` tensor flattened in C order, ``weights`` is
    ``(C_out, C_in // groups, kH, kW)``, pairs are ``(H, W)`` and the
    operation is PyTorch's ``conv2d`` (cross-correlation, zero padding); the
    destination group (size ``C_out*H_out*W_out``) is the ``(C_out, H_out,
    W_out)`` output flattened in C order, with
    ``H_out = (H + 2*pH - dH*(kH-1) - 1) // sH + 1`` (same for W).

    Lava's ``Conv`` uses ``(W, H, C)`` tensors, an ``(C_out, kW, kH, C_in)``
    kernel and a true convolution (``scipy.signal.convolve2d``, kernel
    flipped); the Lava runner converts: ``lava_w = weights.transpose(0, 3,
    2, 1)[:, ::-1, ::-1, :]``, pairs reversed to (W, H), ports reshaped and
    transposed (``(C*H*W,) -> (C, H, W) -> (W, H, C)`` and back).

    Fixed-point semantics (verified in ``lava/proc/conv/models.py`` and
    ``utils.py``, lava-nc 0.10):

    * ``weight_exp`` and ``num_weight_bits`` are IGNORED by Lava's fixed_pt
      model (they are stored in Vars that ``run_spk`` never reads); there is
      no sign-mode detection, clipping or truncation either.  The weights
      are used exactly as given, and so does the emulator.  Both fields are
      kept (validated, passed to Lava) for hardware lowering only.  To get
      ``w << e`` fold it into ``weights`` (hence the 16-bit weight range,
      enough for ``255 << 7``); ``e < 0`` cannot be expressed.
    * per step the input is ``s != 0`` (binary, ``num_message_bits == 0``)
      or the integer payload (graded); the sum is computed in float64
      (exact while the sum of |terms| < 2**53), cast to int32 (a value
      outside int32 becomes ``-2**31``, the x86 result of numpy's cast),
      then wrapped to signed 24 bits: ``(x + 2**23) % 2**24 - 2**23``.
    * delay: like Dense, the output computed from the spikes of step t is
      delivered at step t + 1 (``run_spk`` sends the previous buffer
      first).
    """

    name: str
    src: str
    dst: str
    weights: np.ndarray                    # (C_out, C_in//groups, kH, kW)
    in_shape: Tuple[int, int, int]         # (C, H, W)
    stride: Tuple[int, int] = (1, 1)       # (sH, sW) or int
    padding: Tuple[int, int] = (0, 0)      # (pH, pW) or int
    dilation: Tuple[int, int] = (1, 1)     # (dH, dW) or int
    groups: int = 1
    weight_exp: int = 0        # ignored by Lava's fixed_pt Conv (see above)
    num_weight_bits: int = 8   # ignored by Lava's fixed_pt Conv (see above)
    num_message_bits: int = 0

    WEIGHT_BITS = 16           # weights used as is: signed 16-bit accepted
    INT8_MAX = 127             # Lava stores kernel/stride/padding/... as int8
    OUT_BITS = 24              # output wraps to signed 24 bits

    def __post_init__(self):
        self.stride = _pair(self.stride)
        self.padding = _pair(self.padding)
        self.dilation = _pair(self.dilation)
        if isinstance(self.in_shape, (list, np.ndarray)):
            self.in_shape = tuple(int(v) for v in self.in_shape)

    @property
    def graded(self) -> bool:
        """True if the source payload is used (``num_message_bits > 0``)."""
        return int(self.num_message_bits) > 0

    def out_shape(self) -> Tuple[int, int, int]:
        """``(C_out, H_out, W_out)`` (no validation)."""
        w = np.shape(self.weights)
        out = [int(w[0])]
        for i in range(2):
            size = int(self.in_shape[1 + i])
            k = int(w[2 + i])
            out.append((size + 2 * self.padding[i]
                        - self.dilation[i] * (k - 1) - 1) // self.stride[i]
                       + 1)
        return tuple(out)

    def in_size(self) -> int:
        """``C * H * W``."""
        return int(np.prod(self.in_shape))

    def out_size(self) -> int:
        """``C_out * H_out * W_out``."""
        return int(np.prod(self.out_shape()))

    def validate(self) -> None:
        """Raise ValueError (naming the field) if a value is out of range."""
        owner = f"LoihiConv({self.name!r})"
        _check_name(owner, self.name, allow_input=True)
        if not isinstance(self.in_shape, tuple) or len(self.in_shape) != 3:
            raise ValueError(f"{owner}.in_shape must be a (C, H, W) tuple")
        for v in self.in_shape:
            _check_int(owner, "in_shape", v, 1, 1 << 24)
        _check_int(owner, "groups", self.groups, 1, self.INT8_MAX)
        for fname, lo in (("stride", 1), ("padding", 0), ("dilation", 1)):
            pair = getattr(self, fname)
            if not isinstance(pair, tuple) or len(pair) != 2:
                raise ValueError(f"{owner}.{fname} must be an int or a pair")
            for v in pair:
                _check_int(owner, fname, v, lo, self.INT8_MAX)
        _check_int(owner, "weight_exp", self.weight_exp,
                   LoihiDense.WEIGHT_EXP_MIN, LoihiDense.WEIGHT_EXP_MAX)
        _check_int(owner, "num_weight_bits", self.num_weight_bits,
                   LoihiDense.NUM_WEIGHT_BITS_MIN,
                   LoihiDense.NUM_WEIGHT_BITS_MAX)
        _check_int(owner, "num_message_bits", self.num_message_bits,
                   0, LoihiDense.NUM_MESSAGE_BITS_MAX)
        w = np.asarray(self.weights)
        if w.ndim != 4:
            raise ValueError(f"{owner}.weights must be 4-D (C_out, "
                             f"C_in//groups, kH, kW), got {w.ndim}-D")
        c_in, g = int(self.in_shape[0]), int(self.groups)
        if c_in % g or w.shape[0] % g or w.shape[0] == 0:
            raise ValueError(f"{owner}.groups={g} must divide C_in={c_in} "
                             f"and C_out={w.shape[0]} (> 0)")
        if w.shape[1] != c_in // g:
            raise ValueError(f"{owner}.weights has shape {w.shape}, expected "
                             f"C_in//groups={c_in // g} in dimension 1")
        for i, k in enumerate(w.shape[2:]):
            _check_int(owner, "weights kernel size", int(k), 1,
                       self.INT8_MAX)
            if self.dilation[i] * (int(k) - 1) + 1 > self.INT8_MAX:
                raise ValueError(f"{owner}.dilation * (kernel - 1) + 1 must "
                                 f"be <= {self.INT8_MAX} (Lava int8)")
        _check_int_array(owner, "weights", w, w.shape,
                         *_signed_range(self.WEIGHT_BITS))
        out = self.out_shape()
        if min(out[1:]) < 1:
            raise ValueError(f"{owner}: output shape {out} is empty (check "
                             f"in_shape, kernel, stride, padding, dilation)")

    def lava_weights(self) -> np.ndarray:
        """The kernel in Lava's layout ``(C_out, kW, kH, C_in//groups)``,
        flipped so that Lava's true convolution equals PyTorch's conv2d."""
        w = np.asarray(self.weights)
        return np.ascontiguousarray(w.transpose(0, 3, 2, 1)[:, ::-1, ::-1, :])


Neuron = Union[LoihiLIF, LoihiSigmaDelta]
Synapse = Union[LoihiDense, LoihiConv]


@dataclass
class LoihiProgram:
    """A network: ``n_inputs`` external input lines, groups, connections.

    Every group's input is the int32 sum of the outputs of the connections
    whose ``dst`` it is; a group with no incoming connection only integrates
    its bias.  ``neurons`` may hold :class:`LoihiLIF` and
    :class:`LoihiSigmaDelta`; ``synapses`` :class:`LoihiDense` and
    :class:`LoihiConv`.

    ``input_message_bits`` (default 0): with 0 the external input is binary
    (any nonzero value is a spike, sent as 1).  With ``b > 0`` the input
    values are graded payloads, which must lie in the signed b-bit range
    ``[-2**(b-1), 2**(b-1) - 1]``; Lava's fixed_pt ``RingBuffer`` source
    sends them unchanged as int32 (``data[:, t]`` at step t).  Connections
    from the input use the value if their ``num_message_bits > 0`` and
    ``value != 0`` otherwise.
    """

    n_inputs: int
    neurons: List[Neuron] = field(default_factory=list)
    synapses: List[Synapse] = field(default_factory=list)
    input_message_bits: int = 0

    INPUT_MESSAGE_BITS_MAX = 32

    def neuron(self, name: str) -> Neuron:
        """The group called ``name`` (KeyError if absent)."""
        for n in self.neurons:
            if n.name == name:
                return n
        raise KeyError(name)

    def extensions(self) -> List[str]:
        """Features beyond LIF + plain binary Dense (sorted names).

        Empty for programs that format version 1 (and the LIF+Dense-only
        fast kernel) can express; otherwise a subset of ``conv``, ``delays``,
        ``graded_input``, ``graded_synapses``, ``sigma_delta``, ``sparse``.
        """
        ext = set()
        if int(self.input_message_bits) > 0:
            ext.add("graded_input")
        for n in self.neurons:
            if not isinstance(n, LoihiLIF):
                ext.add("sigma_delta")
        for s in self.synapses:
            if isinstance(s, LoihiConv):
                ext.add("conv")
                continue
            if s.delays is not None:
                ext.add("delays")
            if s.sparse:
                ext.add("sparse")
            if int(s.num_message_bits) > 0:
                ext.add("graded_synapses")
        return sorted(ext)

    def format_version(self) -> int:
        """1 if :meth:`extensions` is empty, else 2."""
        return 2 if self.extensions() else 1

    def input_range(self) -> Tuple[int, int]:
        """Inclusive range of external input values (binary: any int)."""
        b = int(self.input_message_bits)
        if b == 0:
            return (-(1 << 63), (1 << 63) - 1)
        return _signed_range(b)

    def validate(self) -> None:
        """Check every field, unique names, src/dst existence and shapes."""
        _check_int("LoihiProgram", "n_inputs", self.n_inputs, 0, 1 << 24)
        _check_int("LoihiProgram", "input_message_bits",
                   self.input_message_bits, 0, self.INPUT_MESSAGE_BITS_MAX)
        sizes: Dict[str, int] = {}
        for n in self.neurons:
            if not isinstance(n, (LoihiLIF, LoihiSigmaDelta)):
                raise ValueError("LoihiProgram.neurons must hold LoihiLIF or "
                                 "LoihiSigmaDelta")
            n.validate()
            if n.name in sizes:
                raise ValueError(f"LoihiProgram.neurons: duplicate name "
                                 f"{n.name!r}")
            sizes[n.name] = int(n.size)
        seen = set()
        for s in self.synapses:
            if not isinstance(s, (LoihiDense, LoihiConv)):
                raise ValueError("LoihiProgram.synapses must hold LoihiDense "
                                 "or LoihiConv")
            kind = type(s).__name__
            s.validate()
            if s.name in seen:
                raise ValueError(f"LoihiProgram.synapses: duplicate name "
                                 f"{s.name!r}")
            seen.add(s.name)
            if s.src != INPUT and s.src not in sizes:
                raise ValueError(f"{kind}({s.name!r}).src={s.src!r} is "
                                 f"neither {INPUT!r} nor a group name")
            if s.dst not in sizes:
                raise ValueError(f"{kind}({s.name!r}).dst={s.dst!r} is "
                                 f"not a group name")
            src_size = self.n_inputs if s.src == INPUT else sizes[s.src]
            if isinstance(s, LoihiConv):
                if s.in_size() != src_size:
                    raise ValueError(
                        f"LoihiConv({s.name!r}).in_shape={s.in_shape} has "
                        f"{s.in_size()} elements, but the source has "
                        f"{src_size}")
                if s.out_size() != sizes[s.dst]:
                    raise ValueError(
                        f"LoihiConv({s.name!r}) output shape "
                        f"{s.out_shape()} has {s.out_size()} elements, but "
                        f"{s.dst!r} has size {sizes[s.dst]}")
                continue
            shape = (sizes[s.dst], src_size)
            if np.shape(s.weights) != shape:
                raise ValueError(
                    f"LoihiDense({s.name!r}).weights has shape "
                    f"{np.shape(s.weights)}, expected (dst_size, src_size)="
                    f"{shape}")

    def check_input(self, x) -> np.ndarray:
        """Validate external input values ((T, n) or (T, B, n) ints/bools).

        Returns ``x`` as an array; raises ValueError for a float dtype or a
        graded value outside :meth:`input_range`.
        """
        a = np.asarray(x)
        if a.dtype.kind not in "biu":
            raise ValueError(f"input values must be int or bool, got "
                             f"{a.dtype}")
        if int(self.input_message_bits) > 0 and a.size and a.dtype.kind != "b":
            lo, hi = self.input_range()
            if int(a.min()) < lo or int(a.max()) > hi:
                raise ValueError(
                    f"graded input values span [{int(a.min())}, "
                    f"{int(a.max())}], outside the signed "
                    f"{self.input_message_bits}-bit range [{lo}, {hi}]")
        return a

    # ------------------------------------------------------------ files
    def to_json_and_arrays(self):
        """Split into a JSON-able dict and a dict of int64 arrays.

        Version-1 programs (see :meth:`format_version`) produce exactly the
        version-1 layout; version 2 adds ``kind`` to every group and
        connection and the new fields.
        """
        v2 = self.format_version() >= 2
        arrays: Dict[str, np.ndarray] = {}
        neurons = []
        for i, n in enumerate(self.neurons):
            if isinstance(n, LoihiSigmaDelta):
                d = dict(kind="sigma_delta", name=n.name, size=int(n.size),
                         vth=int(n.vth), act_mode=str(n.act_mode),
                         cum_error=bool(n.cum_error),
                         spike_exp=int(n.spike_exp),
                         state_exp=int(n.state_exp), probe=bool(n.probe),
                         bias=None)
                if n.bias is not None:
                    d["bias"] = key = f"neuron{i}_bias"
                    arrays[key] = np.asarray(n.bias, dtype=np.int64)
                neurons.append(d)
                continue
            key = f"neuron{i}_bias_mant"
            arrays[key] = np.asarray(n.bias_mant, dtype=np.int64)
            d = dict(name=n.name, size=int(n.size), du=int(n.du),
                     dv=int(n.dv), vth=int(n.vth), bias_exp=int(n.bias_exp),
                     probe=bool(n.probe), bias_mant=key)
            if v2:
                d["kind"] = "lif"
            neurons.append(d)
        synapses = []
        for i, s in enumerate(self.synapses):
            key = f"synapse{i}_weights"
            arrays[key] = np.asarray(s.weights, dtype=np.int64)
            if isinstance(s, LoihiConv):
                synapses.append(dict(
                    kind="conv", name=s.name, src=s.src, dst=s.dst,
                    weights=key, in_shape=[int(v) for v in s.in_shape],
                    stride=[int(v) for v in s.stride],
                    padding=[int(v) for v in s.padding],
                    dilation=[int(v) for v in s.dilation],
                    groups=int(s.groups), weight_exp=int(s.weight_exp),
                    num_weight_bits=int(s.num_weight_bits),
                    num_message_bits=int(s.num_message_bits)))
                continue
            d = dict(name=s.name, src=s.src, dst=s.dst,
                     weight_exp=int(s.weight_exp),
                     num_weight_bits=int(s.num_weight_bits), weights=key)
            if v2:
                d.update(kind="dense", sparse=bool(s.sparse),
                         num_message_bits=int(s.num_message_bits),
                         delays=None)
                if s.delays is not None:
                    d["delays"] = dkey = f"synapse{i}_delays"
                    arrays[dkey] = np.asarray(s.delays, dtype=np.int64)
            synapses.append(d)
        doc = {"format": FORMAT_NAME, "version": 2 if v2 else 1,
               "n_inputs": int(self.n_inputs), "neurons": neurons,
               "synapses": synapses}
        if v2:
            doc["input_message_bits"] = int(self.input_message_bits)
        return doc, arrays

    def save(self, dirpath: str) -> None:
        """Validate, then write ``program.json`` + ``arrays.npz`` atomically.

        Each file is written to a temporary file in ``dirpath`` and moved in
        place with ``os.replace``; the npz goes first and its SHA-256 is
        recorded in the JSON, so a reader never pairs mismatched files.
        """
        self.validate()
        doc, arrays = self.to_json_and_arrays()
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        blob = buf.getvalue()
        doc["arrays_sha256"] = hashlib.sha256(blob).hexdigest()
        os.makedirs(dirpath, exist_ok=True)
        _atomic_write(os.path.join(dirpath, NPZ_NAME), blob)
        text = json.dumps(doc, indent=1, sort_keys=True).encode()
        _atomic_write(os.path.join(dirpath, JSON_NAME), text)

    @classmethod
    def load(cls, dirpath: str) -> "LoihiProgram":
        """Read a program written by :meth:`save` (version 1 or 2) and
        validate it."""
        with open(os.path.join(dirpath, JSON_NAME), "rb") as f:
            doc = json.loads(f.read().decode())
        if doc.get("format") != FORMAT_NAME:
            raise ValueError(f"{dirpath}: not a {FORMAT_NAME} file")
        if doc.get("version") not in SUPPORTED_VERSIONS:
            raise ValueError(f"{dirpath}: unsupported version "
                             f"{doc.get('version')!r} (want one of "
                             f"{SUPPORTED_VERSIONS})")
        with open(os.path.join(dirpath, NPZ_NAME), "rb") as f:
            blob = f.read()
        want = doc.get("arrays_sha256")
        if want is not None and hashlib.sha256(blob).hexdigest() != want:
            raise ValueError(f"{dirpath}: {NPZ_NAME} does not match "
                             f"{JSON_NAME} (checksum)")
        with np.load(io.BytesIO(blob), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        neurons = []
        for d in doc["neurons"]:
            kind = d.get("kind", "lif")
            if kind == "lif":
                neurons.append(LoihiLIF(
                    name=d["name"], size=d["size"], du=d["du"], dv=d["dv"],
                    vth=d["vth"], bias_mant=arrays[d["bias_mant"]],
                    bias_exp=d["bias_exp"], probe=d["probe"]))
            elif kind == "sigma_delta":
                neurons.append(LoihiSigmaDelta(
                    name=d["name"], size=d["size"], vth=d["vth"],
                    bias=(None if d.get("bias") is None
                          else arrays[d["bias"]]),
                    act_mode=d["act_mode"], cum_error=d["cum_error"],
                    spike_exp=d["spike_exp"], state_exp=d["state_exp"],
                    probe=d["probe"]))
            else:
                raise ValueError(f"{dirpath}: unknown neuron kind {kind!r}")
        synapses = []
        for d in doc["synapses"]:
            kind = d.get("kind", "dense")
            if kind == "dense":
                synapses.append(LoihiDense(
                    name=d["name"], src=d["src"], dst=d["dst"],
                    weights=arrays[d["weights"]],
                    weight_exp=d["weight_exp"],
                    num_weight_bits=d["num_weight_bits"],
                    num_message_bits=d.get("num_message_bits", 0),
                    delays=(None if d.get("delays") is None
                            else arrays[d["delays"]]),
                    sparse=d.get("sparse", False)))
            elif kind == "conv":
                synapses.append(LoihiConv(
                    name=d["name"], src=d["src"], dst=d["dst"],
                    weights=arrays[d["weights"]],
                    in_shape=tuple(d["in_shape"]),
                    stride=tuple(d["stride"]), padding=tuple(d["padding"]),
                    dilation=tuple(d["dilation"]), groups=d["groups"],
                    weight_exp=d["weight_exp"],
                    num_weight_bits=d["num_weight_bits"],
                    num_message_bits=d["num_message_bits"]))
            else:
                raise ValueError(f"{dirpath}: unknown synapse kind {kind!r}")
        prog = cls(n_inputs=doc["n_inputs"], neurons=neurons,
                   synapses=synapses,
                   input_message_bits=doc.get("input_message_bits", 0))
        prog.validate()
        return prog


def _atomic_write(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same dir + replace."""
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=d)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


__all__ = ["LoihiLIF", "LoihiSigmaDelta", "LoihiDense", "LoihiConv",
           "LoihiProgram", "INPUT", "FORMAT_NAME", "FORMAT_VERSION",
           "SUPPORTED_VERSIONS"]
