"""SpiNNaker profile, part 1: the fixed-point words, derived by hand from sPyNNaker's C code.

Every expected number below is worked out in the comment next to it from the formulas of
``neuron_model_lif_impl.h``, ``exp_synapse_utils.h``, ``decay.h``, ``neuron.c`` and spinn_common's
``stdfix-exp.c`` (raw s16.15 words: 32768 = 1.0).
"""
import numpy as np
import pytest

from neurocompile.targets.spinnaker import fixed as F
from neurocompile.targets.spinnaker.emulator import run_program
from neurocompile.targets.spinnaker.program import Population, Program, Projection, Source, shift_for, weight_words

ONE = 32768


def test_host_conversion_rounds_decimal_text_half_to_even():
    # 0.1 ms -> 0.1 * 32768 = 3276.8 -> 3277 (the 0.1 ms time step is not exact: 0.100006)
    assert F.s1615_from_host(0.1) == 3277
    # exact halves of an LSB go to the even word: 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, -0.5 -> 0
    lsb = 1 / 32768
    assert F.s1615_from_host([0.5 * lsb, 1.5 * lsb, 2.5 * lsb, -0.5 * lsb]).tolist() == [0, 2, 2, 0]
    with pytest.raises(ValueError):
        F.s1615_from_host(65536.0)


def test_accum_multiply_truncates_towards_minus_infinity():
    # smull then bits 46..15: floor(a*b / 2**15)
    assert F.mul_k(98305, 31148) == 93444      # 93444.95 -> 93444
    assert F.mul_k(-98305, 31148) == -93445    # -93444.95 -> -93445
    # decay_s1615: floor(x * d / 2**32); d = 0.75 as u0.32
    assert F.decay_s1615(32769, 3 << 30) == 24576      # 24576.75 -> 24576
    assert F.decay_s1615(-32769, 3 << 30) == -24577    # -24576.75 -> -24577
    # the sum wraps like a 32-bit register
    assert F.wrap32(np.int64(2**31)) == -2**31


def test_exponential_matches_the_library_algorithm():
    # the integer-part table is round(2**32 e**(k-13)): entry 13 is 2**32, so expk(0) = 1.0
    assert F.expk(0) == ONE
    # expk(-2**-15): z=0, f=1 -> y = 1 << 17; series = 5294 + floor(floor(...)*y/2**32) = 136317;
    # 2**32 - 136317 = 4294830979; >> 17 = 32766 (the fitted series' offset costs one LSB)
    assert F.expk(-1) == 32766
    # tau_m = 20 ms, ts = 1 ms: kdivk(32768, 655360) = (32768 << 15) // 655360 = 1638 (0.04999)
    assert F.kdivk(ONE, 20 * ONE) == 1638
    assert F.expk(-1638) == 31170           # e**-0.04999 = 0.951233 -> 31170.0
    # expulr keeps the low 32 bits: e**0 = 2**32 does not fit, so expulr(0) == 0 on the chip
    assert F.expulr(0) == 0
    x = np.arange(-340695, 0, 4099)
    err = np.abs(F.expulr(x) - np.exp(x / ONE) * 2.0**32)
    assert err.max() < 6000                 # ~1.4e-6 relative: the series' 5294 offset dominates
    assert F.expk(-340696) == 0 and F.expk(363409) == 2**31 - 1


def test_synapse_and_neuron_start_up_values():
    # tau_syn = 5 ms: decay = expulr(-kdivk(1.0, 5.0)) = expulr(-6553) = 3516490311 (0.81873)
    # init = kdivk(5.0, 1.0) * (0xFFFFFFFF - decay) >> 15 = 163840 * 778476984 >> 15 = 3892384920
    decay, init = F.exp_synapse_init(5 * ONE, ONE)
    assert (int(decay), int(init)) == (3516490311, 3892384920)
    # R = kdivk(tau_m, cm) = 1.0 when cm == tau_m; T_refract = ceil(2.0 / 1.0) = 2
    lif = F.lif_init(20 * ONE, 20 * ONE, 2 * ONE, ONE)
    assert (int(lif["R"]), int(lif["exp_tc"]), int(lif["t_refract"])) == (ONE, 31170, 2)
    # tau_refrac 0.1 ms with ts 1 ms: kdivk = 3276 (0.09998) -> ceil -> 1 tick
    assert F.lif_init(20 * ONE, 20 * ONE, 3277, ONE)["t_refract"] == 1


