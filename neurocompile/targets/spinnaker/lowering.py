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
projection (sPyNNaker needs one sign per projection and synapse type). Every hop costs at least
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
from neurocompile.targets.spinnaker import fixed as F
from neurocompile.targets.spinnaker import host_input as H
from neurocompile.targets.spinnaker.lowered import NEURONS_PER_CORE, LoweredSpiNNaker
from neurocompile.targets.spinnaker.program import (
    HostDrive,
    HostInput,
    Population,
    Program,
    Projection,
    Source,
    max_summed_weight,
    predict_shifts,
    weight_words,
)

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


def _uni(node, name, field, size):
    return np.broadcast_to(np.asarray(getattr(node, field), dtype=float), (size,)).astype(float)


def check_supported(graph: Graph) -> None:
    for name, node in graph.nodes.items():
        if isinstance(node, (N.Input, N.Output, N.Linear)):
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
        if isinstance(node, N.Linear):
            preds = graph.predecessors(name)
            if len(preds) != 1 or not isinstance(graph.nodes[preds[0]], (N.Input,) + SUPPORTED):
                raise UnsupportedError("a synapse matrix must start at the input or at one neuron "
                                       "group", node=name)
            for s in graph.successors(name):
                if not isinstance(graph.nodes[s], SUPPORTED):
                    raise UnsupportedError(f"a synapse matrix must end at a neuron group, not "
                                           f"{graph.nodes[s].op}", node=name)
        if isinstance(node, N.Output):
            for p in graph.predecessors(name):
                if not isinstance(graph.nodes[p], SUPPORTED):
                    raise UnsupportedError("SpiNNaker outputs are spike trains of a neuron group",
                                           node=name)


@dataclasses.dataclass
class _Syn:
    pre: str
    post: str
    matrix: np.ndarray          # (n_post, n_pre)
    bias: np.ndarray            # (n_post,)
    recurrent: bool
    node: str


