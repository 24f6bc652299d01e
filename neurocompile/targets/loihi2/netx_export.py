"""Write a Loihi 2 program as a lava-dl netx network file (``.net``, HDF5).

``lava.lib.dl.netx.hdf5.Network`` (lava-dl 0.6.0) builds Lava processes from the file; the file
layout and netx's rules are documented in :mod:`neurocompile.frontends.netx` (the reader). This
module inverts them, so that netx hands Lava exactly the program's integers:

* a group (:class:`LoihiLIF`) becomes a ``dense`` layer with a ``CUBA`` neuron: netx sets
  ``du = iDecay - 1``, ``dv = vDecay``, ``vth = vThMant``, ``bias_mant = int(bias)`` and
  ``bias_exp = 6``, so we store ``iDecay = du + 1``, ``vDecay = dv``, ``vThMant = vth`` and
  ``bias = (bias_mant << bias_exp) / 64`` (only when that is an integer of 13 bits);
* its incoming :class:`LoihiDense` becomes the layer's ``weight``: netx truncates the stored
  floats to integers ``S`` and prepares them with ``optimize_weight_bits`` into
  ``(S << s, num_weight_bits, weight_exp = -s)``; Lava's Dense then applies its sign-mode
  truncation. What reaches ``u`` is ``S`` itself, so we store ``S = W_eff * 2**weight_exp`` (the
  program's effective weights) and check, with netx's rule restated below, that the weights netx
  prepares are exactly ``W_eff`` with exponent ``weight_exp`` (or ``W_eff * 2**j`` with
  ``weight_exp - j``: every sum then shifts to the same integers, per delay class too). Hence
  ``weight_exp > 0``, or ``W_eff * 2**weight_exp`` not an integer, has no netx form;
* ``delays`` become the layer's ``delay`` (per output neuron or per input when uniform, else
  the full matrix; netx clips at 62);
* a group fed by a :class:`LoihiConv` becomes a ``conv`` layer (same neuron). netx's
  ``create_conv`` does *not* call ``optimize_weight_bits``: it reads the kernel as integers
  (``astype(int)``), flips it and transposes it to Lava's ``(C_out, kW, kH, C_in)``
  (``weight[:, :, ::-1, ::-1].transpose(0, 3, 2, 1)``, exactly :meth:`LoihiConv.lava_weights`) and
  hands it to Lava's Conv with the defaults ``weight_exp = 0``, ``num_weight_bits = 8``, which
  Lava's fixed_pt Conv ignores anyway. So the file holds the program's kernel as is, in PyTorch's
  ``(C_out, C_in // groups, kH, kW)`` layout (plus SLAYER's trailing time axis of 1), and
  ``stride``/``padding``/``dilation`` as (H, W) pairs (netx reverses them to (W, H)), ``groups``
  as a scalar (Lava requires one), ``shape`` (C, H, W) (netx reverses it to (W, H, C)). The
  program's kernel must be within the 8-bit synapse range (``-256..255``; ``-255..0`` when
  all non-positive), its ``weight_exp`` 0 and ``num_weight_bits`` 8 (netx's conv layer has no
  fields for them), and its bias per channel (netx broadcasts a bias of ``C`` values over its
  (W, H, C) neurons; a per-neuron bias would be read in (W, H, C) order by netx but (C, H, W) by
  the reader). The ``input`` layer then has the first conv's ``(C, H, W)`` shape, and a
  ``flatten`` layer goes before the first dense layer after a conv (netx flattens the (W, H, C)
  spikes in (C, H, W) order, the program's order).

The program must be a chain fed by the binary external input: input -> conv+LIF ... -> dense+LIF
... (convs first: netx has no (C, H, W) shape after a dense layer). Anything else is an error
naming the group or synapse: the bias-clock helper groups (``_clock*``, which the lowering adds
for Affine biases), split-weight residual matrices, recurrent or branching connections, several
synapses into one group, a conv after a dense layer or whose input shape is not its source's,
conv kernels outside the 8-bit range, sigma-delta groups, graded messages.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from neurocompile.errors import NeuroCompileError, UnsupportedError
from neurocompile.targets.loihi2.program import INPUT, LoihiConv, LoihiDense, LoihiLIF, LoihiProgram
from neurocompile.utils.atomic import atomic_path
from neurocompile.utils.outputs import FILE_KINDS, HDF5_MARKER

NETX_BIAS_EXP = 6
NETX_MAX_DELAY = 62
CLOCK_PREFIX = "_clock"


# ------------------------------------------------------------------ netx's weight rule
def netx_prepare(stored: np.ndarray) -> tuple[np.ndarray, int, int]:
    """netx's ``utils.optimize_weight_bits`` on the stored weights (after its ``astype(int)``):
    ``(weights, num_weight_bits, weight_exp)`` as handed to Lava's Dense (lava-dl 0.6.0, restated;
    only for weights it handles without clipping: the caller checks the range)."""
    w = np.asarray(stored, dtype=np.float64).astype(np.int64)
    wmax, wmin = int(w.max()), int(w.min())
    if wmax < 0:
        scale, signed = -256 / wmin, 0
    elif wmin >= 0:
        scale, signed = 255 / wmax, 0
    else:
        scale, signed = min(127 / wmax, -128 / wmin), 1
    s = int(np.floor(np.log2(scale))) + signed
    n = 8
    while n > 0 and np.sum(np.abs(w / 2 ** n - np.round(w / 2 ** n))) != 0:
        n -= 1
    n -= signed
    return np.left_shift(w, s), int(8 - s - n), int(-s)


def _stored_weights(d: LoihiDense, group: str) -> np.ndarray:
    """The integers to store for ``d`` so that netx prepares the program's weights (see module)."""
    w_eff = d.effective_weights()
    exp = int(d.weight_exp)
    where = f"synapse '{d.name}' into group '{group}'"
    if not np.any(w_eff):
        raise UnsupportedError(f"{where}: all weights are 0, which netx's weight preparation cannot handle "
                               "(log2 of an infinite scale)")
    if exp > 0:
        raise UnsupportedError(f"{where}: weight_exp={exp} > 0 has no netx form (netx derives weight "
                               "exponents <= 0 from 8-bit integer weights): recompile with --max-weight-exp 0")
    if np.any(w_eff % (1 << -exp)):
        raise UnsupportedError(f"{where}: weights * 2**{exp} are not integers (netx stores integer weights "
                               "and derives the exponent itself)")
    s = w_eff >> -exp
    lo, hi = (-256, 254) if (s.min() < 0 < s.max()) else (-256, 255)
    if s.min() < lo or s.max() > hi:
        raise UnsupportedError(f"{where}: weights * 2**weight_exp span {s.min()}..{s.max()}, outside "
                               f"netx's 8-bit range {lo}..{hi}")
    w, nwb, e = netx_prepare(s)
    back = LoihiDense(name=d.name, src=d.src, dst=d.dst, weights=w, weight_exp=e, num_weight_bits=nwb)
    try:
        back.validate()
        eff = back.effective_weights()
    except ValueError as err:
        raise UnsupportedError(f"{where}: netx would prepare weights Lava rejects ({err})") from None
    j = exp - e
    if j < 0 or not np.array_equal(eff, w_eff << j):
        raise UnsupportedError(f"{where}: netx's weight preparation does not give back the program's "
                               f"integers (weight_exp {exp} -> {e})")
    return s


