"""Map a dense-form graph to a SpiNNaker program for sPyNNaker 7.x (a :class:`Program`).

Time
----
One graph step is one SpiNNaker tick of **1.0 ms** (``timestep=1.0``, ``time_scale_factor=1``):
1 ms is the tick the ARM cores are designed to keep in real time and 1.0 is an exact S1615 word,
so ``ts/tau`` is computed on the chip without the rounding a 0.1 ms step (raw 3277 = 0.100006 ms)
brings. A graph time constant of ``k`` steps becomes ``k`` ms, i.e. biological time on the board
runs ``1e-3 / graph.dt`` times slower than the graph's (10x for the NIR paper's dt = 0.1 ms); the
PyNN script states that factor.

Neuron models
-------------
sPyNNaker's LIF (``neuron_model_lif_impl.h``) computes ``V = alpha - e*(alpha - V)`` with
``alpha = R*I + V_rest`` and ``e = expk(-ts/tau_m)``: the exact update of a current held for
one step, i.e. the graph's ``v = beta v + (1 - beta)(v_leak + r x)`` with ``beta = e``.
``tau_m`` is chosen so that the on-chip ``e`` is the closest accum to the graph's ``beta``
(``-1/ln(beta)`` steps, then the best neighbouring word), which serves ``euler`` and ``exact``
graphs alike; ``cm = tau_m`` (the same word) makes ``R = 1.0`` exactly, so ``R*I`` loses nothing.

* ``LIF`` -> ``IF_curr_delta``. The graph's LIF has no synaptic filter: its input of step t acts
  in step t only. ``IF_curr_delta`` holds a weight for exactly one tick and scales it by
  ``1/ts = 1.0``, which is that. (``IF_curr_exp`` would need ``tau_syn -> 0``; the smallest
  usable ``tau_syn`` multiplies every input by ``init ~ tau_syn/ts`` and throws away low bits.)
* ``CubaLIF`` -> ``IF_curr_exp``: the exponential synapse *is* the graph's current ``i``:
  ``I_syn = decay*I_syn + init*w`` with ``decay = expulr(-ts/tau_syn)`` matched to ``alpha``;
  the weights are divided by the on-chip ``init`` so that ``init*w = (1 - alpha) w_in W``.
* ``IF`` (no leak) -> ``IF_curr_delta`` with ``tau_m = 32768 ms`` (``ts/tau_m`` = 1 raw LSB, so
  ``e = expk(-2**-15) = 1 - 2**-14`` exactly on the chip) and ``cm = 2 nF`` (``R = 16384``). Then
  ``V' = V + I - floor((V - V_rest) / 2**14)`` (raw words): an exact integrator while
  ``V - V_rest`` stays in ``[0, 0.5 mV)``. The group's voltage window ``[v_lo, v_threshold)`` is
  mapped onto that half millivolt (``v_lo`` = ``if_window`` (default 2) times
  ``v_threshold - v_reset`` below the threshold, widened so one step's worst input fits the
  ``R*I`` product); below ``v_lo`` the chip's ``v`` creeps up by ``k`` LSB per step
  (``k = ceil((v_lo - v) / window)``), reported as ``if_window`` per group.

Voltages are scaled per neuron, ``V = scale*v (+ offset for IF)``, so that the largest value a
group can reach (threshold, reset, leak, worst-case or calibrated drive, times ``margin``) uses
2**14 mV of the accum's +-2**16 range. ``v_threshold`` becomes ``V_thresh`` (+1 LSB for
``compare="gt"``: sPyNNaker fires on ``V >= V_thresh``), ``v_reset`` ``V_reset``, ``v_leak``
``V_rest``, ``refractory`` k steps ``tau_refrac = k ms`` (``T_refract = ceil(tau_refrac/ts)``).

Synapses, delays and biases
---------------------------
Each synapse matrix is split into an excitatory and an inhibitory ``FromListConnector``
projection (sPyNNaker needs one sign per projection and synapse type). A convolution that
``DenseForm`` kept stays a kernel (:mod:`.conv`: the program stores the kernel of each sign and
the geometry, never the synapse list); a group whose inputs are all stride-1 odd square convs
runs on sPyNNaker's local-only ``ConvolutionConnector`` cores, one population per channel
(:mod:`.local_only`; ``docs/spinnaker-conv.md``). A group fed by a kept conv gets one scale per
channel (the channel's largest drive), so that one kernel serves every position. Before anything
is built the list synapses and neurons are checked against the memory budget, and the mapping
estimate against the machine (``boards``). Every hop costs at least
one tick, so group ``G`` runs ``latency[G]`` ticks behind the graph (longest feed-forward path
from the input, one per hop); a projection's delay is ``latency[post] - latency[pre]`` (+1 for a
recurrent edge, which carries the previous step). A loop that would need a delay < 1 raises.
An ``Affine`` bias ``b`` becomes the constant current ``i_offset`` (full S1615 resolution, not the
16-bit weights). For CubaLIF the graph filters the bias through the synaptic current,
``i_b[t] = w_in b (1 - alpha**(t+1))``: the chip gets ``i_offset = w_in b`` (scaled) plus the
decaying part as the initial value of the synaptic state, ``isyn_exc = -w_in b decay**(1-latency)``
(``decay`` the on-chip factor; ``decay**(-latency)`` for the bias of a recurrent Affine, which the
graph applies from step 1 on). LIF/IF groups cannot delay a recurrent bias by one step: that
raises unless the option ``recurrent_bias="from_step_0"`` accepts it. A group with a bias or ``v_leak != 0`` starts with
``refract_timer = latency`` (a PyNN initial value): the LIF code skips the membrane update while
the timer counts down, so the membrane stays at its initial value until the graph's step 0
reaches the group, while the synaptic state keeps decaying as the chip always does.

Input
-----
``input_encoding`` (a common compile option; None: ``"current"`` when the calibration samples hold
any value other than 0/1 or the graph is an ONNX conversion with current input, see
:func:`neurocompile.targets.input_encoding.choose_encoding`):

* ``"spikes"``: the input is a ``SpikeSourceArray`` (step t sent at tick t) with projections into
  the first groups, like any other hop.
* ``"current"`` (direct, analog input): the first synapse layer -- every matrix from the graph
  input into a group -- is computed on the host in float64 (:mod:`.host_input`, recorded as the
  program's ``host_input``) and enters the first groups as a current: per sample either their
  ``I_offset`` word (input constant in time) or one ``StepCurrentSource`` per neuron. The timing
  keeps the latency scheme: graph step t reaches a group of latency L at tick L + t, as if it had
  come through a one-tick hop; such a group is held for L ticks by its initial refractory count.
  The scale of a first group follows the calibrated peak of its drive (which includes the analog
  input), as for every group, so the calibration samples are required. A first CubaLIF group needs
  the input filtered by its synaptic current, which an injected current bypasses: a constant input
  goes in like a bias (``I_offset`` plus a decaying start value of the chip's synaptic state), a
  time-varying one is filtered on the host (``i[t] = alpha i[t-1] + (1 - alpha) w_in u[t]``).

Not expressible (``UnsupportedError`` naming the node): reset by subtraction or no reset,
``v_threshold <= 0`` or ``<= v_reset``, non-spiking readouts (LI, CubaLI, Integrator), Delay nodes,
feedback into an earlier group, decays outside (0, 1).
"""
from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import numpy as np

