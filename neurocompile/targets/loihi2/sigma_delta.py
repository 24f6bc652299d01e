"""Sigma-delta graphs on Loihi 2: ``SigmaDelta`` groups become ``LoihiSigmaDelta``, the synapses
graded Dense (``num_message_bits = 24``), the input's ``Delta`` encoder runs on the host.

Units
-----
Every group ``l`` has a *state unit* ``Q_l`` (integers of sigma/act/residue per float unit) and a
*message unit* ``M_l = Q_l / 2**state_exp_l`` (Lava sends ``out >> state_exp``); its integer
parameters are in units ``P_l = Q_l / 2**(state_exp_l + spike_exp_l)`` because Lava scales
``vth`` and ``bias`` by ``2**(spike_exp + state_exp)``. A Dense from ``pre`` to ``post`` must turn
messages (``M_pre`` units) into input of ``post``'s state (``Q_post`` units)::

    w * 2**weight_exp = W * Q_post / M_pre
                      = W * (P_post / P_pre) * 2**(state_exp_post + spike_exp_post - spike_exp_pre)

which is the unit rule ``w 2**e = W 2**(state_exp_post + spike_exp_post - spike_exp_pre)`` for
weights ``W`` rescaled by the ratio of the two groups' parameter units.

Choices (from calibration statistics of the float graph, or weight bounds without data):

* ``Q_l``: as large as ``margin * max(|sigma|, |act|) * Q_l < 2**23`` allows (24-bit state on the
  chip), lowered if a Dense into ``l`` would need ``weight_exp > 7``, and then lowered to the value
  at which the largest weight of the main incoming Dense is exactly 254 at some exponent (a power
  of two could leave it anywhere in (127, 254]).
* ``state_exp_l``: the smallest value at which (a) messages fit the 24-bit graded payload and (b)
  no Dense out of ``l`` can overflow int32 (Lava sums ``w * m`` in int32 *before* the exponent
  shift): ``256 * max_i sum_j |W_ij| / max|W| * D_j * M_l < 2**31`` with ``D_j`` the largest
  message (times ``margin``). The bits below the message unit are what ``out >> state_exp``
  drops; the residue keeps them at state resolution.
* ``spike_exp = 0``: in Lava's model it only coarsens ``vth`` and ``bias`` (both are scaled by
  ``2**(spike_exp + state_exp)`` and nothing else), so 0 keeps them at full resolution.
* ``weight_exp``: as for LIF Dense, the smallest exponent at which the largest weight fits 8 bits.

Input: the host delta-encodes
-----------------------------
A ``Delta`` right after the Input runs on the host, in integers, exactly as Lava's
``PyDeltaModelFixed`` with ``spike_exp = state_exp = 0``: the input is quantized to
``round(x * M_in)`` and its messages are sent to the chip as graded input
(``input_message_bits = 24``) into the first Dense. Only the messages cross the chip's I/O
link -- the point of delta encoding -- where an on-chip encoder (a unit-mode ``LoihiSigmaDelta``)
would need the host to send every change of the input (its sigma decoder integrates), plus one
more group and one more step of latency. Without a Delta, the quantized input values themselves are
sent every step (the first group integrates them, as in the graph).

Outputs: a group's messages, divided by ``M_l``, are the float graph's messages; summed over
time they decode the readout's value (see :mod:`neurocompile.ir.readout`).

Not lowered (an error names the node): LIF groups in the same graph, recurrent connections,
an Affine's bias into a sigma-delta group (it would be integrated every step), per-neuron
thresholds, convolutions (dense form folds them for sigma-delta graphs).
"""
from __future__ import annotations

import math

import numpy as np

from neurocompile.errors import NeuroCompileError, UnsupportedError
from neurocompile.ir import nodes as N
from neurocompile.ir.graph import Graph
from neurocompile.passes.activity import activity_stats
from neurocompile.targets.loihi2.connections import check_delays, incoming, look_through
from neurocompile.targets.loihi2.program import INT32_MAX, LoihiDense, LoihiProgram, LoihiSigmaDelta
from neurocompile.targets.loihi2.program import LoihiDense as _Dense
from neurocompile.targets.loihi2.program import LoihiSigmaDelta as _SD
from neurocompile.targets.loihi2.weights import LayerQuant, quantize_weights

# widths from the program format (one definition there)
MESSAGE_BITS = _Dense.NUM_MESSAGE_BITS_MAX
MSG_MAX = (1 << (MESSAGE_BITS - 1)) - 1
STATE_MAX = _SD.STATE_MAX
SUM_MAX = INT32_MAX
EXP_MAX = _SD.EXP_MAX
W_EXP_MAX = _Dense.WEIGHT_EXP_MAX