def _one_neuron(model, word, receptor="excitatory", shift=2, v_thresh=10 * ONE, tau_refrac=0,
                ticks=4, spike_ticks=(0,)):
    n = 1
    raw = {"v": np.zeros(n, np.int64), "v_rest": np.zeros(n, np.int64),
           "cm": np.full(n, 20 * ONE), "tau_m": np.full(n, 20 * ONE), "i_offset": np.zeros(n, np.int64),
           "v_reset": np.zeros(n, np.int64), "tau_refrac": np.full(n, tau_refrac),
           "v_thresh": np.full(n, v_thresh), "tau_syn_E": np.full(n, 5 * ONE),
           "tau_syn_I": np.full(n, 5 * ONE), "isyn_exc": np.zeros(n, np.int64),
           "isyn_inh": np.zeros(n, np.int64)}
    pop = Population(name="p", model=model, kind="x", size=n, latency=1, raw=raw,
                     refract_timer=np.zeros(n, np.int64), scale=np.ones(n), offset=np.zeros(n),
                     cur_scale=np.ones(n))
    words = np.atleast_1d(word)
    proj = Projection(name="w", pre="in", post="p", receptor=receptor, delay=1,
                      pre_idx=np.zeros(len(words), np.int64), post_idx=np.zeros(len(words), np.int64),
                      weight=words * 2.0 ** (shift - 15), w_int=words.astype(np.int64))
    shifts = [shift, 0] if receptor == "excitatory" else [0, shift]
    prog = Program(timestep_ms=1.0, time_scale_factor=1, graph_dt=1e-3, populations=[pop],
                   sources=[Source(name="in", kind="input", size=1)], projections=[proj],
                   shifts={"p": shifts}, outputs={}, input_name="in")
    x = np.zeros((ticks, 1, 1))
    x[list(spike_ticks), 0, 0] = 1
    return run_program(prog, x, ticks, record_v=True, record_i=True)


def test_if_curr_exp_trace_by_hand():
    run = _one_neuron("IF_curr_exp", 1000)
    v = run.v["p"][:, 0, 0].tolist()
    i = run.i_exc["p"][:, 0, 0].tolist()
    # tick 0: nothing in the ring buffer; V stays 0. The source's spike lands in slot 0 + 1.
    # tick 1: word 1000 << 2 = 4000; I_syn += floor(4000 * 3892384920 / 2**32) = 3625 (3625.07)
    #         alpha = I*R + V_rest = 3625; V = 3625 - floor(31170 * 3625 / 2**15) = 3625 - 3448 = 177
    #         then I_syn decays: floor(3625 * 3516490311 / 2**32) = 2967 (2967.96)
    # tick 2: alpha = 2967; V = 2967 - floor(31170 * (2967 - 177) / 2**15) = 2967 - 2653 = 314
    #         I_syn -> floor(2967 * 0.81873) = 2429
    assert i[:3] == [0, 3625, 2967]
    assert v[:3] == [0, 177, 314]
    assert run.i_exc["p"][3, 0, 0] == 2429


def test_inhibitory_input_rounds_the_other_way():
    run = _one_neuron("IF_curr_exp", 1000, receptor="inhibitory")
    # tick 1: I = 0 - 3625; V = -3625 - floor(31170 * -3625 / 2**15) = -3625 + 3449 = -176
    # (floor(-3448.22) = -3449) and I_syn_inh = 3625 decays to 2967 (positive state, subtracted)
    assert run.v["p"][1, 0, 0] == -176
    assert run.i_inh["p"][1:3, 0, 0].tolist() == [3625, 2967]