def _bias(n: LoihiLIF) -> np.ndarray:
    b = n.effective_bias()
    if np.any(b % (1 << NETX_BIAS_EXP)):
        raise UnsupportedError(f"group '{n.name}': bias {n.bias_mant.min()}..{n.bias_mant.max()} << bias_exp "
                               f"{n.bias_exp} is not a multiple of 64 (netx fixes bias_exp = 6)")
    m = b >> NETX_BIAS_EXP
    bits = LoihiLIF.BIAS_MANT_BITS
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if m.min() < lo or m.max() > hi:
        raise UnsupportedError(f"group '{n.name}': bias {m.min()}..{m.max()} (in units of 64) does not fit "
                               "netx's 13-bit bias_mant")
    return m


def _delay(d: LoihiDense):
    if d.delays is None or not np.any(d.delays):
        return None
    dl = np.asarray(d.delays, dtype=np.int64).copy()
    dl[d.effective_weights() == 0] = 0  # a delay on a zero weight carries nothing
    if dl.max() > NETX_MAX_DELAY:
        raise UnsupportedError(f"synapse '{d.name}': delay {dl.max()} > {NETX_MAX_DELAY} (netx clips at "
                               f"{NETX_MAX_DELAY})")
    if np.all(dl == dl[:, :1]):
        return dl[:, 0]
    if np.all(dl == dl[:1, :]) and dl.shape[1] != dl.shape[0]:
        return dl[0]
    return dl