def check_sdn(graph: Graph) -> None:
    back = graph.recurrent_edges()
    if back:
        s, d = sorted(back)[0]
        raise UnsupportedError("recurrent sigma-delta networks are not lowered to Loihi 2 yet", node=d)
    for name, node in graph.nodes.items():
        if isinstance(node, (N.Input, N.Output, N.Linear, N.Delay, N.SigmaDelta, N.Flatten)):
            pass
        elif isinstance(node, N.Delta):
            preds = graph.predecessors(name)
            if len(preds) != 1 or not isinstance(graph.nodes[preds[0]], N.Input):
                raise UnsupportedError("a Delta encoder is run by the host: it must read the Input directly",
                                       node=name)
            if not all(isinstance(graph.nodes[d], (N.Linear, N.Delay)) for d in graph.successors(name)):
                raise UnsupportedError("a Delta encoder must feed synapse matrices", node=name)
        elif node.is_neuron:  # SigmaDelta is handled above: a LIF-type group
            raise UnsupportedError("LIF-type groups and sigma-delta groups in one network are not lowered "
                                   "to Loihi 2 yet", node=name)
        else:
            raise UnsupportedError(f"{node.op} has no Loihi 2 lowering in a sigma-delta network", node=name)
        if isinstance(node, N.Affine) and np.any(node.bias):
            raise UnsupportedError("an Affine bias into a sigma-delta group is integrated every step; "
                                   "put it on the SigmaDelta (bias=)", node=name)
        if isinstance(node, N.Output):
            src = look_through(graph, graph.predecessors(name)[0])
            if not isinstance(graph.nodes[src], N.SigmaDelta):
                raise UnsupportedError(f"an Output must read a sigma-delta group, not {graph.nodes[src].op}",
                                       node=name)
    check_delays(graph)


def _scalar(node: N.Node, name: str, field: str) -> float:
    v = np.ravel(getattr(node, field))
    if v.size and np.ptp(v) > 1e-12 * max(1.0, float(np.abs(v).max())):
        raise UnsupportedError(f"Loihi 2 sigma-delta groups have one {field} per group; this one has "
                               f"per-neuron values", node=name)
    return float(v[0]) if v.size else 0.0


def sdn_stats(graph: Graph, x, margin: float) -> dict[str, dict]:
    """Per SigmaDelta group: ``state`` (largest |sigma|, |act|) and ``msg`` (per-neuron largest
    |message|), times ``margin``; for the Input: ``value`` and ``msg`` (what the host sends)."""
    shapes = graph.infer_shapes()
    (inp,) = graph.inputs
    deltas = [n for n in graph.successors(inp) if isinstance(graph.nodes[n], N.Delta)]
    groups = [n for n in graph.order() if isinstance(graph.nodes[n], N.SigmaDelta)]
    out: dict[str, dict] = {}
    if x is not None:

        probes = [f"{n}.{v}" for n in groups for v in ("sigma", "act")] + groups + deltas + [inp]
        peak = activity_stats(graph, x, probes)
        n_in = int(np.prod(shapes[inp]))
        value = float(peak[inp].max()) if peak[inp].size else 0.0
        msg = peak[deltas[0]] if deltas else np.full(n_in, value)
        out[inp] = {"value": value * margin, "msg": msg * margin, "observed": True}
        for n in groups:
            state = max(float(peak[f"{n}.sigma"].max()), float(peak[f"{n}.act"].max()))
            out[n] = {"state": state * margin, "observed": True, "msg": peak[n] * margin}
        return out
    # bounds: inputs assumed in [-1, 1]; sigma <= sum |W| (act_pre + vth_pre)
    n_in = int(np.prod(shapes[inp]))
    out[inp] = {"value": 1.0, "msg": np.full(n_in, 2.0), "observed": False}
    act = {inp: np.ones(n_in)}
    for d in deltas:
        act[d] = np.ones(n_in) + _scalar(graph.nodes[d], d, "vth")
    for n in groups:
        node = graph.nodes[n]
        size = int(np.prod(shapes[n]))
        sigma = np.zeros(size)
        for c in incoming(graph, n, shapes):
            sigma = sigma + np.abs(c.node.weight) @ act[c.src_node]
        a = sigma + np.abs(np.broadcast_to(node.bias, (size,)))
        vth = _scalar(node, n, "vth")
        act[n] = a + vth
        msg = (a if node.act == "relu" else 2 * a) + vth
        out[n] = {"state": float(max(sigma.max(), a.max())) * margin, "msg": msg * margin, "observed": False}
    return out


