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
conv kernels outside the 8-bit range, graded messages.

Sigma-delta (SDNN) programs
---------------------------
A program of :class:`LoihiSigmaDelta` groups becomes a netx SDNN network, the inverse of
:func:`neurocompile.frontends.netx.build_sdnn_graph` (same chain rules, dense weights, delays,
conv kernels and flatten as above):

* the host's input encoding (the artifact's ``payload["io"]``, passed as ``io``) becomes the
  ``input`` layer: a Delta encoder (``encoding = "delta"``, scale 64, one threshold ``64 vThMant``,
  no cumulative error, 16-bit messages) is an input layer with an SDNN neuron of that
  ``vThMant`` (netx's ``Delta`` with ``spike_exp = state_exp = 6``); 0/1 spike input
  (``input_message_bits = 0``) an input layer without a neuron;
* a ReLU group with ``spike_exp = state_exp = 6`` (netx's fixed exponents: netx.hdf5.Network's
  default ``spike_exp`` is assumed, as the reader does) and no ``cum_error`` becomes an SDNN layer
  with ``vThMant = vth`` and its ``bias`` (per neuron, or per channel for a conv layer);
* the last group may be netx's ``Sigma`` (``sigma_output``): unit activation, ``spike_exp =
  state_exp = 0``, ``vth = 0``, no bias (its messages are the increments of netx's output);
* every graded message is 16 bits: netx's ``NetDict`` cannot read a ``messageBits`` dataset
  (lava-dl 0.6.0 fails on one), so netx always uses its default of 16 and the file holds none.

Programs from neurocompile's own sigma-delta quantizer (ONNX ``method="sigma_delta"``) choose
their own exponents, thresholds in other units and 24-bit messages: refused, naming the group.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from neurocompile.errors import NeuroCompileError, UnsupportedError
from neurocompile.targets.loihi2.program import (
    INPUT,
    LoihiConv,
    LoihiDense,
    LoihiLIF,
    LoihiProgram,
    LoihiSigmaDelta,
)
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
    live = d.effective_weights() != 0  # a delay on a zero weight carries nothing
    dl = np.where(live, np.broadcast_to(np.asarray(d.delays, dtype=np.int64), live.shape), 0)
    if dl.max() > NETX_MAX_DELAY:
        raise UnsupportedError(f"synapse '{d.name}': delay {dl.max()} > {NETX_MAX_DELAY} (netx clips at "
                               f"{NETX_MAX_DELAY})")
    row = dl.max(axis=1)  # per output neuron, if every live synapse of a row has the same delay
    if np.array_equal(np.where(live, row[:, None], 0), dl):
        return row
    col = dl.max(axis=0)  # per input (netx reads a 1-D delay of n_in != n_out values so)
    if np.array_equal(np.where(live, col[None, :], 0), dl) and dl.shape[1] != dl.shape[0]:
        return col
    return dl


# ------------------------------------------------------------------ the chain
def chain(program: LoihiProgram) -> list[tuple[LoihiLIF | LoihiSigmaDelta, LoihiDense | LoihiConv]]:
    """The program as netx layers, in order: (group, its incoming dense or conv); or an error naming
    the group or synapse that netx cannot express."""
    for n in program.neurons:
        if n.name.startswith(CLOCK_PREFIX):
            raise UnsupportedError(f"group '{n.name}' is the bias clock the Loihi 2 lowering adds for Affine "
                                   "biases; netx has no such layer (compile without synapse biases, or use "
                                   "neuron biases / v_leak)")
    sdnn = bool(program.neurons) and all(isinstance(n, LoihiSigmaDelta) for n in program.neurons)
    for n in program.neurons:
        if not isinstance(n, LoihiSigmaDelta if sdnn else LoihiLIF):
            raise UnsupportedError(f"group '{n.name}' is a {type(n).__name__}; netx layers are all CUBA LIF or "
                                   "all sigma-delta (SDNN) groups")
    if not sdnn and int(program.input_message_bits) != 0:
        raise UnsupportedError(f"graded external input (input_message_bits={program.input_message_bits}) is "
                               "not exported to netx (binary input only)")
    into: dict[str, list] = {n.name: [] for n in program.neurons}
    for s in program.synapses:
        if not sdnn and int(s.num_message_bits) != 0:
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


# ------------------------------------------------------------------ sigma-delta (SDNN)
NETX_SD_EXP = 6          # netx: spike_exp (netx.hdf5.Network's default) = state_exp = 6 for every SDNN layer
NETX_SD_VTH_MAX = (1 << LoihiLIF.VTH_BITS) - 1   # the input Delta's vThMant (the reader's bound)
NETX_SD_BITS = 16        # netx's SDNN num_message_bits: its NetDict cannot read 'messageBits' (lava-dl 0.6.0)


def _sd_group(n: LoihiSigmaDelta, last: bool) -> bool:
    """Check that netx builds ``n`` exactly; True for netx's Sigma (``sigma_output``)."""
    where = f"group '{n.name}'"
    if n.cum_error:
        raise UnsupportedError(f"{where}: cum_error=True; netx runs its SigmaDelta layers without cumulative error")
    se, st = int(n.spike_exp), int(n.state_exp)
    if n.act_mode == "unit":
        bias = n.bias is not None and np.any(n.bias)
        if not last or (se, st) != (0, 0) or int(n.vth) != 0 or bias:
            raise UnsupportedError(f"{where}: unit activation (spike_exp={se}, state_exp={st}, vth={n.vth}"
                                   f"{', with a bias' if bias else ''}); netx's only non-ReLU layer is its Sigma "
                                   "(sigma_output): the last layer, spike_exp = state_exp = 0, vth 0, no bias")
        return True
    if (se, st) != (NETX_SD_EXP, NETX_SD_EXP):
        raise UnsupportedError(f"{where}: spike_exp={se}, state_exp={st}; netx runs every SDNN layer with "
                               f"spike_exp = state_exp = {NETX_SD_EXP} (a program from neurocompile's own "
                               "sigma-delta quantizer chooses its exponents and has no netx form)")
    return False


def _sd_input(program: LoihiProgram, io: dict | None, first: LoihiDense | LoihiConv) -> dict | None:
    """The input layer's SDNN neuron (netx's Delta encoder) for the host's encoding ``io``, or None
    for 0/1 spike input; an error when netx's Delta (spike_exp = state_exp = 6) cannot produce it."""
    bits = int(program.input_message_bits)
    enc = (io or {}).get("encoding", "spikes" if bits == 0 else None)
    if enc is None:
        raise UnsupportedError(f"graded external input (input_message_bits={bits}) without the host's input "
                               "encoding (the artifact's payload 'io'): netx's input is a Delta encoder or 0/1 spikes")
    if enc == "spikes":
        if bits != 0 or int(first.num_message_bits) != 0:
            raise UnsupportedError(f"input sent as graded values (input_message_bits={bits}) without a Delta "
                                   "encoder; netx's SDNN input is a Delta encoder or 0/1 spikes")
        return None
    if enc != "delta":
        raise UnsupportedError(f"the host's input encoding '{enc}' has no netx form (netx's SDNN input is a Delta "
                               "encoder or 0/1 spikes)")
    unit = 1 << NETX_SD_EXP
    vth = np.asarray(io.get("vth", []), dtype=np.int64).reshape(-1)
    why = None
    if float(io.get("scale", 0)) != unit:
        why = f"its input scale is {io.get('scale')}, netx's Delta sends 64 x (spike_exp = state_exp = 6)"
    elif bool(io.get("cum_error", False)):
        why = "it uses cumulative error; netx's Delta does not"
    elif vth.size != int(program.n_inputs) or np.any(vth != vth[:1]) or vth[0] % unit or vth[0] < 0 \
            or (vth[0] >> NETX_SD_EXP) > NETX_SD_VTH_MAX:
        why = f"its thresholds ({vth.min()}..{vth.max()}) are not one vThMant << 6 of 0..{NETX_SD_VTH_MAX}"
    elif {int(io.get("message_bits", -1)), bits, int(first.num_message_bits)} != {NETX_SD_BITS}:
        why = (f"its messages have {io.get('message_bits')} bits (the program's input {bits}, synapse "
               f"'{first.name}' {first.num_message_bits}); netx's Delta sends {NETX_SD_BITS}-bit messages")
    if why:
        raise UnsupportedError(f"the host's Delta input encoding has no netx form: {why}")
    return {"type": "SDNN", "activation": "relu", "vThMant": int(vth[0]) >> NETX_SD_EXP}


def _sd_neuron(n: LoihiSigmaDelta, sigma: bool) -> dict:
    cfg = {"type": "SDNN", "activation": "relu", "vThMant": int(n.vth)}
    if sigma:
        cfg["sigma_output"] = True
    return cfg


def _sd_layers(program: LoihiProgram, links: list, io: dict | None) -> list[dict]:
    last = len(links) - 1
    sigma = [_sd_group(n, k == last) for k, (n, _) in enumerate(links)]
    for k, (n, d) in enumerate(links[1:], start=1):  # the messages of group k-1 into synapse d
        bits = int(d.num_message_bits)
        if bits != NETX_SD_BITS:
            raise UnsupportedError(f"group '{links[k - 1][0].name}' sends {bits}-bit messages into synapse "
                                   f"'{d.name}'; netx's SDNN layers send {NETX_SD_BITS}-bit messages (lava-dl "
                                   "0.6.0 cannot read a file's 'messageBits')")
    first = links[0][1]
    in_shape = tuple(int(v) for v in first.in_shape) if isinstance(first, LoihiConv) else (int(program.n_inputs),)
    inp = {"type": "input", "shape": np.array(in_shape, dtype=np.int64)}
    neuron = _sd_input(program, io, first)
    if neuron is not None:
        inp["neuron"] = neuron
    result, shape = [inp], in_shape
    for k, (n, d) in enumerate(links):
        lay, shape = _synapse_layer(n, d, shape, result)
        lay["neuron"] = _sd_neuron(n, sigma[k])
        bias = np.zeros(n.size, np.int64) if n.bias is None else np.asarray(n.bias, dtype=np.int64)
        if isinstance(d, LoihiConv):
            bias = bias.reshape(d.out_shape()[0], -1)
            if np.any(bias != bias[:, :1]):
                raise UnsupportedError(f"group '{n.name}': its bias differs within a conv channel; a netx conv "
                                       "layer holds one bias per channel")
            bias = bias[:, 0]
        if np.any(bias):
            lay["bias"] = bias.astype(np.float32)
        result.append(lay)
    return result


def _synapse_layer(n, d, shape: tuple, result: list) -> tuple[dict, tuple]:
    """The layer datasets of ``d`` into group ``n`` (no neuron, no bias) and the new shape; a
    ``flatten`` layer is appended to ``result`` before the first dense layer after a conv."""
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
               "outChannels": np.int64(w.shape[0])}
        return lay, shape
    if len(shape) > 1:
        result.append({"type": "flatten"})
    shape = (int(n.size),)
    lay = {"type": "dense", "shape": np.array(shape, dtype=np.int64),
           "weight": _stored_weights(d, n.name).astype(np.float32)}
    delay = _delay(d)
    if delay is not None:
        lay["delay"] = delay.astype(np.float32)
    return lay, shape


def layers(program: LoihiProgram, io: dict | None = None) -> list[dict]:
    """The netx layers (dicts of datasets) for ``program``; errors name the group or synapse.
    ``io`` is the artifact's ``payload["io"]`` (the host's input encoding; sigma-delta programs)."""
    program.validate()
    links = chain(program)
    if links and isinstance(links[0][0], LoihiSigmaDelta):
        return _sd_layers(program, links, io)
    first = links[0][1] if links else None
    in_shape = tuple(int(v) for v in first.in_shape) if isinstance(first, LoihiConv) else (int(program.n_inputs),)
    result = [{"type": "input", "shape": np.array(in_shape, dtype=np.int64)}]
    shape = in_shape  # the (C, H, W) or (N,) shape of the previous layer's output
    for n, d in links:
        lay, shape = _synapse_layer(n, d, shape, result)
        lay["neuron"] = _neuron(n)
        bias = _conv_bias(n, d) if isinstance(d, LoihiConv) else _bias(n)
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
                    if isinstance(nv, str):
                        ng[nk] = np.array([nv.encode()], dtype="S10")
                    elif isinstance(nv, bool):
                        ng[nk] = nv
                    else:
                        ng[nk] = np.int64(nv)
            else:
                g[k] = v


def write_netx(program: LoihiProgram, path: str | Path, *, source: str | None = None,
               io: dict | None = None) -> Path:
    """Write ``program`` as a netx ``.net`` file at ``path`` (atomically; the caller has claimed
    the path). ``io``: the artifact's ``payload["io"]`` (needed for a sigma-delta program whose
    host delta-encodes the input). Errors are one-line :class:`NeuroCompileError` naming
    ``source`` and the group."""
    import h5py

    try:
        lays = layers(program, io)
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
    sd = any(isinstance(n, LoihiSigmaDelta) for n in program.neurons)
    for n, d in chain(program):
        if isinstance(d, LoihiConv):
            parts.append(f"{n.name}(conv {'x'.join(str(v) for v in d.out_shape())})")
        else:
            parts.append(f"{n.name}({n.size}" + (f", delays<={d.max_delay()}" if d.delays is not None else "") + ")")
    return ("SDNN " if sd else "") + f"input({program.n_inputs}) -> " + " -> ".join(parts)


__all__ = ["write_netx", "layers", "chain", "netx_prepare", "describe"]
