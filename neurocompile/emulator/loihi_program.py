"""Program format for Loihi-2 style fixed-point networks (LIF groups + Dense).

A :class:`LoihiProgram` is a plain description of integer parameters; it is
the common input of the numpy emulator (:mod:`neurocompile.emulator.loihi`)
and of the Lava harness (:mod:`neurocompile.backends.lava_runner`).  This
module only needs the standard library and numpy (>= 1.24, 1.x or 2.x), so it
imports both in the main interpreter and in the Lava interpreter.

On disk a program is a directory holding ``program.json`` (scalars, versioned)
and ``arrays.npz`` (integer arrays, loaded with ``allow_pickle=False``).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from typing import Dict, List

import numpy as np

FORMAT_NAME = "neurocompile.loihi_program"
FORMAT_VERSION = 1
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
class LoihiDense:
    """Dense synapses from ``src`` (``"input"`` or a LIF name) to LIF ``dst``.

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
    Dense into one LIF are summed in int32.

    Delay: the value computed from the spikes of step t is delivered to the
    destination at step t + 1 (each Dense sends its buffer from the previous
    step before computing the new one; the buffer starts at 0).  A hop from
    the external input or from a LIF therefore costs exactly one step.
    """

    name: str
    src: str
    dst: str
    weights: np.ndarray
    weight_exp: int = 0
    num_weight_bits: int = 8

    WEIGHT_BITS = 8          # raw weights: MIXED -256..255, else 0..+-255
    NUM_WEIGHT_BITS_MIN = 1
    NUM_WEIGHT_BITS_MAX = 8
    WEIGHT_EXP_MIN = -8      # 4-bit signed weight exponent
    WEIGHT_EXP_MAX = 7

    def sign_mode(self) -> str:
        """'excitatory', 'inhibitory' or 'mixed', as Lava detects it."""
        w = np.asarray(self.weights)
        if w.size == 0 or w.min() >= 0:
            return "excitatory"
        if w.max() <= 0:
            return "inhibitory"
        return "mixed"

    def validate(self) -> None:
        """Raise ValueError (naming the field) if a value is out of range.

        Shapes against the connected groups are checked by
        :meth:`LoihiProgram.validate`.
        """
        owner = f"LoihiDense({self.name!r})"
        if not isinstance(self.name, str) or not _NAME_RE.match(self.name):
            raise ValueError(f"{owner}.name must match {_NAME_RE.pattern}")
        _check_int(owner, "weight_exp", self.weight_exp,
                   self.WEIGHT_EXP_MIN, self.WEIGHT_EXP_MAX)
        _check_int(owner, "num_weight_bits", self.num_weight_bits,
                   self.NUM_WEIGHT_BITS_MIN, self.NUM_WEIGHT_BITS_MAX)
        w = np.asarray(self.weights)
        if w.ndim != 2:
            raise ValueError(f"{owner}.weights must be 2-D, got {w.ndim}-D")
        full = 1 << self.WEIGHT_BITS
        if w.size and self.sign_mode() == "inhibitory":
            lo, hi = -(full - 1), 0
        else:
            lo, hi = -full, full - 1
        _check_int_array(owner, "weights", w, w.shape, lo, hi)

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


@dataclass
class LoihiProgram:
    """A network: ``n_inputs`` external spike lines, LIF groups, Dense links.

    Every LIF's input is the int32 sum of the outputs of the Dense whose
    ``dst`` it is; a LIF with no incoming Dense only integrates its bias.
    """

    n_inputs: int
    neurons: List[LoihiLIF] = field(default_factory=list)
    synapses: List[LoihiDense] = field(default_factory=list)

    def neuron(self, name: str) -> LoihiLIF:
        """The LIF group called ``name`` (KeyError if absent)."""
        for n in self.neurons:
            if n.name == name:
                return n
        raise KeyError(name)

    def validate(self) -> None:
        """Check every field, unique names, src/dst existence and shapes."""
        _check_int("LoihiProgram", "n_inputs", self.n_inputs, 0, 1 << 24)
        sizes: Dict[str, int] = {}
        for n in self.neurons:
            if not isinstance(n, LoihiLIF):
                raise ValueError("LoihiProgram.neurons must hold LoihiLIF")
            n.validate()
            if n.name in sizes:
                raise ValueError(f"LoihiProgram.neurons: duplicate name "
                                 f"{n.name!r}")
            sizes[n.name] = int(n.size)
        seen = set()
        for s in self.synapses:
            if not isinstance(s, LoihiDense):
                raise ValueError("LoihiProgram.synapses must hold LoihiDense")
            s.validate()
            if s.name in seen:
                raise ValueError(f"LoihiProgram.synapses: duplicate name "
                                 f"{s.name!r}")
            seen.add(s.name)
            if s.src != INPUT and s.src not in sizes:
                raise ValueError(f"LoihiDense({s.name!r}).src={s.src!r} is "
                                 f"neither {INPUT!r} nor a LIF name")
            if s.dst not in sizes:
                raise ValueError(f"LoihiDense({s.name!r}).dst={s.dst!r} is "
                                 f"not a LIF name")
            src_size = self.n_inputs if s.src == INPUT else sizes[s.src]
            shape = (sizes[s.dst], src_size)
            if np.shape(s.weights) != shape:
                raise ValueError(
                    f"LoihiDense({s.name!r}).weights has shape "
                    f"{np.shape(s.weights)}, expected (dst_size, src_size)="
                    f"{shape}")

    # ------------------------------------------------------------ files
    def to_json_and_arrays(self):
        """Split into a JSON-able dict and a dict of int64 arrays."""
        arrays: Dict[str, np.ndarray] = {}
        neurons = []
        for i, n in enumerate(self.neurons):
            key = f"neuron{i}_bias_mant"
            arrays[key] = np.asarray(n.bias_mant, dtype=np.int64)
            neurons.append(dict(name=n.name, size=int(n.size), du=int(n.du),
                                dv=int(n.dv), vth=int(n.vth),
                                bias_exp=int(n.bias_exp),
                                probe=bool(n.probe), bias_mant=key))
        synapses = []
        for i, s in enumerate(self.synapses):
            key = f"synapse{i}_weights"
            arrays[key] = np.asarray(s.weights, dtype=np.int64)
            synapses.append(dict(name=s.name, src=s.src, dst=s.dst,
                                 weight_exp=int(s.weight_exp),
                                 num_weight_bits=int(s.num_weight_bits),
                                 weights=key))
        doc = {"format": FORMAT_NAME, "version": FORMAT_VERSION,
               "n_inputs": int(self.n_inputs), "neurons": neurons,
               "synapses": synapses}
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
        """Read a program written by :meth:`save` and validate it."""
        with open(os.path.join(dirpath, JSON_NAME), "rb") as f:
            doc = json.loads(f.read().decode())
        if doc.get("format") != FORMAT_NAME:
            raise ValueError(f"{dirpath}: not a {FORMAT_NAME} file")
        if doc.get("version") != FORMAT_VERSION:
            raise ValueError(f"{dirpath}: unsupported version "
                             f"{doc.get('version')!r} (want {FORMAT_VERSION})")
        with open(os.path.join(dirpath, NPZ_NAME), "rb") as f:
            blob = f.read()
        want = doc.get("arrays_sha256")
        if want is not None and hashlib.sha256(blob).hexdigest() != want:
            raise ValueError(f"{dirpath}: {NPZ_NAME} does not match "
                             f"{JSON_NAME} (checksum)")
        with np.load(io.BytesIO(blob), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        neurons = [LoihiLIF(name=d["name"], size=d["size"], du=d["du"],
                            dv=d["dv"], vth=d["vth"],
                            bias_mant=arrays[d["bias_mant"]],
                            bias_exp=d["bias_exp"], probe=d["probe"])
                   for d in doc["neurons"]]
        synapses = [LoihiDense(name=d["name"], src=d["src"], dst=d["dst"],
                               weights=arrays[d["weights"]],
                               weight_exp=d["weight_exp"],
                               num_weight_bits=d["num_weight_bits"])
                    for d in doc["synapses"]]
        prog = cls(n_inputs=doc["n_inputs"], neurons=neurons,
                   synapses=synapses)
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


__all__ = ["LoihiLIF", "LoihiDense", "LoihiProgram", "INPUT",
           "FORMAT_NAME", "FORMAT_VERSION"]