def _pow2_floor(v: float) -> float:
    return 2.0 ** math.floor(math.log2(v))


def _aligned_unit(cap: float, conns, M: dict) -> float:
    """The largest state unit <= cap at which the main incoming Dense (most nonzeros) reaches the
    full 8-bit mantissa at some exponent (``max|W| Q / M_pre / 2**e`` = 254): with powers of two
    the largest weight could sit anywhere in (127, 254]."""
    mats = [(c.node.weight, M[c.src_node]) for c in conns if np.any(c.node.weight)]
    if not mats:
        return _pow2_floor(cap)
    W, m_pre = max(mats, key=lambda wm: np.count_nonzero(wm[0]))
    r = float(np.abs(W).max()) / m_pre          # weight per state unit
    e = math.floor(math.log2(cap * r / 254))
    if e < -8:  # even the smallest exponent leaves the weights below 254: keep the full state unit
        return cap
    return min(cap, 254 * 2.0 ** e / r)


def _state_exp(name: str, msg: np.ndarray, Q: float, outgoing: list[np.ndarray], max_exp: int = EXP_MAX) -> int:
    """Smallest state_exp at which messages fit 24 bits and no outgoing Dense overflows int32."""
    load = 0.0  # max_i sum_j |W_ij| / max|W| * D_j, the worst row of any outgoing Dense
    for W in outgoing:
        m = float(np.abs(W).max()) if W.size else 0.0
        if m > 0:
            load = max(load, float((np.abs(W) / m @ msg).max()))
    for s in range(0, max_exp + 1):
        M = Q / 2 ** s
        if float(msg.max(initial=0.0)) * M <= MSG_MAX and 256 * load * M <= SUM_MAX:
            return s
    raise UnsupportedError(
        f"messages of up to {float(msg.max(initial=0.0)):.3g} cannot be sent in {MESSAGE_BITS} bits without "
        f"overflowing int32 sums at {Q:.3g} state units (state_exp > {max_exp})", node=name)


