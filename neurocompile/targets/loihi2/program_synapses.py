"""Connections of the Loihi 2 program format and their integer rules.

:class:`LoihiDense` (Lava ``Dense``, ``Sparse``, ``DelayDense``,
``DelaySparse``) and :class:`LoihiConv` (Lava ``Conv``): widths as class
attributes, the weight rule (:func:`weight_truncation`) and the conv output
rule (:func:`conv_output`) defined once here.

Standard library and numpy only, relative imports only (the Lava
interpreter loads the program layer by path; see :mod:`.program_base`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from .program_base import (
    INT32_MAX,
    INT32_MIN,
    MAX_SIZE,
    _check_bool,
    _check_int,
    _check_int_array,
    _check_name,
    signed_range,
    wrap_bits,
)


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
        lo, hi, k, sign = weight_truncation(self.sign_mode(),
                                            int(self.num_weight_bits))
        m = np.clip(w, lo, hi) * sign
        return ((m >> k) << k) * sign


def weight_truncation(mode: str, num_weight_bits: int):
    """Lava's weight rule for one sign mode: ``(lo, hi, k, sign)``.

    The effective weight of a raw weight ``w`` is ``((m >> k) << k) * sign``
    with ``m = clip(w, lo, hi) * sign``: MIXED clips to ``[-256, 255]`` and
    drops ``k = 8 - num_weight_bits + 1`` bits, EXCITATORY ``[0, 255]`` and
    INHIBITORY ``[-255, 0]`` drop ``8 - num_weight_bits`` (INHIBITORY on
    ``-w``, i.e. toward zero).  The numba kernel applies the same tuple.
    """
    full = 1 << LoihiDense.WEIGHT_BITS
    k = LoihiDense.WEIGHT_BITS - int(num_weight_bits)
    if mode == "mixed":
        return -full, full - 1, k + 1, 1
    if mode == "inhibitory":
        return -(full - 1), 0, k, -1
    return 0, full - 1, k, 1


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
            _check_int(owner, "in_shape", v, 1, MAX_SIZE)
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
                         *signed_range(self.WEIGHT_BITS))
        out = self.out_shape()
        if min(out[1:]) < 1:
            raise ValueError(f"{owner}: output shape {out} is empty (check "
                             f"in_shape, kernel, stride, padding, dilation)")

    def lava_weights(self) -> np.ndarray:
        """The kernel in Lava's layout ``(C_out, kW, kH, C_in//groups)``,
        flipped so that Lava's true convolution equals PyTorch's conv2d."""
        w = np.asarray(self.weights)
        return np.ascontiguousarray(w.transpose(0, 3, 2, 1)[:, ::-1, ::-1, :])


def conv_output(acc: np.ndarray) -> np.ndarray:
    """What Lava's fixed_pt Conv sends for the exact sums ``acc`` (int64).

    numpy's float64 -> int32 cast turns a value outside int32 into
    ``-2**31`` (the x86 result); then the signed 24-bit wrap
    (``LoihiConv.OUT_BITS``).
    """
    acc = np.where((acc < INT32_MIN) | (acc > INT32_MAX), INT32_MIN, acc)
    return wrap_bits(acc, LoihiConv.OUT_BITS)


__all__ = ["LoihiDense", "LoihiConv", "weight_truncation", "conv_output"]