def test_if_curr_delta_holds_the_input_for_one_tick():
    run = _one_neuron("IF_curr_delta", 1000)
    # tick 1: I = 4000 * (1/ts = 1.0) = 4000; V = 4000 - floor(31170 * 4000 / 2**15) = 4000 - 3804 = 196
    # tick 2: I = 0 (cleared); V = 0 - floor(31170 * (0 - 196) / 2**15) = 0 - (-187) = 187
    assert run.v["p"][:3, 0, 0].tolist() == [0, 196, 187]
    assert run.i_exc["p"][:3, 0, 0].tolist() == [0, 4000, 0]


def test_threshold_is_inclusive_and_refractory_holds_the_membrane():
    # v_thresh = 177 exactly: tick 1 reaches V = 177 >= 177 -> spike, V = V_reset = 0;
    # T_refract = 2: ticks 2 and 3 skip the update (timer 2 -> 1 -> 0), tick 4 integrates again:
    # I_syn keeps decaying meanwhile: 2967 (tick 2), 2429 (tick 3), floor(2429 d) = 1988 (tick 4)
    # and V = 1988 - floor(31170 * 1988 / 2**15) = 1988 - 1891 = 97
    run = _one_neuron("IF_curr_exp", 1000, v_thresh=177, tau_refrac=2 * ONE, ticks=6)
    spikes = run.spikes["p"][:, 0, 0]
    assert spikes.tolist() == [False, True, False, False, False, False]
    assert run.v["p"][1:4, 0, 0].tolist() == [0, 0, 0]
    i4 = int(run.i_exc["p"][4, 0, 0])
    assert i4 == ((2967 * 3516490311) >> 32) * 3516490311 >> 32 == 1988
    assert run.v["p"][4, 0, 0] == 1988 - ((31170 * 1988) >> 15) == 97
    run = _one_neuron("IF_curr_exp", 1000, v_thresh=178)   # 177 < 178: not yet; 314 at tick 2
    assert run.spikes["p"][:, 0, 0].tolist() == [False, False, True, False]


def test_ring_buffer_saturates_at_0xffff():
    # two words of 40000 due in the same slot: 80000 -> 0xFFFF; 65535 << 0 = 65535 into delta input
    run = _one_neuron("IF_curr_delta", [40000, 40000], shift=0)
    assert run.i_exc["p"][1, 0, 0] == 0xFFFF
    assert run.saturations["p"] == 1


def test_spynnaker_shift_and_weight_rules():
    # get_ring_buffer_shifts: ceil(log2 w), +1 when 2**p <= w; 0 for w < 1
    assert [shift_for(w) for w in (0.0, 0.3, 1.0, 1.5, 2.0, 1000.0)] == [0, 0, 1, 1, 2, 10]
    # weights: rint(|w| * 2**(15 - shift)) & 0xFFFF, rint rounds half to even
    assert weight_words(np.array([0.5 / 2**14, 1.5 / 2**14, -1.0]), 1).tolist() == [0, 2, 16384]


def test_if_integrator_window():
    # the IF mapping: tau_m = 32768 ms (2**30 raw) gives exp_TC = expk(-1) = 32766 = 1 - 2**-14,
    # cm = 2 nF gives R = kdivk(2**30, 65536) = 2**29 (16384.0), so R*I = I << 14 exactly and
    # V' = alpha - floor(32766 (alpha - V) / 2**15) = V + I - floor((V - V_rest) / 2**14)
    from neurocompile.targets.spinnaker.lowering import IF_TAU_RAW, _if_constants

    delta, cm_raw = _if_constants()
    assert (delta, cm_raw) == (2, 65536)
    lif = F.lif_init(IF_TAU_RAW, cm_raw, 0, ONE)
    R, e = lif["R"], lif["exp_tc"]

    def step(v, i, v_rest=0):
        alpha = F.mul_k(i, R) + v_rest
        return int(alpha - F.mul_k(e, alpha - v))

    assert step(100, 37) == 137              # inside [V_rest, V_rest + 2**14): exact integration
    assert step(16383, -5) == 16378
    assert step(-10, 7) == -2                # below the window: +1 LSB per step (-10 + 7 + 1)
    assert step(16384, 0) == 16383           # above it: -1 LSB per step