def _synapses(graph: Graph, shapes) -> list[_Syn]:
    back = graph.recurrent_edges()
    out = []
    for g, node in graph.nodes.items():
        if not isinstance(node, SUPPORTED):
            continue
        for p in graph.predecessors(g):
            pn = graph.nodes[p]
            if isinstance(pn, N.Linear):
                (src,) = graph.predecessors(p)
                rec = (src, p) in back or (p, g) in back
                bias = np.broadcast_to(getattr(pn, "bias", 0.0), (shapes[g][0],)).astype(float)
                out.append(_Syn(src, g, np.asarray(pn.weight, float), bias, rec, p))
            else:
                n = shapes[g][0]
                if shapes[p][0] != n:
                    raise UnsupportedError("a direct edge between groups needs equal sizes", node=g)
                out.append(_Syn(p, g, np.eye(n), np.zeros(n), (p, g) in back, g))
    return out


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
    return F.s1615_from_host(np.asarray(x, dtype=float))


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
        stats = neuron_drive_stats(graph, opts.calibration)
        syns = _synapses(graph, shapes)
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
            n = shapes[g][0]
            bias = (np.broadcast_to(bias_ff.get(g, 0.0), (n,)).astype(float),
                    np.broadcast_to(bias_rec.get(g, 0.0), (n,)).astype(float))
            args = (graph, g, node, n, stats[g], lat[g], margin, if_window, ts, bias, g in host_driven)
            pop, gain, rep = self._group(*args, boost=1.0)
            # keep sPyNNaker's worst-case ring-buffer sum (max weight x fan-in, per projection)
            # below RB_LIMIT nA so that the left shift stays <= 14 and word << shift fits an accum
            bound = _group_bound(syns, g, gain)
            if bound > RB_LIMIT:
                pop, gain, rep = self._group(*args, boost=RB_LIMIT / bound)
                rep["scaled_down_for_ring_buffer"] = RB_LIMIT / bound
            pops.append(pop)
            gains[g] = gain
            reports[g] = rep
        # projections: float weights in nA, split by sign
        raw_projs: list[Projection] = []
        for s in syns:
            W = s.matrix * gains[s.post][:, None]
            pre = inp if s.pre == inp else s.pre
            for rec, mask in (("excitatory", W > 0), ("inhibitory", W < 0)):
                post_i, pre_i = np.nonzero(mask)
                if post_i.size:
                    raw_projs.append(Projection(
                        name=f"{s.node}.{rec[:3]}", pre=pre, post=s.post, receptor=rec,
                        delay=delays[id(s)], pre_idx=pre_i.astype(np.int64),
                        post_idx=post_i.astype(np.int64), weight=np.abs(W[post_i, pre_i]),
                        w_int=np.zeros(post_i.size, dtype=np.int64)))
        projs, shifts, qrep = _quantize_weights(raw_projs, [p.name for p in pops])
        n_in = int(shapes[inp][0])
        host = _host_input(host_syns, {p.name: p for p in pops}, gains, graph, ts, n_in)
        sources = [] if host else [Source(name=inp, kind="input", size=n_in)]
        outputs = {}
        for o in graph.outputs:
            (p,) = graph.predecessors(o)
            outputs[o] = p
        program = Program(timestep_ms=TIMESTEP_MS, time_scale_factor=1, graph_dt=graph.dt,
                          populations=pops, sources=sources, projections=projs, shifts=shifts,
                          outputs=outputs, input_name=inp, host_input=host)
        resources = estimate_resources(program, per_core)
        in_rep = _input_report(program, graph, opts.calibration, per_core, encoding)
        rep = {"timestep_ms": TIMESTEP_MS, "time_scale_factor": 1,
               "graph_time_per_tick_s": graph.dt,
               "board_slowdown_vs_graph_time": (1e-3 / graph.dt) if graph.dt else None,
               "latency": {p.name: p.latency for p in pops},
               "output_shift_ticks": {o: lat[p] for o, p in outputs.items()},
               "groups": reports, "ring_buffer_shifts": shifts, "weights": qrep,
               "resources": resources, "input": in_rep}
        program.report = rep
        ctx.report["spinnaker"] = rep
        ctx.report["input"] = in_rep
        return LoweredSpiNNaker(graph=graph, program=program)

    # -- one neuron group -------------------------------------------------------------------
    def _group(self, graph, g, node, n, st, latency, margin, if_window, ts, biases, host_driven, boost):
        bias = biases[0] + biases[1]
        thr = _uni(node, g, "v_threshold", n)
        vreset = _uni(node, g, "v_reset", n)
        r = _uni(node, g, "r", n)
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
            beta = np.broadcast_to(N.decay_factor(np.asarray(getattr(node, node.membrane_tau), float), dt, rule),
                                   (n,)).astype(float)
            if np.any(beta <= 0) or np.any(beta >= 1):
                raise UnsupportedError(f"membrane decay {beta.min():.4g}..{beta.max():.4g} is outside "
                                       "(0, 1): dt is too large for this tau", node=g)

            check_resolution(graph, g, node, node.membrane_tau, "SpiNNaker's s16.15", 2.0 ** -15)
            if isinstance(node, (N.CubaLIF, N.CubaLI)):
                check_resolution(graph, g, node, "tau_syn", "SpiNNaker's s16.15", 2.0 ** -15)
            tau_m = _best_raw(beta, -TIMESTEP_MS / np.log(beta),
                              lambda c: F.expk(F.wrap32(-F.kdivk(ts, c))) / F.ONE)
            v_leak = _uni(node, g, "v_leak", n)
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
                alpha = np.broadcast_to(N.decay_factor(np.asarray(node.tau_syn, float), dt, rule),
                                        (n,)).astype(float)
                if np.any(alpha <= 0) or np.any(alpha >= 1):
                    raise UnsupportedError("synaptic decay outside (0, 1): dt too large for tau_syn", node=g)
                tau_s = _best_raw(alpha, -TIMESTEP_MS / np.log(alpha),
                                  lambda c: F.exp_synapse_init(c, ts)[0] / 2.0 ** 32)
                raw.update(tau_syn_E=tau_s, tau_syn_I=tau_s.copy())
                decay, init = F.exp_synapse_init(tau_s, ts)
                w_in = _uni(node, g, "w_in", n)
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
                n_in: int) -> HostInput | None:
    """The first synapse layer for the host: per driven group, the summed matrix from the input
    as padded rows of nonzero weights, and the factors from graph units to chip words."""
    if not host_syns:
        return None
    entries = []
    for g in dict.fromkeys(s.post for s in host_syns):
        pop = pops[g]
        W = sum(s.matrix for s in host_syns if s.post == g)
        nz = W != 0
        m = max(1, int(nz.sum(axis=1).max(initial=0)))
        pre = np.zeros((pop.size, m), dtype=np.int64)
        w = np.zeros((pop.size, m))
        for j in range(pop.size):
            (idx,) = np.nonzero(nz[j])
            pre[j, :idx.size] = idx
            w[j, :idx.size] = W[j, idx]
        node = graph.nodes[g]
        zeros = np.zeros(pop.size)
        # |R * word| <= host_input.LIMIT: R = kdivk(tau_m, cm) (1.0 for LIF/CubaLIF, 16384 for IF)
        R = F.lif_init(pop.raw["tau_m"], pop.raw["cm"], pop.raw["tau_refrac"], ts)["R"]
        limit = np.floor(H.LIMIT * float(F.ONE) / R.astype(float))
        if pop.model == "IF_curr_exp":
            alpha = np.broadcast_to(N.decay_factor(np.asarray(node.tau_syn, float), graph.dt,
                                                   graph.discretization), (pop.size,)).astype(float)
            w_in = _uni(node, g, "w_in", pop.size)
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


