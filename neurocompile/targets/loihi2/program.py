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

The program layer is split into modules (this one re-exports all public
names): :mod:`.program_base` (int32 primitives, checks),
:mod:`.program_neurons` (groups, their widths and the LIF / sigma-delta
integer rules), :mod:`.program_synapses` (connections, weight and conv
rules) and :mod:`.program_io` (files).  Every bit width is declared once, as
a class attribute of the group or connection whose state it bounds (e.g.
``LoihiLIF.U_BITS``, ``LoihiDense.WEIGHT_BITS``); the emulators read them
from there.  Relative imports only: the Lava interpreter loads these files
as a package by path (``lava/run_program.py``).
"""


from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Tuple, Union

import numpy as np

from . import program_io as _io
from .program_base import (
    INPUT,
    INT32_BITS,
    INT32_MAX,
    INT32_MIN,
    MAX_SIZE,
    _check_int,
    abs_int32,
    shift_exp,
    signed_range,
    wrap_bits,
    wrap_int32,
)
from .program_io import FORMAT_NAME, FORMAT_VERSION, JSON_NAME, NPZ_NAME, SUPPORTED_VERSIONS
from .program_neurons import (
    LoihiLIF,
    LoihiSigmaDelta,
    decay,
    delta_update,
    lif_clip_v,
    lif_step,
    lif_wrap_u,
    sigma_delta_activation,
    sigma_delta_step,
)
from .program_synapses import LoihiConv, LoihiDense, conv_output, weight_truncation

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

    INPUT_MESSAGE_BITS_MAX = INT32_BITS  # RingBuffer sends int32

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
            return signed_range(64)
        return signed_range(b)

    def validate(self) -> None:
        """Check every field, unique names, src/dst existence and shapes."""
        _check_int("LoihiProgram", "n_inputs", self.n_inputs, 0, MAX_SIZE)
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
    #: see :func:`.program_io.to_json_and_arrays`, ``save`` and ``load``
    to_json_and_arrays = _io.to_json_and_arrays
    save = _io.save
    load = classmethod(_io.load)


__all__ = ["LoihiLIF", "LoihiSigmaDelta", "LoihiDense", "LoihiConv",
           "LoihiProgram", "INPUT", "FORMAT_NAME", "FORMAT_VERSION",
           "SUPPORTED_VERSIONS", "JSON_NAME", "NPZ_NAME", "MAX_SIZE",
           "INT32_BITS", "INT32_MIN", "INT32_MAX", "signed_range",
           "wrap_int32", "wrap_bits", "abs_int32", "shift_exp", "decay",
           "lif_wrap_u", "lif_clip_v", "lif_step", "sigma_delta_activation",
           "delta_update", "sigma_delta_step", "weight_truncation",
           "conv_output", "Neuron", "Synapse"]