# ------------------------------------------------------------------ the chain
def chain(program: LoihiProgram) -> list[tuple[LoihiLIF, LoihiDense | LoihiConv]]:
    """The program as netx layers, in order: (group, its incoming dense or conv); or an error naming
    the group or synapse that netx cannot express."""
    for n in program.neurons:
        if n.name.startswith(CLOCK_PREFIX):
            raise UnsupportedError(f"group '{n.name}' is the bias clock the Loihi 2 lowering adds for Affine "
                                   "biases; netx has no such layer (compile without synapse biases, or use "
                                   "neuron biases / v_leak)")
        if not isinstance(n, LoihiLIF):
            raise UnsupportedError(f"group '{n.name}' is a {type(n).__name__}; only CUBA LIF groups are "
                                   "exported to netx")
    if int(program.input_message_bits) != 0:
        raise UnsupportedError(f"graded external input (input_message_bits={program.input_message_bits}) is "
                               "not exported to netx (binary input only)")
    into: dict[str, list] = {n.name: [] for n in program.neurons}
    for s in program.synapses:
        if int(s.num_message_bits) != 0:
            raise UnsupportedError(f"synapse '{s.name}' carries graded messages; netx CUBA layers send binary "
                                   "spikes")
        into[s.dst].append(s)
    for name, syns in into.items():
        if len(syns) > 1:
            fine = [s.name for s in syns if s.name.endswith(".fine")]
            why = (f"'{fine[0]}' is a split-weight residual matrix (compile without --split-weights)" if fine
                   else "synapses " + ", ".join(f"'{s.name}'" for s in syns))
            raise UnsupportedError(f"group '{name}' has {len(syns)} incoming synapses ({why}); a netx layer "
                                   "has one")
        if not syns:
            raise UnsupportedError(f"group '{name}' has no incoming synapse; a netx layer needs one")
    out, prev, seen = [], INPUT, set()
    while True:
        nxt = [s for s in program.synapses if s.src == prev]
        if not nxt:
            break
        if len(nxt) > 1:
            raise UnsupportedError(f"'{prev}' feeds {len(nxt)} synapses ("
                                   + ", ".join(f"'{s.name}'" for s in nxt) + "); netx layers form a chain")
        (s,) = nxt
        if s.dst in seen or s.dst == prev:
            raise UnsupportedError(f"synapse '{s.name}' from '{s.src}' to '{s.dst}' is recurrent; netx layers "
                                   "form a feed-forward chain")
        seen.add(s.dst)
        out.append((program.neuron(s.dst), s))
        prev = s.dst
    missing = [n.name for n in program.neurons if n.name not in seen]
    if missing:
        raise UnsupportedError(f"group '{missing[0]}' is not on the chain from the input; netx layers form "
                               "one chain input -> conv/dense -> ...")
    return out


def _conv_weights(c: LoihiConv, group: str) -> np.ndarray:
    """The kernel to store for ``c``: the program's, as is (see module), or an error."""
    where = f"group '{group}' (conv '{c.name}')"
    if int(c.weight_exp) != 0 or int(c.num_weight_bits) != 8:
        raise UnsupportedError(f"{where}: weight_exp={c.weight_exp}, num_weight_bits={c.num_weight_bits}; a netx "
                               "conv layer always gives Lava's Conv weight_exp=0, num_weight_bits=8")
    w = np.asarray(c.weights, dtype=np.int64)
    lo, hi = (-(1 << 8) + 1, 0) if w.max() <= 0 < -w.min() else (-(1 << 8), (1 << 8) - 1)
    if w.min() < lo or w.max() > hi:
        raise UnsupportedError(f"{where}: kernel spans {w.min()}..{w.max()}, outside the 8-bit synapse range "
                               f"{lo}..{hi} of a netx conv layer")
    return w


def _conv_bias(n: LoihiLIF, c: LoihiConv) -> np.ndarray:
    """The group's bias as netx's per-channel conv bias (C values), or an error."""
    m = _bias(n).reshape(c.out_shape()[0], -1)
    if np.any(m != m[:, :1]):
        raise UnsupportedError(f"group '{n.name}': its bias differs within a conv channel; a netx conv layer "
                               "holds one bias per channel")
    return m[:, 0]