def _group_bound(syns, g, gain) -> float:
    """sPyNNaker's worst-case ring-buffer sum (nA) of group ``g`` for its larger synapse type."""
    b = {True: [], False: []}
    for sy in syns:
        if sy.post != g:
            continue
        W = sy.matrix * gain[:, None]
        for pos in (True, False):
            m = W > 0 if pos else W < 0
            if m.any():
                b[pos].append((np.abs(W[m]), np.nonzero(m)[0]))
    return max(max_summed_weight(b[True], TIMESTEP_MS), max_summed_weight(b[False], TIMESTEP_MS))


def _quantize_weights(projs: list[Projection], pops: list[str]):
    """Predict sPyNNaker's shifts, quantize to 16-bit words and export exact nA weights.

    The shift sPyNNaker computes from the *exported* weights must equal the one they were
    quantized with. Rounding can push ``max word x fan-in`` over the power of two the float
    weights were under; then the largest words of that synapse type are lowered by one LSB until
    the bound fits again. If instead the exported weights call for a smaller shift, quantize
    again with it (shifts only go down, so this ends)."""
    floats = [p.weight.copy() for p in projs]
    shifts = predict_shifts(projs, pops, TIMESTEP_MS)
    for _ in range(20):
        words_all = []
        for p, w in zip(projs, floats):
            sh = shifts[p.post][0 if p.receptor == "excitatory" else 1]
            words_all.append(weight_words(w, sh))
        for pop in pops:
            for r, rec in enumerate(("excitatory", "inhibitory")):
                idx = [i for i, p in enumerate(projs) if p.post == pop and p.receptor == rec]
                if not idx:
                    continue
                fan = {i: int(np.bincount(projs[i].post_idx).max()) for i in idx}
                while True:
                    total = sum(int(words_all[i].max(initial=0)) * fan[i] for i in idx)
                    if total < (1 << 15):
                        break
                    j = max(idx, key=lambda i: int(words_all[i].max(initial=0)) * fan[i])
                    words_all[j] = np.minimum(words_all[j], int(words_all[j].max()) - 1)
        out, masks = [], []
        for p, words in zip(projs, words_all):
            sh = shifts[p.post][0 if p.receptor == "excitatory" else 1]
            keep = words > 0
            masks.append(keep)
            out.append(dataclasses.replace(p, pre_idx=p.pre_idx[keep], post_idx=p.post_idx[keep],
                                           w_int=words[keep], weight=words[keep] * 2.0 ** (sh - 15)))
        new = predict_shifts(out, pops, TIMESTEP_MS)
        if new == shifts:
            break
        shifts = new
    else:  # pragma: no cover - shifts only decrease, so this is never reached
        raise UnsupportedError("ring-buffer shifts do not settle for these weights")
    rep = {}
    for p, w, q, keep in zip(projs, floats, out, masks):
        got = np.zeros_like(w)
        got[keep] = q.weight
        err = np.abs(got - w)
        rep[p.name] = {"n": int(w.size), "dropped_zero": int(w.size - q.pre_idx.size),
                       "max_rel_error": float(err.max() / max(float(w.max()), 1e-300)) if w.size else 0.0,
                       "shift": shifts[p.post][0 if p.receptor == "excitatory" else 1]}
    out = [p for p in out if p.pre_idx.size]
    return out, shifts, rep


def estimate_resources(program: Program, per_core: int = NEURONS_PER_CORE) -> dict:
    """Cores (``per_core`` neurons a core; sPyNNaker 7.4 keeps a ``SpikeSourceArray`` on one core),
    a lower bound on chips (16 application cores a chip: 18 minus the monitor and the extra
    monitor sPyNNaker puts on every chip; 15 on the Ethernet chip, which also holds the data
    gatherer; the placer may spread further) and an SDRAM estimate per core: neuron state,
    synaptic rows (3 header words + the longest row, for every source neuron), and overhead."""
    cores = {}
    sdram = {}
    for p in program.populations:
        k = math.ceil(p.size / per_core)
        cores[p.name] = k
        n_in = 0
        rows = 0
        for pr in program.projections:
            if pr.post != p.name:
                continue
            fan = np.bincount(pr.pre_idx, minlength=program.size_of(pr.pre))
            rows += program.size_of(pr.pre) * (3 + int(fan.max(initial=0)))
            n_in += 1
        per = min(p.size, per_core)
        words = per * 16 + rows + 64 * n_in
        sdram[p.name] = k * (4 * words + 12_000)
    for s in program.sources:
        cores[s.name] = 1
        sdram[s.name] = 1_000 + s.size
    n_cores = sum(cores.values())
    return {"cores": cores, "total_cores": n_cores, "chips": max(1, math.ceil((n_cores + 1) / 16)),
            "sdram_bytes": sdram, "total_sdram_bytes": int(sum(sdram.values())),
            "neurons_per_core": per_core}
