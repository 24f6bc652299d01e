"""Fixed-point emulator of what sPyNNaker 7.x's cores compute for a :class:`~.program.Program`.

One tick of the chip (``c_main.c`` ``timer_callback`` then ``background_callback``; one time step
per tick, ``n_steps_per_timestep = 1``), in the order the C code runs it:

1. **Ring buffer to synaptic input** (``c_main.c`` ``process_ring_buffers`` -> ``neuron.c``
   ``neuron_transfer``): the ring-buffer slot of this tick holds, per synapse type and neuron,
   the sum of the 16-bit weights of the spikes due now, saturated at 0xFFFF
   (``synapses.c``: ``acc = acc + w; if (acc & 0x10000) acc = 0xFFFF``). Each nonzero word becomes
   the accum ``word << shift`` (``synapse_row_convert_weight_to_input``) and is added to the
   synaptic state: ``IF_curr_exp`` adds ``decay_s1615(input, init)``
   (``exp_synapse_utils.h`` ``add_input_exp``), ``IF_curr_delta`` adds ``input`` itself
   (``synapse_types_delta_impl.h``). The slot is cleared.
2. **Neuron update** (``neuron_impl_standard.h`` ``neuron_impl_do_timestep_update``):

   * the recorded ``v`` of a tick is the membrane *before* this update;
   * input current (``input_type_current.h``: unchanged; ``input_type_delta.h``: each receptor
     times ``scale_factor = 1/ts`` with ``mul_k``);
   * ``neuron_model_lif_impl.h`` ``neuron_model_state_update``: if ``refract_timer <= 0``:
     ``I = exc - inh + I_offset``, ``alpha = mul_k(I, R) + V_rest``,
     ``V = alpha - mul_k(exp_TC, alpha - V)`` (32-bit wrapping adds); else ``refract_timer -= 1``
     and ``V`` is left alone;
   * ``threshold_type_static.h``: spike when ``V >= V_thresh`` (checked in refractory ticks too);
   * on a spike ``neuron_model_has_spiked``: ``V = V_reset``, ``refract_timer = T_refract``;
     the spike is sent (multicast) this tick;
   * ``synapse_types_shape_input``: ``IF_curr_exp`` decays both currents with
     ``decay_s1615(I_syn, decay)``; ``IF_curr_delta`` sets them to 0.
3. **Spike arrival** (``spike_processing.c`` -> ``synapses.c`` ``process_fixed_synapses``): a spike
   sent at tick ``t`` is processed during tick ``t`` and its weights are added to the slot
   ``t + delay`` (delay >= 1 tick). So a spike reaches the next population's neuron update
   ``delay`` ticks later. A ``SpikeSourceArray`` sends a spike listed at time ``t * timestep`` at
   tick ``t``. A projection kept as a convolution (:mod:`.conv`) adds the same words as its
   synapse list would (the list is implied by the kernel), computed by index arithmetic. (On a
   real machine a packet that arrives after the next tick has started lands one slot late; the
   emulator models the intended, on-time case.)

4. **Host current** (a program with ``host_input``, :mod:`.host_input`): per sample the words of
   :func:`.host_input.plan`. Offset mode replaces the population's ``I_offset`` (and, for
   ``IF_curr_exp``, the start value of ``isyn_exc``) by the sample's words; step mode adds, in
   step 2's sum ``exc - inh + I_offset + current_offset``, the word of ``current_source_step.h``:
   at tick ``t``, ``if (t >= times[index]) { last = amps[index]; index++ }``, starting from
   ``index = 0, last = 0`` -- read every tick, used only outside the refractory period.

All states are raw 32-bit words in int64 arrays of shape (batch, neurons).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from neurocompile.targets.spinnaker import fixed as F
from neurocompile.targets.spinnaker import host_input as H
from neurocompile.targets.spinnaker.conv import conv_add
from neurocompile.targets.spinnaker.program import Program

SAT = 0xFFFF


@dataclasses.dataclass
class ChipRun:
    """Per population: ``spikes`` (ticks, batch, n) bool; ``v``/``i_exc``/``i_inh`` raw words after
    each tick's update (``v`` after reset), when recorded; ``saturations`` counts ring-buffer slots
    that saturated."""

    n_ticks: int
    spikes: dict[str, np.ndarray]
    v: dict[str, np.ndarray]
    i_exc: dict[str, np.ndarray]
    i_inh: dict[str, np.ndarray]
    saturations: dict[str, int]
    #: host-driven populations, when recorded: I_offset + current_offset of each tick (raw)
    i_host: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)


def _matrix(pr, shape):
    """(n_pre, n_post) matrix of the 16-bit words: sparse when scipy is there (the sums of
    integer words below 2**53 are exact in float64 either way); None for a conv projection
    (run by index arithmetic, :func:`.conv.conv_add`)."""
    if pr.conv is not None:
        return None
    try:
        from scipy import sparse
    except ImportError:  # pragma: no cover - scipy comes with sPyNNaker and most stacks
        M = np.zeros(shape)
        np.add.at(M, (pr.pre_idx, pr.post_idx), pr.w_int.astype(np.float64))
        return M
    return sparse.csr_matrix((pr.w_int.astype(np.float64), (pr.pre_idx, pr.post_idx)), shape=shape)


class _PopState:
    def __init__(self, pop, batch: int, depth: int, ts: np.int64):
        raw = pop.raw
        self.pop = pop
        self.exp = pop.model == "IF_curr_exp"
        n = pop.size
        init = F.lif_init(raw["tau_m"], raw["cm"], raw["tau_refrac"], ts)
        self.R, self.exp_tc, self.t_refract = init["R"], init["exp_tc"], init["t_refract"]
        self.v_rest, self.v_reset = raw["v_rest"], raw["v_reset"]
        self.v_thresh, self.i_offset = raw["v_thresh"], raw["i_offset"]
        self.v = np.broadcast_to(raw["v"], (batch, n)).astype(np.int64).copy()
        self.timer = np.broadcast_to(pop.refract_timer, (batch, n)).astype(np.int64).copy()
        self.syn = np.zeros((2, batch, n), dtype=np.int64)
        self.syn[0] = raw["isyn_exc"]
        self.syn[1] = raw["isyn_inh"]
        if self.exp:
            de, ie = F.exp_synapse_init(raw["tau_syn_E"], ts)
            di, ii = F.exp_synapse_init(raw["tau_syn_I"], ts)
            self.decay = np.stack([de, di])
            self.init = np.stack([ie, ii])
        else:
            self.scale_factor = F.delta_input_scale(ts)
        self.ring = np.zeros((depth, 2, batch, n), dtype=np.int64)
        self.saturations = 0


class _StepSource:
    """The ``StepCurrentSource`` of every neuron of one population, for every sample."""

    def __init__(self, times: np.ndarray, amps: np.ndarray):
        self.times, self.amps = times, amps
        self.index = np.zeros(times.shape[:2], dtype=np.int64)
        self.last = np.zeros(times.shape[:2], dtype=np.int64)

    def offset(self, t: int) -> np.ndarray:
        due = t >= np.take_along_axis(self.times, self.index[..., None], axis=2)[..., 0]
        amp = np.take_along_axis(self.amps, self.index[..., None], axis=2)[..., 0]
        self.last = np.where(due, amp, self.last)
        self.index = self.index + due
        return self.last


def run_program(program: Program, x_in: np.ndarray, n_ticks: int | None = None, *,
                record_v: bool = False, record_i: bool = False,
                progress=None, host_plan: list[dict] | None = None) -> ChipRun:
    """Run ``program`` on its input ``(T, batch, n_in)`` for ``n_ticks`` ticks (default ``T + max
    latency``): 0/1 spikes, or for a program with ``host_input`` the float input (whose words
    :func:`.host_input.plan` computes, unless ``host_plan`` gives them)."""
    x = np.asarray(x_in)
    if x.ndim != 3:
        raise ValueError("the input must be (T, batch, n_inputs)")
    T, B, _ = x.shape
    n_ticks = T + program.max_latency if n_ticks is None else int(n_ticks)
    depth = program.max_delay + 1
    shifts = program.shifts
    ts = np.int64(F.s1615_from_host(program.timestep_ms))
    states = {p.name: _PopState(p, B, depth, ts) for p in program.populations}
    steps: dict[str, _StepSource] = {}
    if program.host_input is not None:
        plans = host_plan if host_plan is not None else H.plan(program.host_entries(), x)
        for hp in plans:
            st = states[hp["pop"]]
            st.i_offset = hp["i_offset"]
            st.syn[0] = hp["isyn_exc"]
            steps[hp["pop"]] = _StepSource(hp["times"], hp["amps"])
    out_ih = {n: np.zeros((n_ticks, B, states[n].pop.size), dtype=np.int64) for n in steps} if record_i else {}
    proj_mats = []
    for pr in program.projections:
        shape = (program.size_of(pr.pre), program.size_of(pr.post))
        M = _matrix(pr, shape)
        proj_mats.append((pr, M, 0 if pr.receptor == "excitatory" else 1))
    out_spk = {n: np.zeros((n_ticks, B, s.pop.size), dtype=bool) for n, s in states.items()}
    out_v = {n: np.zeros((n_ticks, B, s.pop.size), dtype=np.int64) for n, s in states.items()} if record_v else {}
    out_ie = {n: np.zeros((n_ticks, B, s.pop.size), dtype=np.int64) for n, s in states.items()} if record_i else {}
    out_ii = {n: np.zeros((n_ticks, B, s.pop.size), dtype=np.int64) for n, s in states.items()} if record_i else {}
    for t in range(n_ticks):
        slot = t % depth
        # 1. ring buffer -> synaptic input
        for name, st in states.items():
            words = st.ring[slot]
            sat = words > SAT
            st.saturations += int(sat.sum())
            words = np.minimum(words, SAT)
            st.ring[slot] = 0
            for r in (0, 1):
                inp = words[r] << shifts[name][r]
                if st.exp:
                    st.syn[r] = F.wrap32(st.syn[r] + F.decay_s1615(inp, st.init[r]))
                else:
                    st.syn[r] = F.wrap32(st.syn[r] + inp)
        # 2. neuron update
        fired = {}
        for name, st in states.items():
            if st.exp:
                exc, inh = st.syn[0], st.syn[1]
            else:
                exc = F.mul_k(st.syn[0], st.scale_factor)
                inh = F.mul_k(st.syn[1], st.scale_factor)
            if record_i:
                out_ie[name][t] = exc
                out_ii[name][t] = inh
            active = st.timer <= 0
            offset = st.i_offset
            if name in steps:
                offset = F.wrap32(offset + steps[name].offset(t))
                if record_i:
                    out_ih[name][t] = offset
            current = F.wrap32(exc - inh + offset)
            alpha = F.wrap32(F.mul_k(current, st.R) + st.v_rest)
            v_new = F.wrap32(alpha - F.mul_k(st.exp_tc, F.wrap32(alpha - st.v)))
            st.v = np.where(active, v_new, st.v)
            st.timer = np.where(active, st.timer, st.timer - 1)
            spk = st.v >= st.v_thresh
            st.v = np.where(spk, st.v_reset, st.v)
            st.timer = np.where(spk, st.t_refract, st.timer)
            if st.exp:
                st.syn = F.decay_s1615(st.syn, st.decay[:, None, :])
            else:
                st.syn[:] = 0
            fired[name] = spk
            out_spk[name][t] = spk
            if record_v:
                out_v[name][t] = st.v
        # 3. spikes of this tick (sources and neurons) land in slot t + delay
        for s in program.sources:
            if s.kind == "input":
                if program.host_input is not None:   # pragma: no cover - the lowering makes one or the other
                    raise ValueError("a program with a host input has no input spike source")
                fired[s.name] = (x[t, :, s.offset:s.offset + s.size] > 0 if t < T
                                 else np.zeros((B, s.size), dtype=bool))
            else:
                fired[s.name] = np.broadcast_to(t >= np.asarray(s.first_tick), (B, s.size))
        for pr, M, r in proj_mats:
            spk = fired[pr.pre]
            if not spk.any():
                continue
            if M is None:
                add = np.rint(conv_add(spk, pr.w_int, pr.conv)).astype(np.int64)
            else:
                add = np.rint(np.asarray(M.T @ spk.astype(np.float64).T).T).astype(np.int64)
            states[pr.post].ring[(t + pr.delay) % depth, r] += add
        if progress:
            progress(t + 1, n_ticks)
    return ChipRun(n_ticks=n_ticks, spikes=out_spk, v=out_v, i_exc=out_ie, i_inh=out_ii,
                   saturations={n: st.saturations for n, st in states.items()}, i_host=out_ih)