from neurocompile.errors import UnsupportedError
from neurocompile.ir import nodes as N
from neurocompile.ir.graph import Graph
from neurocompile.ir.time_units import check_resolution
from neurocompile.passes.activity import neuron_drive_stats
from neurocompile.passes.base import Lowering, PassContext
from neurocompile.targets.input_encoding import choose_encoding, input_range
from neurocompile.targets.spinnaker import conv as C
from neurocompile.targets.spinnaker import fixed as F
from neurocompile.targets.spinnaker import host_input as H
from neurocompile.targets.spinnaker import local_only as L
from neurocompile.targets.spinnaker.lowered import NEURONS_PER_CORE, LoweredSpiNNaker
from neurocompile.targets.spinnaker.program import (
    HostDrive,
    HostInput,
    Population,
    Program,
    Projection,
    Source,
    predict_shifts,
    shift_for,
    summed_bound,
    weight_words,
)
from neurocompile.utils.budget import check_alloc

TIMESTEP_MS = 1.0
V_TARGET = float(1 << 14)        # mV used by the largest value a group reaches (accum max 2**16)
RB_LIMIT = float(1 << 13)        # nA: bound of the worst-case ring-buffer sum (shift <= 14)
MAX_DELAY = 128                  # conservative: sPyNNaker 7 delay extensions give 8 stages x the core's own range
SUPPORTED = (N.LIF, N.CubaLIF, N.IF)
IF_TAU_RAW = 1 << 30             # 32768.0 ms: kdivk(ts, tau_m) == 1 raw


def _if_constants() -> tuple[int, int]:
    """(delta, cm_raw): the on-chip e = 1 - delta/2**15 for IF_TAU_RAW, and the cm giving
    R = 2**15/delta (so that R*I is exactly delta**-1 * 2**15 * I)."""
    ts = np.int64(F.ONE)
    e = int(F.expk(F.wrap32(-F.kdivk(ts, IF_TAU_RAW))))
    delta = F.ONE - e
    if delta <= 0 or delta & (delta - 1):
        raise RuntimeError(f"expk(-2**-15) = {e}: not 1 - 2**-k, the IF mapping does not hold")
    cm_raw = F.ONE * delta
    assert int(F.kdivk(IF_TAU_RAW, cm_raw)) * delta == 1 << 30
    return delta, cm_raw


def _uni(node, name, field, shape):
    """A parameter of ``node`` per neuron of a group of ``shape``, flat (C order): numpy's
    broadcasting of the parameter against the group's shape, as the graph defines it."""
    v = np.asarray(getattr(node, field), dtype=float)
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    if v.size == _size(shape):
        return v.reshape(-1).astype(float)
    try:
        return np.broadcast_to(v, shape).reshape(-1).astype(float)
    except ValueError:
        raise UnsupportedError(f"parameter {field} of shape {v.shape} does not broadcast over the group's "
                               f"shape {shape}", node=name) from None


def _through_flatten(graph: Graph, name: str) -> str:
    """The node a chain of Flatten nodes starts at (a flatten moves no value in C order)."""
    while isinstance(graph.nodes[name], N.Flatten):
        (name,) = graph.predecessors(name)
    return name


def _size(shape) -> int:
    return int(np.prod(shape))


def check_supported(graph: Graph) -> None:
    for name, node in graph.nodes.items():
        if isinstance(node, (N.Input, N.Output, N.Linear, N.Conv2d)):
            continue
        if isinstance(node, N.Flatten):
            if len(graph.predecessors(name)) != 1:
                raise UnsupportedError("a Flatten must have one input", node=name)
            continue
        if isinstance(node, N.Delay):
            raise UnsupportedError("Delay nodes are not mapped to SpiNNaker yet (sPyNNaker has "
                                   "per-synapse delays, but this compiler does not use them)", node=name)
        if not isinstance(node, SUPPORTED):
            raise UnsupportedError(f"{node.op} has no SpiNNaker lowering (sPyNNaker's standard "
                                   "models are spiking; read out spikes instead)", node=name)
        if node.reset == "subtract":
            raise UnsupportedError("sPyNNaker's LIF sets v to v_reset after a spike; reset by "
                                   "subtraction is not expressible", node=name)
        if node.reset == "none":
            raise UnsupportedError("sPyNNaker's LIF always resets after a spike (reset='none')", node=name)
        thr = np.asarray(node.v_threshold, dtype=float)
        if np.any(thr <= 0):
            raise UnsupportedError("v_threshold must be > 0 (the membrane starts at 0)", node=name)
        if np.any(np.asarray(node.v_reset, dtype=float) >= thr):
            raise UnsupportedError("v_reset must be below v_threshold", node=name)
    for name, node in graph.nodes.items():
        if isinstance(node, (N.Linear, N.Conv2d)):
            preds = [_through_flatten(graph, p) for p in graph.predecessors(name)]
            if isinstance(node, N.Conv2d) and len(graph.predecessors(name)) == 1 and \
                    isinstance(graph.nodes[graph.predecessors(name)[0]], N.Flatten):
                raise UnsupportedError("a convolution must read a shaped group or the input", node=name)
            if len(preds) != 1 or not isinstance(graph.nodes[preds[0]], (N.Input,) + SUPPORTED):
                raise UnsupportedError("a synapse matrix must start at the input or at one neuron "
                                       "group", node=name)
            for s in graph.successors(name):
                if not isinstance(graph.nodes[s], SUPPORTED):
                    raise UnsupportedError(f"a synapse matrix must end at a neuron group, not "
                                           f"{graph.nodes[s].op}", node=name)
        if isinstance(node, N.Output):
            for p in graph.predecessors(name):
                if not isinstance(graph.nodes[_through_flatten(graph, p)], SUPPORTED):
                    raise UnsupportedError("SpiNNaker outputs are spike trains of a neuron group",
                                           node=name)


@dataclasses.dataclass
class _Syn:
    """One synapse layer: ``matrix`` (n_post, n_pre) dense or ``scipy.sparse``, or a kept
    ``conv`` (a Conv2d reading ``in_shape``) with ``matrix`` None."""
    pre: str
    post: str
    matrix: object              # (n_post, n_pre) ndarray / scipy.sparse, or None for a conv
    bias: np.ndarray            # (n_post,)
    recurrent: bool
    node: str
    conv: N.Conv2d | None = None
    in_shape: tuple | None = None

    def signed(self, gain: np.ndarray):
        """``[(receptor, pre, post, |w| * gain)]`` per sign: the synapse list of a matrix (no conv)."""
        out = []
        if isinstance(self.matrix, np.ndarray):
            W = self.matrix * gain[:, None]
            for rec, mask in (("excitatory", W > 0), ("inhibitory", W < 0)):
                post_i, pre_i = np.nonzero(mask)
                out.append((rec, pre_i, post_i, np.abs(W[post_i, pre_i])))
            return out
        M = self.matrix.tocoo()
        order = np.lexsort((M.col, M.row))
        row, col = M.row[order].astype(np.int64), M.col[order].astype(np.int64)
        w = M.data[order] * gain[row]
        for rec, mask in (("excitatory", w > 0), ("inhibitory", w < 0)):
            out.append((rec, col[mask], row[mask], np.abs(w[mask])))
        return out

    def conv_kernel(self, gain: np.ndarray) -> np.ndarray:
        """The conv's kernel in nA: ``weight * gain`` of each output channel (the gain of a conv's
        destination is uniform per channel, see ``_channel_peak``)."""
        w = np.asarray(self.conv.weight, dtype=np.float64)
        per = gain.reshape(w.shape[0], -1)
        if np.any(per != per[:, :1]):   # pragma: no cover - _channel_peak makes it uniform
            raise RuntimeError(f"the gain of '{self.post}' is not uniform per channel")
        return w * per[:, 0][:, None, None, None]