def lower_sdn(graph: Graph, calib, margin: float):
    """(LoihiProgram, {group: LayerQuant}, io, report) for a sigma-delta dense-form graph."""
    check_sdn(graph)
    shapes = graph.infer_shapes()
    (inp,) = graph.inputs
    stats = sdn_stats(graph, calib, margin)
    groups = [n for n in graph.order() if isinstance(graph.nodes[n], N.SigmaDelta)]
    conns = {n: incoming(graph, n, shapes) for n in groups}
    for n in groups:
        for c in conns[n]:
            if c.is_conv:
                raise UnsupportedError("convolutions into sigma-delta groups are not lowered yet", node=c.name)
    outgoing: dict[str, list[np.ndarray]] = {}
    for n in groups:
        for c in conns[n]:
            key = inp if c.src == "input" else c.src
            outgoing.setdefault(key, []).append(c.node.weight)
    # the input: the host has no state limit; its message unit is the input's resolution
    st_in = stats[inp]
    q_in = _pow2_floor(min(MSG_MAX / max(float(st_in["msg"].max(initial=0.0)), 1e-12),
                           SUM_MAX / max(float(st_in["value"]), 1e-12)))
    s_in = _state_exp(inp, st_in["msg"], q_in, outgoing.get(inp, []), max_exp=60)
    M = {inp: q_in / 2 ** s_in}
    deltas = [d for d in graph.successors(inp) if isinstance(graph.nodes[d], N.Delta)]
    io = {"encoding": "delta" if deltas else "values", "scale": M[inp], "message_bits": MESSAGE_BITS}
    rep: dict = {}
    if len(deltas) > 1:
        raise UnsupportedError("one Delta encoder per input", node=inp)
    if deltas:
        (d,) = deltas
        node = graph.nodes[d]
        vth = np.broadcast_to(node.vth, (int(np.prod(shapes[inp])),)) * M[inp]
        io.update(vth=[int(v) for v in np.round(vth)], cum_error=bool(node.cum_error), encoder=d)
        M[d] = M[inp]
        rep[d] = {"host_delta": True, "message_unit": M[inp], "vth_int_max": int(np.round(vth).max())}
    groups_out, synapses, layers = [], [], {}
    for n in groups:
        node = graph.nodes[n]
        size = int(np.prod(shapes[n]))
        st = stats[n]
        Q = STATE_MAX / max(st["state"], 1e-12)
        for c in conns[n]:  # a Dense cannot need weight_exp > 7
            m = float(np.abs(c.node.weight).max()) if c.node.weight.size else 0.0
            if m > 0:
                Q = min(Q, 254 * 2.0 ** W_EXP_MAX * M[c.src_node] / m)
        Q = _aligned_unit(Q, conns[n], M)
        s = _state_exp(n, st["msg"], Q, outgoing.get(n, []))
        M[n] = Q / 2 ** s
        vth_f = _scalar(node, n, "vth")
        P = Q / 2 ** s  # parameter unit (spike_exp = 0)
        vth = int(round(vth_f * P))
        bias = np.round(np.broadcast_to(node.bias, (size,)) * P).astype(np.int64)
        groups_out.append(LoihiSigmaDelta(name=n, size=size, vth=vth, bias=bias, act_mode=node.act,
                                          cum_error=bool(node.cum_error), spike_exp=0, state_exp=s))
        for c in conns[n]:
            R = c.node.weight * Q / M[c.src_node]
            w, e, wrep = quantize_weights(R, 1)
            synapses.append(LoihiDense(name=c.name, src=c.src, dst=n, weights=w, weight_exp=e,
                                       num_message_bits=MESSAGE_BITS, delays=c.delays))
            if c.delays is not None:
                wrep["max_delay"] = int(c.delays.max())
            rep[c.name] = wrep
        lrep = {"kind": "sigma_delta", "state_unit_log2": math.log2(Q), "state_exp": s, "spike_exp": 0,
                "vth": vth, "vth_float": vth_f, "message_unit": M[n],
                "bias_max_abs_error": float(np.abs(bias / P - np.broadcast_to(node.bias, (size,))).max()),
                "calibrated": bool(st["observed"])}
        rep[n] = lrep
        layers[n] = LayerQuant(name=n, scale=np.full(size, M[n]), vth=vth, du=0, dv=0, report=lrep)
    rep["input"] = {"encoding": io["encoding"], "message_unit": M[inp], "calibrated": bool(st_in["observed"])}
    program = LoihiProgram(n_inputs=int(np.prod(shapes[inp])), neurons=groups_out, synapses=synapses,
                           input_message_bits=MESSAGE_BITS)
    return program, layers, io, rep


# -- host side ------------------------------------------------------------------------------
def delta_encode(x_int: np.ndarray, vth: np.ndarray, cum_error: bool) -> np.ndarray:
    """Lava's ``PyDeltaModelFixed`` with ``spike_exp = state_exp = 0`` on (T, B, n) integers:
    the messages (0 = none). Same equations as the graph's ``Delta`` op."""
    x_int = np.asarray(x_int, dtype=np.int64)
    vth = np.asarray(vth, dtype=np.int64)
    act = np.zeros(x_int.shape[1:], np.int64)
    res = np.zeros_like(act)
    err = np.zeros_like(act)
    out = np.zeros_like(x_int)
    for t in range(x_int.shape[0]):
        delta = x_int[t] - act + res
        if cum_error:
            err = err + delta
            y = np.where(np.abs(err) >= vth, delta, 0)
            err = np.where(y != 0, 0, err)
        else:
            y = np.where(np.abs(delta) >= vth, delta, 0)
        res = delta - y
        act = x_int[t]
        out[t] = y
    return out


def encode_input(io: dict, x: np.ndarray) -> np.ndarray:
    """Float input (T, B, n) -> the graded messages the host sends (T, B, n) int64 (sigma-delta
    and current-input programs alike)."""
    x = np.asarray(x, dtype=np.float64)
    if x.size and not np.all(np.isfinite(x)):
        raise NeuroCompileError("the input holds NaN or infinite values")
    x_int = np.round(x * io["scale"]).astype(np.int64)
    if io["encoding"] == "delta":
        msgs = delta_encode(x_int, np.asarray(io["vth"]), io.get("cum_error", False))
    else:
        msgs = x_int
    lim = (1 << (int(io["message_bits"]) - 1)) - 1
    if msgs.size and np.abs(msgs).max() > lim:
        raise NeuroCompileError(
            f"input messages reach {np.abs(msgs).max() / io['scale']:.4g}, beyond what the compiled program's "
            f"{io['message_bits']}-bit input carries ({lim / io['scale']:.4g}): recompile with calibration data "
            f"that covers this input range" + (" or with more --input-bits" if io["encoding"] == "current" else ""))
    return msgs