def _neuron(n: LoihiLIF) -> dict:
    return {"type": "CUBA", "iDecay": int(n.du) + 1, "vDecay": int(n.dv), "vThMant": int(n.vth),
            "refDelay": 1, "gradedSpike": False}


def layers(program: LoihiProgram) -> list[dict]:
    """The netx layers (dicts of datasets) for ``program``; errors name the group or synapse."""
    program.validate()
    links = chain(program)
    first = links[0][1] if links else None
    in_shape = tuple(int(v) for v in first.in_shape) if isinstance(first, LoihiConv) else (int(program.n_inputs),)
    result = [{"type": "input", "shape": np.array(in_shape, dtype=np.int64)}]
    shape = in_shape  # the (C, H, W) or (N,) shape of the previous layer's output
    for n, d in links:
        if isinstance(d, LoihiConv):
            if tuple(d.in_shape) != shape:
                why = ("it follows a dense layer (netx's dense output has no (C, H, W) shape)" if len(shape) == 1
                       else f"its source's shape is {shape}")
                raise UnsupportedError(f"group '{n.name}' (conv '{d.name}'): input shape {tuple(d.in_shape)}, but "
                                       f"{why}")
            w = _conv_weights(d, n.name)
            shape = tuple(int(v) for v in d.out_shape())
            lay = {"type": "conv", "shape": np.array(shape, dtype=np.int64),
                   "weight": w[..., None].astype(np.float32),
                   "stride": np.array(d.stride, dtype=np.int64), "padding": np.array(d.padding, dtype=np.int64),
                   "dilation": np.array(d.dilation, dtype=np.int64), "groups": np.int64(d.groups),
                   "kernelSize": np.array(w.shape[2:], dtype=np.int64), "inChannels": np.int64(d.in_shape[0]),
                   "outChannels": np.int64(w.shape[0]), "neuron": _neuron(n)}
            bias = _conv_bias(n, d)
        else:
            if len(shape) > 1:
                result.append({"type": "flatten"})
            shape = (int(n.size),)
            lay = {"type": "dense", "shape": np.array(shape, dtype=np.int64),
                   "weight": _stored_weights(d, n.name).astype(np.float32), "neuron": _neuron(n)}
            bias = _bias(n)
            delay = _delay(d)
            if delay is not None:
                lay["delay"] = delay.astype(np.float32)
        if np.any(bias):
            lay["bias"] = bias.astype(np.float32)
        result.append(lay)
    return result


def _write(f, lays: list[dict]) -> None:
    root = f.create_group("layer")
    for i, lay in enumerate(lays):
        g = root.create_group(str(i))
        for k, v in lay.items():
            if k == "type":
                g[k] = np.array([v.encode()], dtype="S10")
            elif k == "neuron":
                ng = g.create_group("neuron")
                for nk, nv in v.items():
                    if nk == "type":
                        ng[nk] = np.array([nv.encode()], dtype="S10")
                    elif isinstance(nv, bool):
                        ng[nk] = nv
                    else:
                        ng[nk] = np.int64(nv)
            else:
                g[k] = v


def write_netx(program: LoihiProgram, path: str | Path, *, source: str | None = None) -> Path:
    """Write ``program`` as a netx ``.net`` file at ``path`` (atomically; the caller has claimed
    the path). Errors are one-line :class:`NeuroCompileError` naming ``source`` and the group."""
    import h5py


    try:
        lays = layers(program)
    except NeuroCompileError as err:
        raise err.with_context(file=source)
    except ValueError as err:
        raise NeuroCompileError(f"invalid Loihi 2 program: {err}", file=source) from None
    path = Path(path)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            _write(f, lays)
            f.attrs["generator"] = "neurocompile export --format netx"
            f.attrs[HDF5_MARKER] = FILE_KINDS["netx"]
    return path


def describe(program: LoihiProgram) -> str:
    """One line: the exported layers."""
    parts = []
    for n, d in chain(program):
        if isinstance(d, LoihiConv):
            parts.append(f"{n.name}(conv {'x'.join(str(v) for v in d.out_shape())})")
        else:
            parts.append(f"{n.name}({n.size}" + (f", delays<={d.max_delay()}" if d.delays is not None else "") + ")")
    return f"input({program.n_inputs}) -> " + " -> ".join(parts)


__all__ = ["write_netx", "layers", "chain", "netx_prepare", "describe"]