def _synapses(graph: Graph, shapes) -> list[_Syn]:
    back = graph.recurrent_edges()
    out = []
    for g, node in graph.nodes.items():
        if not isinstance(node, SUPPORTED):
            continue
        n = _size(shapes[g])
        for p in graph.predecessors(g):
            pn = graph.nodes[p]
            if isinstance(pn, N.Conv2d):
                (src,) = graph.predecessors(p)
                rec = (src, p) in back or (p, g) in back
                bias = np.broadcast_to(np.asarray(pn.bias, dtype=float), (pn.weight.shape[0],))
                bias = np.repeat(bias, n // pn.weight.shape[0]).astype(float)
                out.append(_Syn(src, g, None, bias, rec, p, conv=pn, in_shape=tuple(shapes[src])))
            elif isinstance(pn, N.Linear):
                (src,) = graph.predecessors(p)
                rec = (src, p) in back or (p, g) in back
                src = _through_flatten(graph, src)
                bias = np.broadcast_to(getattr(pn, "bias", 0.0), (n,)).astype(float)
                w = pn.weight if not isinstance(pn.weight, np.ndarray) else np.asarray(pn.weight, float)
                out.append(_Syn(src, g, w, bias, rec, p))
            else:
                if _size(shapes[p]) != n:
                    raise UnsupportedError("a direct edge between groups needs equal sizes", node=g)
                from scipy import sparse

                eye = np.eye(n) if n <= 4096 else sparse.identity(n, format="csr")
                out.append(_Syn(p, g, eye, np.zeros(n), (p, g) in back, g))
    return out


def _drive_stats(graph: Graph, calibration, shapes) -> dict[str, dict]:
    """:func:`neuron_drive_stats`; without calibration its worst-case bound computed from conv
    and sparse structures too (every presynaptic neuron spiking in the same step)."""
    if calibration is not None:
        return neuron_drive_stats(graph, calibration)
    from neurocompile.ir.linear_maps import conv_tap_sums

    stats = {}
    for n, node in graph.nodes.items():
        if not (node.is_neuron and not node.graded):
            continue
        bound = 0.0
        for p in graph.predecessors(n):
            pn = graph.nodes[p]
            w = getattr(pn, "weight", None)
            if w is None:
                continue
            if isinstance(pn, N.Conv2d):
                geo = (shapes[graph.predecessors(p)[0]], pn.stride, pn.padding, pn.dilation, pn.groups)
                pos = conv_tap_sums(w, *geo, values=np.clip(w, 0, None))
                neg = conv_tap_sums(w, *geo, values=np.clip(-w, 0, None))
                b = np.repeat(np.broadcast_to(np.abs(np.asarray(pn.bias, float)), (w.shape[0],)),
                              pos.size // w.shape[0])
            elif isinstance(w, np.ndarray):
                pos = np.clip(w, 0, None).sum(axis=1)
                neg = np.clip(-w, 0, None).sum(axis=1)
                b = np.abs(getattr(pn, "bias", 0.0))
            else:
                pos = np.asarray(w.maximum(0).sum(axis=1)).reshape(-1)
                neg = np.asarray((-w).maximum(0).sum(axis=1)).reshape(-1)
                b = np.abs(getattr(pn, "bias", 0.0))
            bound = bound + np.maximum(pos, neg) + b
        if node.current:
            bound = bound * np.abs(np.asarray(node.w_in, float)).reshape(-1)
        stats[n] = {"drive": np.asarray(bound, dtype=float), "v": None, "observed": False}
    return stats


def _channel_peak(values, channels: int | None):
    """Per-neuron values replaced by their channel's maximum (a conv destination: one kernel
    serves every position of a channel, so the group's scale must be uniform per channel)."""
    if channels is None or values is None:
        return values
    v = np.asarray(values, dtype=float).reshape(channels, -1)
    return np.repeat(v.max(axis=1), v.shape[1])


def longest_hops(graph: Graph, syns: list[_Syn]) -> dict[str, int]:
    """Ticks from the input to every population along the *longest* feed-forward chain of
    projections (each adds a tick); shorter paths get delays so that inputs arrive together."""
    into: dict[str, list[str]] = {}
    for s in syns:
        if not s.recurrent:
            into.setdefault(s.post, []).append(s.pre)
    lat = {n: 0 for n in graph.inputs}
    for n in graph.order():
        if isinstance(graph.nodes[n], SUPPORTED):
            ff = [lat[p] + 1 for p in into.get(n, ()) if p in lat]
            lat[n] = max(ff) if ff else 1
    return lat


def _best_raw(target: np.ndarray, ideal_tau: np.ndarray, value_of) -> np.ndarray:
    """For each neuron, the raw tau word near ``ideal_tau`` whose on-chip factor is closest."""
    out = np.empty(target.shape, dtype=np.int64)
    for t_val in np.unique(target):
        idx = target == t_val
        tau0 = float(ideal_tau[idx][0])
        base = int(F.s1615_from_host(min(tau0, 65535.0)))
        cands = np.arange(max(base - 3, 1), base + 4, dtype=np.int64)
        vals = value_of(cands)
        out[idx] = cands[int(np.argmin(np.abs(vals - t_val)))]
    return out


def _raw(x) -> np.ndarray:
    """The host's S1615 words of ``x``, converted once per distinct value (a group's parameters
    repeat over its neurons; the conversion goes through each float's decimal text)."""
    x = np.asarray(x, dtype=float)
    if x.size <= 4096:
        return F.s1615_from_host(x)
    u, inv = np.unique(x, return_inverse=True)
    return F.s1615_from_host(u)[inv.reshape(x.shape)]


@dataclasses.dataclass(frozen=True)
class QuantizeSpiNNaker(Lowering):
    """The lowering: graph -> :class:`LoweredSpiNNaker`; the report gets ``spinnaker``."""
    name: ClassVar[str] = "quantize-spinnaker"

    def run(self, graph: Graph, ctx: PassContext) -> LoweredSpiNNaker:
        check_supported(graph)
        opts = ctx.options
        margin = float(opts.margin)
        if_window = float(opts.if_window)
        per_core = int(opts.neurons_per_core)
        shapes = graph.infer_shapes()
        (inp,) = graph.inputs
        encoding = choose_encoding(graph, opts.calibration, getattr(opts, "input_encoding", None))
        if encoding == "current":
            input_range(graph, opts.calibration)   # the first groups' scales need the analog range
        stats = _drive_stats(graph, opts.calibration, shapes)
        syns = _synapses(graph, shapes)
        conv_dst = {s.post: int(s.conv.weight.shape[0]) for s in syns if s.conv is not None}
        _check_list_memory(syns, sum(_size(shapes[g]) for g, nd in graph.nodes.items() if isinstance(nd, SUPPORTED)))
        lat = longest_hops(graph, syns)
        # direct input: the synapse layer from the input is the host's, not a projection
        host_syns = [s for s in syns if s.pre == inp] if encoding == "current" else []
        syns = [s for s in syns if not any(s is h for h in host_syns)]
        host_driven = {s.post for s in host_syns}
        delays = {}
        for s in syns:
            d = lat[s.post] - lat[s.pre] + (1 if s.recurrent else 0)
            if d < 1:
                raise UnsupportedError(
                    f"the connection from '{s.pre}' needs a delay of {d} ticks; SpiNNaker delays are "
                    ">= 1 tick (feedback into an earlier group is not expressible)", node=s.node)
            if d > MAX_DELAY:
                raise UnsupportedError(f"delay of {d} ticks exceeds sPyNNaker's {MAX_DELAY}", node=s.node)
            delays[id(s)] = d
        local = L.local_only_groups(graph, syns, delays, host_driven, inp, enabled=bool(opts.conv_connector))
        rowsum = _rowsum_groups(syns)
        ts = np.int64(F.ONE)
        pops, gains, reports = [], {}, {}
        # a recurrent edge carries the previous step's value of its Affine, so its bias is
        # absent at step 0: keep the two kinds of bias apart
        bias_ff: dict[str, np.ndarray] = {}
        bias_rec: dict[str, np.ndarray] = {}
        for sy in syns + host_syns:   # an input Affine's bias stays the group's i_offset
            if np.any(sy.bias):
                into = bias_rec if sy.recurrent else bias_ff
                into[sy.post] = into.get(sy.post, 0.0) + sy.bias
        for g in bias_rec:
            if not isinstance(graph.nodes[g], N.CubaLIF):
                if opts.recurrent_bias != "from_step_0":
                    raise UnsupportedError(
                        "a recurrent Affine with a bias feeds this LIF/IF group: the graph leaves that "
                        "bias out of step 0, which a constant i_offset cannot (pass the option "
                        "recurrent_bias='from_step_0' to accept the bias from step 0 on)", node=g)
                bias_ff[g] = bias_ff.get(g, 0.0) + bias_rec.pop(g)
        for g, node in graph.nodes.items():
            if not isinstance(node, SUPPORTED):
                continue
            n = _size(shapes[g])
            bias = (np.broadcast_to(bias_ff.get(g, 0.0), (n,)).astype(float),
                    np.broadcast_to(bias_rec.get(g, 0.0), (n,)).astype(float))
            st = {k: _channel_peak(None if v is None else np.broadcast_to(v, (n,)), conv_dst.get(g))
                  for k, v in stats[g].items() if k in ("drive", "v")}
            args = (graph, g, node, tuple(shapes[g]), st, lat[g], margin, if_window, ts, bias, g in host_driven,
                    g in local)
            pop, gain, rep = self._group(*args, boost=1.0)
            # keep sPyNNaker's worst-case ring-buffer sum (max weight x fan-in, per projection)
            # below RB_LIMIT nA so that the left shift stays <= 14 and word << shift fits an accum
            bound = _group_bound(syns, g, gain, g in local, g in rowsum)
            if bound > RB_LIMIT:
                pop, gain, rep = self._group(*args, boost=RB_LIMIT / bound)
                rep["scaled_down_for_ring_buffer"] = RB_LIMIT / bound
            pops.append(pop)
            gains[g] = gain
            reports[g] = rep
        # projections: float weights in nA, split by sign
        raw_projs: list[Projection] = []
        for s in syns:
            pre = inp if s.pre == inp else s.pre
            if s.conv is not None:
                K = s.conv_kernel(gains[s.post])
                geo = C.geometry(s.conv, s.in_shape)
                for rec, k in (("excitatory", np.where(K > 0, K, 0.0)), ("inhibitory", np.where(K < 0, -K, 0.0))):
                    if np.any(k):
                        raw_projs.append(Projection(
                            name=f"{s.node}.{rec[:3]}", pre=pre, post=s.post, receptor=rec, delay=delays[id(s)],
                            pre_idx=np.zeros(0, np.int64), post_idx=np.zeros(0, np.int64), weight=k,
                            w_int=np.zeros(k.shape, dtype=np.int64), conv=geo))
                continue
            for rec, pre_i, post_i, w in s.signed(gains[s.post]):
                if post_i.size:
                    raw_projs.append(Projection(
                        name=f"{s.node}.{rec[:3]}", pre=pre, post=s.post, receptor=rec,
                        delay=delays[id(s)], pre_idx=pre_i.astype(np.int64),
                        post_idx=post_i.astype(np.int64), weight=w,
                        w_int=np.zeros(post_i.size, dtype=np.int64)))
        n_in = _size(shapes[inp])
        sources = [] if host_syns else [Source(name=inp, kind="input", size=n_in)]
        graph_pops = pops
        split = {g: tuple(shapes[g]) for g in local}
        split.update({s.pre: tuple(shapes[s.pre]) for s in syns if s.post in local})
        if opts.conv_channels == "all":   # every end of a kept conv: FromList rows padded per channel pair
            convs = [s for s in syns if s.conv is not None]
            ends = {n for s in convs for n in (s.pre, s.post)} - host_driven
            bad = {n for s in convs if int(s.conv.groups) != 1 for n in (s.pre, s.post)}
            split.update({n: tuple(shapes[n]) for n in ends - bad if len(shapes[n]) == 3})
        elif opts.conv_channels != "local":
            raise UnsupportedError(f"option conv_channels must be 'local' or 'all', not {opts.conv_channels!r}")
        groups = {}
        if split:   # local-only conv groups and their sources: one population per channel
            pops, raw_projs, sources = L.split_parts(pops, raw_projs, sources, split, local, per_core)
            groups = {g: [L.channel_name(g, c) for c in range(split[g][0])] for g in split}
        # a wide dense layer (the readout of 65,536 neurons): sPyNNaker's worst case, max|w| x
        # fan-in, would leave a bit or two per word; such a population gets
        # max_expected_summed_weight = the true bound (all sources spiking in one tick: the
        # largest row sum of |w|) instead
        override = {g: _row_sum_bound([p for p in raw_projs if p.post == g]) for g in rowsum if g not in split}
        pops = [dataclasses.replace(p, max_summed=override[p.name]) if p.name in override else p for p in pops]
        projs, shifts, qrep = _quantize_weights(raw_projs, [p.name for p in pops], override)
        host = _host_input(host_syns, {p.name: p for p in pops}, gains, graph, ts, n_in, shapes)
        outputs = {}
        for o in graph.outputs:
            (p,) = graph.predecessors(o)
            outputs[o] = _through_flatten(graph, p)
        program = Program(timestep_ms=TIMESTEP_MS, time_scale_factor=1, graph_dt=graph.dt,
                          populations=pops, sources=sources, projections=projs, shifts=shifts,
                          outputs=outputs, input_name=inp, host_input=host, groups=groups)
        resources = estimate_resources(program, per_core)
        check_fits(resources, getattr(opts, "boards", None))
        in_rep = _input_report(program, graph, opts.calibration, per_core, encoding)
        rep = {"timestep_ms": TIMESTEP_MS, "time_scale_factor": 1,
               "graph_time_per_tick_s": graph.dt,
               "board_slowdown_vs_graph_time": (1e-3 / graph.dt) if graph.dt else None,
               "latency": {p.name: p.latency for p in graph_pops},
               "output_shift_ticks": {o: lat[p] for o, p in outputs.items()},
               "groups": reports, "ring_buffer_shifts": shifts, "weights": qrep,
               "resources": resources, "input": in_rep,
               "local_only": {g: {"channels": split[g][0], "connector": "ConvolutionConnector",
                                  "model": "IF_curr_exp", "tau_syn_raw": L.TAU_SYN_RAW} for g in sorted(local)}}
        program.report = rep
        ctx.report["spinnaker"] = rep
        ctx.report["input"] = in_rep
        return LoweredSpiNNaker(graph=graph, program=program)

    # -- one neuron group -------------------------------------------------------------------
    def _group(self, graph, g, node, shape, st, latency, margin, if_window, ts, biases, host_driven, local_only,
               boost):
        n = _size(shape)
        bias = biases[0] + biases[1]
        thr = _uni(node, g, "v_threshold", shape)
        vreset = _uni(node, g, "v_reset", shape)
        r = _uni(node, g, "r", shape)
        drive = np.broadcast_to(st["drive"], (n,)).astype(float)
        vmax_obs = np.broadcast_to(st["v"], (n,)).astype(float) if st["v"] is not None else None
        if host_driven and n:
            # a host current scales with the whole group's calibrated peak: a neuron the
            # calibration samples barely reached (an image border) may see a strong test input
            drive = np.full(n, float(drive.max()))
            if vmax_obs is not None:
                vmax_obs = np.full(n, float(vmax_obs.max()))
        rep = {"model": None, "latency": latency}
        refr = int(node.refractory)
        zeros = np.zeros(n, dtype=np.int64)
        raw = {"tau_refrac": _raw(np.full(n, refr * TIMESTEP_MS)), "i_offset": zeros.copy(),
               "isyn_exc": zeros.copy(), "isyn_inh": zeros.copy()}
        hold = np.zeros(n, dtype=np.int64)
        cur_scale = np.zeros(n)
        if isinstance(node, N.IF):
            delta, cm_raw = _if_constants()
            win = F.ONE // delta                      # raw width of the exact window
            span = np.maximum(if_window * (thr - vreset), margin * r * drive / delta ** 2)
            span = np.maximum(span, thr - vreset)
            v_lo = thr - span
            span = span / boost
            s_raw = (win - 1) / span                  # raw mV words per graph v unit
            raw.update(tau_m=np.full(n, IF_TAU_RAW, np.int64), cm=np.full(n, cm_raw, np.int64),
                       v_rest=zeros.copy(), tau_syn_E=np.full(n, F.ONE, np.int64),
                       tau_syn_I=np.full(n, F.ONE, np.int64))
            raw["v"] = np.rint(s_raw * (0.0 - v_lo)).astype(np.int64)
            raw["v_reset"] = np.rint(s_raw * (vreset - v_lo)).astype(np.int64)
            raw["v_thresh"] = np.rint(s_raw * (thr - v_lo)).astype(np.int64)
            scale = s_raw / F.ONE
            offset = -scale * v_lo
            gain = s_raw * r / F.ONE                  # nA per unit of graph input
            raw["i_offset"] = _raw(gain * bias)
            model = "IF_curr_delta"
            rep.update(if_window=[float(v_lo.min()), float(thr.max())],
                       if_lsb_v=float((1 / s_raw).max()),
                       note="exact integration while v >= v_lo; below it v creeps up by k LSB/step")
        else:
            dt, rule = graph.dt, graph.discretization
            if dt is None:
                raise UnsupportedError("the graph has no dt", node=g)
            beta = np.broadcast_to(N.decay_factor(_uni(node, g, node.membrane_tau, shape), dt, rule),
                                   (n,)).astype(float)
            if np.any(beta <= 0) or np.any(beta >= 1):
                raise UnsupportedError(f"membrane decay {beta.min():.4g}..{beta.max():.4g} is outside "
                                       "(0, 1): dt is too large for this tau", node=g)

            check_resolution(graph, g, node, node.membrane_tau, "SpiNNaker's s16.15", 2.0 ** -15)
            if isinstance(node, (N.CubaLIF, N.CubaLI)):
                check_resolution(graph, g, node, "tau_syn", "SpiNNaker's s16.15", 2.0 ** -15)
            tau_m = _best_raw(beta, -TIMESTEP_MS / np.log(beta),
                              lambda c: F.expk(F.wrap32(-F.kdivk(ts, c))) / F.ONE)
            v_leak = _uni(node, g, "v_leak", shape)
            peak = np.maximum.reduce([thr, np.abs(vreset), np.abs(v_leak) + r * drive])
            if vmax_obs is not None:
                peak = np.maximum(peak, vmax_obs)
            scale = boost * V_TARGET / (margin * peak)
            offset = np.zeros(n)
            raw.update(tau_m=tau_m, cm=tau_m.copy(), v=zeros.copy(),
                       v_rest=_raw(scale * v_leak), v_reset=_raw(scale * vreset),
                       v_thresh=_raw(scale * thr))

            beta_q = F.expk(F.wrap32(-F.kdivk(ts, tau_m))) / F.ONE
            rep.update(beta=float(beta.mean()), beta_chip=float(beta_q.mean()),
                       beta_max_abs_error=float(np.abs(beta_q - beta).max()))
            if isinstance(node, N.CubaLIF):
                alpha = np.broadcast_to(N.decay_factor(_uni(node, g, "tau_syn", shape), dt, rule),
                                        (n,)).astype(float)
                if np.any(alpha <= 0) or np.any(alpha >= 1):
                    raise UnsupportedError("synaptic decay outside (0, 1): dt too large for tau_syn", node=g)
                tau_s = _best_raw(alpha, -TIMESTEP_MS / np.log(alpha),
                                  lambda c: F.exp_synapse_init(c, ts)[0] / 2.0 ** 32)
                raw.update(tau_syn_E=tau_s, tau_syn_I=tau_s.copy())
                decay, init = F.exp_synapse_init(tau_s, ts)
                w_in = _uni(node, g, "w_in", shape)
                gain = scale * r * (1 - alpha) * w_in / (init / 2.0 ** 32)
                cur_scale = scale * r
                # the bias as a constant current plus a decaying start value of the synaptic
                # state: i_bias[t] = w_in*b*(1 - alpha**(t+1)) in the graph
                raw["i_offset"] = _raw(cur_scale * w_in * bias)
                d = decay / 2.0 ** 32
                raw["isyn_exc"] = _raw(-cur_scale * w_in * (biases[0] * d ** (1 - latency)
                                                             + biases[1] * d ** (-latency)))
                model = "IF_curr_exp"
                rep.update(alpha=float(alpha.mean()), alpha_chip=float((decay / 2.0 ** 32).mean()),
                           init_chip=float((init / 2.0 ** 32).mean()))
            elif local_only:
                # only IF_curr_exp has a local-only binary: tau_syn with a zero on-chip decay makes
                # its synapse a one-tick input scaled by init (divided out of the weights)
                tau_s = np.full(n, L.TAU_SYN_RAW, np.int64)
                decay, init = F.exp_synapse_init(tau_s, ts)
                if np.any(decay != 0):   # pragma: no cover - a property of the fixed-point code
                    raise RuntimeError("the local-only tau_syn no longer gives a zero decay")
                raw.update(tau_syn_E=tau_s, tau_syn_I=tau_s.copy())
                cur_scale = scale * r
                gain = cur_scale / (init / 2.0 ** 32)
                raw["i_offset"] = _raw(cur_scale * bias)
                model = "IF_curr_exp"
                rep.update(local_only=True, init_chip=float((init / 2.0 ** 32).mean()))
            else:
                raw.update(tau_syn_E=np.full(n, F.ONE, np.int64), tau_syn_I=np.full(n, F.ONE, np.int64))
                gain = scale * r
                raw["i_offset"] = _raw(gain * bias)
                model = "IF_curr_delta"
        if (host_driven or np.any(raw["i_offset"] != 0)
                or np.any(raw["v_rest"] != 0 if not isinstance(node, N.IF) else False)):
            hold[:] = latency   # keep the membrane still until the graph's step 0 arrives
        if node.compare == "gt":
            raw["v_thresh"] = raw["v_thresh"] + 1
        rep["model"] = model
        rep["v_threshold_mV"] = float(F.s1615_to_float(raw["v_thresh"]).max())
        rep["hold_ticks"] = int(hold.max())
        pop = Population(name=g, model=model, kind=node.op, size=n, latency=latency, raw=raw,
                         refract_timer=hold, scale=np.asarray(scale, float) * np.ones(n),
                         offset=np.asarray(offset, float) * np.ones(n), cur_scale=cur_scale,
                         compare=node.compare)
        return pop, np.asarray(gain, float) * np.ones(n), rep


def _host_input(host_syns: list[_Syn], pops: dict[str, Population], gains, graph: Graph, ts,
                n_in: int, shapes: dict) -> HostInput | None:
    """The first synapse layer for the host: per driven group, the summed matrix from the input
    as padded rows of nonzero weights, and the factors from graph units to chip words."""
    if not host_syns:
        return None
    entries = []
    for g in dict.fromkeys(s.post for s in host_syns):
        pop = pops[g]
        into = [s for s in host_syns if s.post == g]
        if all(isinstance(s.matrix, np.ndarray) for s in into):
            W = sum(s.matrix for s in into)
            nz = W != 0
            m = max(1, int(nz.sum(axis=1).max(initial=0)))
            pre = np.zeros((pop.size, m), dtype=np.int64)
            w = np.zeros((pop.size, m))
            for j in range(pop.size):
                (idx,) = np.nonzero(nz[j])
                pre[j, :idx.size] = idx
                w[j, :idx.size] = W[j, idx]
        else:   # convs and sparse matrices: rows of the summed csr matrix
            Wc = sum(_csr(s, pop.size, n_in) for s in into).tocsr()
            Wc.sum_duplicates()
            Wc.eliminate_zeros()
            lens = np.diff(Wc.indptr)
            m = max(1, int(lens.max(initial=0)))
            check_alloc(16 * pop.size * m, f"the host input's {pop.size} x {m} rows of weights", node=g)
            pre = np.zeros((pop.size, m), dtype=np.int64)
            w = np.zeros((pop.size, m))
            col = np.arange(Wc.nnz) - np.repeat(Wc.indptr[:-1], lens)
            row = np.repeat(np.arange(pop.size), lens)
            pre[row, col] = Wc.indices
            w[row, col] = Wc.data
        node = graph.nodes[g]
        zeros = np.zeros(pop.size)
        # |R * word| <= host_input.LIMIT: R = kdivk(tau_m, cm) (1.0 for LIF/CubaLIF, 16384 for IF)
        R = F.lif_init(pop.raw["tau_m"], pop.raw["cm"], pop.raw["tau_refrac"], ts)["R"]
        limit = np.floor(H.LIMIT * float(F.ONE) / R.astype(float))
        if pop.model == "IF_curr_exp":
            alpha = np.broadcast_to(N.decay_factor(_uni(node, g, "tau_syn", shapes[g]), graph.dt,
                                                   graph.discretization), (pop.size,)).astype(float)
            w_in = _uni(node, g, "w_in", shapes[g])
            decay = F.exp_synapse_init(pop.raw["tau_syn_E"], ts)[0] / 2.0 ** 32
            entries.append(HostDrive(
                pop=g, latency=pop.latency, filter="exp", pre=pre, w=w, gain=pop.cur_scale.copy(),
                g_off=pop.cur_scale * w_in, g_syn=-pop.cur_scale * w_in * decay ** (1 - pop.latency),
                a=alpha, c=(1 - alpha) * w_in, limit=limit))
        else:
            entries.append(HostDrive(pop=g, latency=pop.latency, filter="none", pre=pre, w=w,
                                     gain=gains[g].copy(), g_off=gains[g].copy(), g_syn=zeros.copy(),
                                     a=zeros.copy(), c=zeros.copy(), limit=limit))
    return HostInput(size=n_in, entries=entries, rounding=H.ROUNDING)


def _csr(s: _Syn, n_post: int, n_pre: int):
    """A synapse layer as a ``scipy.sparse`` csr matrix (n_post, n_pre)."""
    from scipy import sparse

    if s.conv is not None:
        pre, post, w = C.expand_all(np.asarray(s.conv.weight, dtype=np.float64), C.geometry(s.conv, s.in_shape))
        return sparse.csr_matrix((w, (post, pre)), shape=(n_post, n_pre))
    return sparse.csr_matrix(s.matrix)


def _input_report(program: Program, graph: Graph, calibration, per_core: int, encoding: str) -> dict:
    """How the program takes its input, and what a direct input costs (cores, SDRAM, host work)."""
    if program.host_input is None:
        return {"encoding": "spikes", "mechanism": "SpikeSourceArray (one core)"}
    x = np.asarray(calibration, dtype=np.float64)
    T = int(x.shape[0]) if x.ndim >= 2 else 1
    pops = {}
    macs = 0
    for e in program.host_input.entries:
        p = program.population(e.pop)
        nnz = int(np.count_nonzero(e.w))
        macs += nnz
        n_core = min(p.size, per_core)
        words = 2 if e.filter == "exp" else 1
        L = T + 1   # worst case: the word changes at every step, plus the closing entry
        pops[e.pop] = {
            "neurons": p.size, "latency": e.latency, "filter": e.filter, "synapses_on_host": nnz,
            "offset_mode": {"parameter_words_per_neuron_per_sample": words,
                            "current_source_sdram_bytes_per_core": 4},
            "step_mode": {"source_words_per_neuron_per_sample": f"2 * (changes + 1) + 3 (<= {2 * (L + 1) + 3} "
                                                                f"for T = {T})",
                          "current_source_sdram_bytes_per_core_worst": H.sdram_bytes(p.size, n_core, [L] * p.size),
                          "dtcm_bytes_per_core_worst": H.step_dtcm_bytes(n_core, L)[0],
                          "samples_per_mapping_worst": H.samples_per_mapping(n_core, L)}}
    return {"encoding": "current", "mechanism": "host-computed first layer, injected current",
            "range": float(np.abs(x).max()) if x.size else 0.0,
            "populations": pops, "cores": 0, "host_macs_per_step": macs,
            "rounding": H.ROUNDING,
            "modes": "offset (input constant in time): the current is the neurons' I_offset, set per sample; "
                     "step (otherwise): one StepCurrentSource per neuron, its table holding the ticks where the "
                     "word changes"}


def _group_bound(syns, g, gain, local_only: bool = False, rowsum: bool = False) -> float:
    """sPyNNaker's worst-case ring-buffer sum (nA) of group ``g`` for its larger synapse type
    (``rowsum``: the row-sum bound its max_expected_summed_weight will carry)."""
    if rowsum:
        b = {"excitatory": 0.0, "inhibitory": 0.0}
        for sy in syns:
            if sy.post == g:
                for rec, _pre, post, w in sy.signed(gain):
                    if post.size:
                        b[rec] = b[rec] + np.bincount(post, weights=w, minlength=gain.size)
        return float(max(np.max(v) for v in b.values()))
    if local_only:   # per channel population: every (source, destination) channel pair counts k*k
        total = 0.0
        for sy in syns:
            if sy.post == g:
                K = sy.conv_kernel(gain)
                total = np.add(total, [L.local_only_bound(K[co:co + 1], sy.in_shape[1] * sy.in_shape[2])
                                       for co in range(K.shape[0])])
        return float(np.max(total))
    b = {"excitatory": [], "inhibitory": []}
    for sy in syns:
        if sy.post != g:
            continue
        if sy.conv is not None:
            K = sy.conv_kernel(gain)
            geo = C.geometry(sy.conv, sy.in_shape)
            for rec, k in (("excitatory", np.where(K > 0, K, 0.0)), ("inhibitory", np.where(K < 0, -K, 0.0))):
                if np.any(k):
                    b[rec].append((float(k.max()), int(C.fan_in(k, geo).max(initial=0))))
            continue
        for rec, _pre, post, w in sy.signed(gain):
            if post.size:
                b[rec].append((float(w.max()), int(np.bincount(post).max())))
    return max(summed_bound(b["excitatory"], TIMESTEP_MS), summed_bound(b["inhibitory"], TIMESTEP_MS))


#: bytes a list synapse costs while the lowering builds it: pre, post, weight and word (8 B each)
#: in the projection, its quantized copy, and the sign split's temporaries
LIST_SYNAPSE_BYTES = 96
#: bytes of one neuron's words and state in the program (12 raw fields, scales, timers) and the
#: lowering's temporaries
NEURON_BYTES = 400


def _check_list_memory(syns, n_neurons: int = 0) -> None:
    """Refuse (with the figures) a program whose synapse lists and neurons would not fit the
    memory budget, before they are built."""
    n = 0
    for s in syns:
        if s.conv is None:
            m = s.matrix
            n += int(np.count_nonzero(m)) if isinstance(m, np.ndarray) else int(m.nnz)
    check_alloc(LIST_SYNAPSE_BYTES * n + NEURON_BYTES * n_neurons,
                f"the SpiNNaker program's {n} list synapses and {n_neurons} neurons")


#: a group fed only by synapse matrices whose worst-case shift (max|w| x fan-in) exceeds the
#: row-sum one by at least ROWSUM_BITS gets max_expected_summed_weight = its row-sum bound (see
#: _rowsum_groups), whatever its fan-in: lava-dl's oxford_dense.net (fan-in 256) lost so many bits
#: to the worst-case rule that its readout fired where the float graph never does
ROWSUM_FAN_IN = 1
ROWSUM_BITS = 3


def _rowsum_groups(syns) -> set[str]:
    """Groups whose shift should follow the row-sum bound (graph weights; the decision is made
    once, before the scales): fed only by matrices, a fan-in >= ROWSUM_FAN_IN, and sPyNNaker's
    worst-case rule ROWSUM_BITS or more above the largest row sum of |w| per sign."""
    into: dict[str, list] = {}
    for s in syns:
        into.setdefault(s.post, []).append(s)
    out = set()
    for g, ss in into.items():
        if any(s.conv is not None for s in ss):
            continue
        worst, rows = {}, {}
        fan = 0
        for s in ss:
            for rec, _pre, post, w in s.signed(np.ones(s.matrix.shape[0])):
                if not post.size:
                    continue
                n = int(np.bincount(post).max())
                fan = max(fan, n)
                worst[rec] = worst.get(rec, 0.0) + float(w.max()) * n
                r = np.bincount(post, weights=w, minlength=s.matrix.shape[0])
                rows[rec] = rows.get(rec, 0.0) + r
        if fan < ROWSUM_FAN_IN:
            continue
        gain = [shift_for(worst[r]) - shift_for(float(np.max(rows[r]))) for r in worst]
        if gain and max(gain) >= ROWSUM_BITS:
            out.add(g)
    return out


def _row_sum_bound(projs: list[Projection]) -> list[float]:
    """[exc, inh] (nA): per type the largest, over target neurons, sum of |w| of its synapses, a
    hard bound on one tick's ring-buffer input (a source spikes at most once a tick)."""
    bound = []
    for rec in ("excitatory", "inhibitory"):
        rows = [np.bincount(p.post_idx, weights=np.abs(p.weight)) for p in projs if p.receptor == rec]
        if not rows:
            bound.append(0.0)
            continue
        m = max(r.size for r in rows)
        bound.append(float(sum(np.pad(r, (0, m - r.size)) for r in rows).max()))
    return bound


def _quantize_weights(projs: list[Projection], pops: list[str], max_summed: dict | None = None):
    """Predict sPyNNaker's shifts, quantize to 16-bit words and export exact nA weights.

    The shift sPyNNaker computes from the *exported* weights must equal the one they were
    quantized with. Rounding can push ``max word x fan-in`` over the power of two the float
    weights were under; then the largest words of that synapse type are lowered by one LSB until
    the bound fits again. If instead the exported weights call for a smaller shift, quantize
    again with it (shifts only go down, so this ends)."""
    floats = [p.weight.copy() for p in projs]
    max_summed = max_summed or {}
    shifts = predict_shifts(projs, pops, TIMESTEP_MS, max_summed)
    into: dict[tuple[str, str], list[int]] = {}
    for i, p in enumerate(projs):
        into.setdefault((p.post, p.receptor), []).append(i)
    fans = [p.fan_in_max() for p in projs]
    for _ in range(20):
        words_all = []
        for p, w in zip(projs, floats):
            sh = shifts[p.post][0 if p.receptor == "excitatory" else 1]
            words_all.append(weight_words(w, sh))
        for pop in pops:
            for rec in ("excitatory", "inhibitory"):
                idx = into.get((pop, rec))
                if not idx or pop in max_summed:   # its shift does not follow the words
                    continue
                top = {i: int(words_all[i].max(initial=0)) for i in idx}
                was = dict(top)
                while sum(top[i] * fans[i] for i in idx) >= (1 << 15):
                    j = max(idx, key=lambda i: top[i] * fans[i])
                    top[j] -= 1
                for i in idx:   # the words' cap, applied once (min is idempotent)
                    if top[i] != was[i]:
                        words_all[i] = np.minimum(words_all[i], top[i])
        out, masks = [], []
        for p, words in zip(projs, words_all):
            sh = shifts[p.post][0 if p.receptor == "excitatory" else 1]
            if p.conv is not None:   # a kernel: a zero word is a tap without a synapse of this sign
                masks.append(None)
                out.append(dataclasses.replace(p, w_int=words, weight=words * 2.0 ** (sh - 15)))
                continue
            keep = words > 0
            masks.append(keep)
            out.append(dataclasses.replace(p, pre_idx=p.pre_idx[keep], post_idx=p.post_idx[keep],
                                           w_int=words[keep], weight=words[keep] * 2.0 ** (sh - 15)))
        new = predict_shifts(out, pops, TIMESTEP_MS, max_summed)
        if new == shifts:
            break
        shifts = new
    else:  # pragma: no cover - shifts only decrease, so this is never reached
        raise UnsupportedError("ring-buffer shifts do not settle for these weights")
    rep = {}
    for p, w, q, keep in zip(projs, floats, out, masks):
        if keep is None:
            got = q.weight
            n, kept = p.n_synapses, q.n_synapses
        else:
            got = np.zeros_like(w)
            got[keep] = q.weight
            n, kept = int(w.size), int(q.pre_idx.size)
        err = np.abs(got - w)
        rep[p.name] = {"n": n, "dropped_zero": n - kept,
                       "max_rel_error": float(err.max() / max(float(w.max()), 1e-300)) if w.size else 0.0,
                       "shift": shifts[p.post][0 if p.receptor == "excitatory" else 1]}
        if keep is None:
            rep[p.name].update(kind="conv", kernel=list(q.w_int.shape), connector=q.conv["connector"])
    out = [p for p in out if (np.any(p.w_int) if p.conv is not None else p.pre_idx.size)]
    return out, shifts, rep


#: application cores a chip (18 minus the monitor and the extra monitor sPyNNaker puts on every chip)
CORES_PER_CHIP = 16
#: chips of a SpiNN-5 board, and of the largest machine (SpiNNaker1M: 1200 boards)
CHIPS_PER_BOARD = 48
MAX_BOARDS = 1200
#: SDRAM of a chip sPyNNaker can allocate (the virtual machine reports 123 MB of the 128 MB)
CHIP_SDRAM = 123 << 20
#: ConvolutionConnector region 9 (local_only_convolution.py): the header (6 shorts + 3 words),
#: 40 B per source (KEY_INFO_SIZE + 6 words), 36 B per connector, 2 B per kernel word; region 8: 5 words
CONV_HEADER_BYTES, CONV_SOURCE_BYTES, CONV_CONNECTOR_BYTES, LOCAL_ONLY_BYTES = 24, 40, 36, 20
#: SDRAM a neuron costs on its core: parameters and initial values (60 B each for IF_curr_*) and
#: the neuron builder's per-neuron data (~350-400 B, measured per region on the virtual board)
NEURON_SDRAM_BYTES = 500
#: the fixed regions of a neuron core (system, core params, provenance, recording headers...)
CORE_SDRAM_BYTES = 2_000


def conv_core_words(pr: Projection, per: int, pre_grid: list | None, pre_per: int,
                    post_grid: list | None = None) -> int:
    """Synaptic-matrix words on one post core of ``per`` consecutive (C-order) neurons for a
    FromList built from a kept conv, in closed form (an estimate, checked on the virtual board):
    every source core whose neurons reach the core's output rows (the input rows under them, all
    columns, in every source channel with a nonzero tap) brings all its neurons' rows, each 3
    header words plus the projection's longest row (sPyNNaker pads rows to it)."""
    geo = pr.conv
    co, cig, kh, kw = pr.w_int.shape
    C_in, H, W = geo["in_shape"]
    _, Ho, Wo = geo["out_shape"]
    (sh, _sw), (dh, _dw) = geo["stride"], geo["dilation"]
    plane = Ho * Wo
    out_cols = Wo
    if post_grid:   # a channel population's (x, y) tile
        n_co, out_rows, out_cols = 1, min(Ho, post_grid[3]), min(Wo, post_grid[2])
    elif per >= plane:
        n_co, out_rows = min(co, math.ceil(per / plane) + 1), Ho
    else:
        n_co, out_rows = (2 if plane % per else 1), min(Ho, math.ceil(per / Wo) + 1)
    in_rows = min(H, (out_rows - 1) * sh + (kh - 1) * dh + 1)
    in_cols = W if out_cols == Wo else min(W, (out_cols - 1) * geo["stride"][1] + (kw - 1) * geo["dilation"][1] + 1)
    nz = np.any(pr.w_int != 0, axis=(2, 3))                      # (co, cig) channel pairs in use
    ci = min(C_in, int(math.ceil(nz.sum(axis=1).mean())) * n_co) if nz.any() else 0
    if pre_grid:    # a channel population: (x, y) tiles
        tx, ty = pre_grid[2], pre_grid[3]
        cols = W if in_cols == W else min(W, (math.ceil(in_cols / tx) + 1) * tx)
        rows = ci * min(H, (math.ceil(in_rows / ty) + 1) * ty) * cols
    else:           # C-order slices of pre_per neurons
        rows = ci * (math.ceil(in_rows * in_cols / pre_per) + 1) * pre_per
    rows = min(int(np.prod(geo["in_shape"])), rows)
    return int(rows * (3 + int(pr.fan_out(C.n_pre(geo)).max(initial=0))))


def estimate_resources(program: Program, per_core: int = NEURONS_PER_CORE) -> dict:
    """Cores, chips, boards and an SDRAM estimate per core (see docs/spinnaker-conv.md).

    Cores: ``per_core`` neurons a core for a standard population; a channel population (local-only
    conv cores, or the channels of their sources) tiles its (H, W) map with the (x, y) tile of its
    ``grid``; a ``SpikeSourceArray`` sits on one core unless it is an input channel (tiles).
    Chips: a lower bound, 16 application cores a chip (15 on the Ethernet chip, which also holds
    the data gatherer; the placer may spread further); boards: 48 chips each.
    SDRAM per core (estimates): neuron state and its builder data; for FromList synapses the synaptic rows (3 header
    words + the longest row, for every source neuron; a kept conv's per core: one word a synapse
    landing on the core plus 3 per source row, at most one row a synapse); for local-only cores
    region 9 (sources, connectors, kernel words) and region 8; plus a fixed overhead."""
    cores, sdram, kinds, synapses = {}, {}, {}, {}
    into: dict[str, list] = {}
    for pr in program.projections:
        into.setdefault(pr.post, []).append(pr)
    for p in program.populations:
        k = L.n_tiles(p.grid[0], p.grid[1], p.grid[2:]) if p.grid else math.ceil(p.size / per_core)
        cores[p.name] = k
        per = min(p.size, per_core) if not p.grid else min(p.size, p.grid[2] * p.grid[3])
        projs = into.get(p.name, [])
        local = any(pr.conv is not None and pr.conv["connector"] == "conv" for pr in projs)
        kinds[p.name] = "local-only conv" if local else "standard"
        synapses[p.name] = int(sum(pr.n_synapses for pr in projs))
        if local:
            kernel_words = sum(int(np.prod(pr.w_int.shape[2:])) for pr in projs if pr.receptor == "excitatory"
                               or not any(q.name.rpartition(".")[0] == pr.name.rpartition(".")[0]
                                          and q.receptor == "excitatory" for q in projs))
            n_conn = len({pr.name.rpartition(".")[0] for pr in projs})
            n_src = len({pr.pre for pr in projs})
            region = (CONV_HEADER_BYTES + CONV_SOURCE_BYTES * n_src + CONV_CONNECTOR_BYTES * n_conn
                      + 2 * (kernel_words + kernel_words % 2) + LOCAL_ONLY_BYTES)
            sdram[p.name] = k * (NEURON_SDRAM_BYTES * per + region + CORE_SDRAM_BYTES)
            continue
        n_in = 0
        rows = 0
        conv_words = 0
        for pr in projs:
            n_in += 1
            if pr.conv is not None:   # per core: the source rows that reach it, padded to the longest
                src = next((q for q in program.populations if q.name == pr.pre), None)
                conv_words += k * conv_core_words(pr, per, src.grid if src is not None else None,
                                                  per_core if src is not None else program.size_of(pr.pre),
                                                  p.grid)
                continue
            fan = pr.fan_out(program.size_of(pr.pre))
            rows += program.size_of(pr.pre) * (3 + int(fan.max(initial=0)))
        sdram[p.name] = k * (NEURON_SDRAM_BYTES * per + 4 * (rows + 64 * n_in) + CORE_SDRAM_BYTES) + 4 * conv_words
    for s in program.sources:
        cores[s.name] = L.n_tiles(s.grid[0], s.grid[1], s.grid[2:]) if s.grid else 1
        sdram[s.name] = 1_000 + s.size
        kinds[s.name] = "spike source"
    n_cores = sum(cores.values())
    chips_cores = max(1, math.ceil((n_cores + 1) / CORES_PER_CHIP))
    # SDRAM packing: a chip holds at most CHIP_SDRAM of its cores' data
    packed = sum(cores[n] / max(1, min(CORES_PER_CHIP, CHIP_SDRAM // max(1, sdram[n] // cores[n])))
                 for n in cores if cores[n])
    chips = max(chips_cores, math.ceil(packed))
    by_kind = {}
    for name, kind in kinds.items():
        by_kind[kind] = by_kind.get(kind, 0) + cores[name]
    per_core_max = max((sdram[n] / cores[n] for n in cores), default=0)
    return {"cores": cores, "total_cores": n_cores, "chips": chips, "chips_for_cores": chips_cores,
            "chips_for_sdram": math.ceil(packed),
            "boards": math.ceil(chips / CHIPS_PER_BOARD), "cores_by_kind": by_kind, "core_kind": kinds,
            "synapses": synapses, "total_synapses": int(sum(synapses.values())),
            "sdram_bytes": sdram, "total_sdram_bytes": int(sum(sdram.values())),
            "max_sdram_bytes_per_core": int(per_core_max), "neurons_per_core": per_core,
            "estimate": "cores exact for the splits sPyNNaker 7.4 makes; chips a lower bound; SDRAM an estimate"}


def check_fits(resources: dict, boards: int | None) -> None:
    """Refuse (UnsupportedError, one line with the figures) a program that needs more chips than
    the machine has (``boards`` SpiNN-5 boards; default the largest machine, SpiNNaker1M) or a
    core more SDRAM than a chip holds."""
    limit = MAX_BOARDS if boards is None else int(boards)
    have = limit * CHIPS_PER_BOARD
    if resources["chips"] > have:
        raise UnsupportedError(
            f"the network needs {resources['total_cores']} cores on at least {resources['chips']} chips "
            f"({resources['boards']} boards); the machine has {limit} boards ({have} chips, "
            f"{have * CORES_PER_CHIP} application cores)")
    worst = max(resources["sdram_bytes"], key=lambda n: resources["sdram_bytes"][n] / resources["cores"][n],
                default=None)
    if worst is not None and resources["sdram_bytes"][worst] / resources["cores"][worst] > CHIP_SDRAM:
        need = resources["sdram_bytes"][worst] / resources["cores"][worst]
        raise UnsupportedError(
            f"population '{worst}' needs ~{need / 2 ** 20:.0f} MiB of SDRAM a core (estimate), more than a "
            f"chip's {CHIP_SDRAM >> 20} MiB (FromList rows: every neuron of each source core that reaches it, "
            "padded to the longest row); split the sources into smaller populations or use fewer neurons_per_core")
