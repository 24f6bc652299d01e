"""Conformance of the numpy Loihi emulator with Lava's fixed_pt models.

* Hand-derived single-neuron tests of the emulator (no Lava needed).
* validate() rejects values outside their bit ranges with a ValueError.
* Random and extreme multi-layer programs run in Lava (one subprocess for
  all of them) must give identical spikes, u and v at every step.

Lava is located through $NEUROCOMPILE_LAVA_PYTHON, else find_lava_python();
if none is found the Lava tests are skipped, unless
$NEUROCOMPILE_REQUIRE_LAVA is set (CI), in which case they fail.
"""

import json
import os

import numpy as np
import pytest

from neurocompile.targets.loihi2 import emulator as loihi
from neurocompile.targets.loihi2.program import LoihiDense, LoihiLIF, LoihiProgram


# --------------------------------------------------------------- helpers
def one_neuron(weights=((0,),), du=0, dv=0, vth=1000, bias_mant=0,
               bias_exp=0, weight_exp=0, num_weight_bits=8):
    """Program: len(weights[0]) inputs -> Dense -> one LIF neuron 'n'."""
    w = np.array(weights, dtype=np.int64)
    return LoihiProgram(
        n_inputs=w.shape[1],
        neurons=[LoihiLIF("n", 1, du=du, dv=dv, vth=vth,
                          bias_mant=np.array([bias_mant]),
                          bias_exp=bias_exp)],
        synapses=[LoihiDense("d", "input", "n", w, weight_exp=weight_exp,
                             num_weight_bits=num_weight_bits)])


def trace(program, spikes_in):
    """(u, v, spikes) of neuron 'n' as python lists over time."""
    r = loihi.run(program, np.asarray(spikes_in))["n"]
    return (r["u"][:, 0, 0].tolist(), r["v"][:, 0, 0].tolist(),
            r["spikes"][:, 0, 0].tolist())


# ------------------------------------------- hand-derived emulator tests
def test_decay_rounds_toward_zero_and_dense_delay():
    # Mixed weights [3, -3] lose their lowest bit: (3>>1)<<1 = 2,
    # (-3>>1)<<1 = -4.  du=1000 -> u keeps 4096-1001 = 3095/4096 per step;
    # dv=0 -> v keeps 4096/4096 (no leak); vth=10 -> threshold 640.
    p = one_neuron(weights=[[3, -3]], du=1000, dv=0, vth=10)
    x = np.zeros((5, 2), int)
    x[0, 1] = 1  # spike on the -4 input at t=0 ...
    u, v, s = trace(p, x)
    # t=0: nothing has arrived yet (one-step Dense delay): u = v = 0
    # t=1: a = -4, act = -4 << 6 = -256: u = -256, v = 0 + u = -256
    # t=2: u = trunc(-256*3095/4096) = trunc(-193.44) = -193 (floor: -194)
    #      v = -256 + -193 = -449
    # t=3: u = trunc(-193*3095/4096) = trunc(-145.83) = -145; v = -594
    # t=4: u = trunc(-145*3095/4096) = trunc(-109.56) = -109; v = -703
    assert u == [0, -256, -193, -145, -109]
    assert v == [0, -256, -449, -594, -703]
    assert s == [0, 0, 0, 0, 0]


def test_positive_decay_and_voltage_leak():
    # weight 10 (excitatory, kept), du=2047 -> keep 2048/4096 (halves u),
    # dv=2048 -> keep 2048/4096 (halves v).
    p = one_neuron(weights=[[10]], du=2047, dv=2048, vth=1000)
    x = np.zeros((5, 1), int)
    x[0, 0] = 1
    u, v, _ = trace(p, x)
    # t=1: u = 10<<6 = 640, v = 0 + 640 = 640
    # t=2: u = 320, v = 640/2 + 320 = 640
    # t=3: u = 160, v = 320 + 160 = 480
    # t=4: u = 80,  v = 240 + 80 = 320
    assert u == [0, 640, 320, 160, 80]
    assert v == [0, 640, 640, 480, 320]


def test_threshold_is_strict_and_reset_keeps_u():
    # bias = 8 << 3 = 64 per step, threshold = 1 << 6 = 64, no leak.
    p = one_neuron(vth=1, bias_mant=8, bias_exp=3)
    u, v, s = trace(p, np.zeros((4, 1), int))
    # t=0: v = 64, not > 64; t=1: v = 128 > 64 -> spike, v reset to 0 (the
    # value probes read); t=2: 64; t=3: 128 -> spike -> 0.
    assert v == [64, 0, 64, 0]
    assert s == [0, 1, 0, 1]
    assert u == [0, 0, 0, 0]
    # a current-driven neuron keeps u through its spike
    p = one_neuron(weights=[[2]], du=4095, dv=4095, vth=1)
    u, v, s = trace(p, np.ones((3, 1), int))
    # du=4095 -> u = act = 2<<6 = 128 each step from t=1; dv=4095 ->
    # trunc(v/4096) = 0, so v = u = 128 > 64 -> spike, v -> 0, u stays 128
    assert (u, v, s) == ([0, 128, 128], [0, 0, 0], [0, 1, 1])


def test_negative_bias_exp_is_floor_shift():
    # bias = -5 >> 1 = -3 (floor), not -2; dv=0: v accumulates.
    p = one_neuron(bias_mant=-5, bias_exp=-1)
    _, v, _ = trace(p, np.zeros((3, 1), int))
    assert v == [-3, -6, -9]


def test_u_wraps_once_at_24_bits_with_odd_boundary():
    # du=4095: u = act each step.  Weight 128 with weight_exp 7 gives
    # 128*128 = 16384 per input spike.
    w = [[128] * 16]
    p = one_neuron(weights=w, du=4095, dv=4095, vth=131071, weight_exp=7)
    x = np.zeros((3, 16), int)
    x[0, :8] = 1   # a = 8*16384 = 2**17 -> act = 2**23 = 8388608
    x[1, :] = 1    # a = 2**18 -> act = 2**24 = 16777216
    u, v, _ = trace(p, x)
    # t=1: act = 8388608 is NOT > 2**23 -> u stays 8388608 (one above the
    #      24-bit two's complement max); v = u clipped to 2**23-1 = 8388607
    #      > 131071<<6 = 8388544 -> spike, v reset to 0).
    # t=2: act = 16777216 > 2**23 -> u = 16777216 - 2**24 = 0; v = 0
    assert u == [0, 8388608, 0]
    assert v == [0, 0, 0]
    p = one_neuron(weights=[[255] * 5], du=4095, dv=4095, vth=131071,
                   weight_exp=7)
    x = np.zeros((2, 5), int)
    x[0] = 1
    u, v, s = trace(p, x)
    # a = 5*255*128 = 163200, act = 10444800 > 2**23
    # -> u = 10444800 - 16777216 = -6332416; v = u; no spike.
    assert (u, v, s) == ([0, -6332416], [0, -6332416], [0, 0])


def test_v_clips_at_plus_minus_2_23_minus_1():
    # bias = -4096 << 7 = -524288 per step, dv=0: after 16 steps the sum is
    # -2**23, clipped to -(2**23 - 1), and stays there.
    p = one_neuron(bias_mant=-4096, bias_exp=7)
    _, v, _ = trace(p, np.zeros((18, 1), int))
    assert v[14] == -524288 * 15
    assert v[15:] == [-(2**23 - 1)] * 3
    # positive side: v saturates at 2**23-1 = 8388607 > 131071<<6 = 8388544,
    # so even the largest threshold fires once v saturates.
    p = one_neuron(bias_mant=4095, bias_exp=7, vth=131071)
    _, v, s = trace(p, np.zeros((17, 1), int))
    # 4095<<7 = 524160; after 16 steps 8386560 < 8388544; step 17 clips.
    assert v[15] == 524160 * 16 and s[15] == 0
    assert s[16] == 1 and v[16] == 0


def test_weight_exp_shifts_the_sum_with_floor():
    # mixed [-3, 1] -> effective [-4, 0]; both inputs spike: sum = -4,
    # weight_exp -3: -4 >> 3 = -1 (floor; toward zero would give 0).
    p = one_neuron(weights=[[-3, 1]], du=4095, dv=4095, weight_exp=-3)
    u, _, _ = trace(p, np.ones((2, 2), int))
    assert u == [0, -64]
    # excitatory [3] with weight_exp -1: 3 >> 1 = 1 -> act 64
    p = one_neuron(weights=[[3]], du=4095, dv=4095, weight_exp=-1)
    u, _, _ = trace(p, np.ones((2, 1), int))
    assert u == [0, 64]


def test_effective_weights_truncation():
    d = LoihiDense("d", "input", "n", np.array([[3, -3, 255, -256, 1]]))
    assert d.sign_mode() == "mixed"
    assert d.effective_weights().tolist() == [[2, -4, 254, -256, 0]]
    d = LoihiDense("d", "input", "n", np.array([[3, 7, 255]]),
                   num_weight_bits=6)  # drop 2 bits
    assert d.effective_weights().tolist() == [[0, 4, 252]]
    d = LoihiDense("d", "input", "n", np.array([[-3, -7, -255]]),
                   num_weight_bits=6)  # magnitudes truncated toward zero
    assert d.effective_weights().tolist() == [[0, -4, -252]]
    d = LoihiDense("d", "input", "n", np.array([[5, -7]]), num_weight_bits=3)
    # mixed, 3 bits -> drop 8-3+1 = 6 bits: 5 -> 0, -7 -> -64
    assert d.effective_weights().tolist() == [[0, -64]]


def test_lif_to_lif_hop_costs_one_step():
    # input -> A (spikes every step from t=1) -> B: B sees A's spike of t at
    # t+1, so B's u becomes nonzero first at t=2.
    prog = LoihiProgram(1, [
        LoihiLIF("A", 1, du=4095, dv=4095, vth=0, bias_mant=np.array([0])),
        LoihiLIF("B", 1, du=4095, dv=4095, vth=1000,
                 bias_mant=np.array([0]))],
        [LoihiDense("d0", "input", "A", np.array([[1]])),
         LoihiDense("d1", "A", "B", np.array([[7]]))])
    r = loihi.run(prog, np.ones((4, 1), int))
    assert r["A"]["spikes"][:, 0, 0].tolist() == [0, 1, 1, 1]
    assert r["B"]["u"][:, 0, 0].tolist() == [0, 0, 7 * 64, 7 * 64]


def test_batch_elements_are_independent():
    prog, x = random_program(3)
    xb = np.stack([x, np.roll(x, 1, axis=0)], axis=1)
    rb = loihi.run(prog, xb)
    r1 = loihi.run(prog, xb[:, 1])
    for n in prog.neurons:
        for key in ("spikes", "u", "v"):
            assert np.array_equal(rb[n.name][key][:, 1], r1[n.name][key][:, 0])


def test_save_load_roundtrip(tmp_path):
    prog, x = random_program(5)
    prog.save(str(tmp_path / "p"))
    doc = json.loads((tmp_path / "p" / "program.json").read_text())
    assert doc["format"] == "neurocompile.loihi_program"
    assert doc["version"] == 1
    back = LoihiProgram.load(str(tmp_path / "p"))
    a, b = loihi.run(prog, x), loihi.run(back, x)
    for n in prog.neurons:
        assert np.array_equal(a[n.name]["v"], b[n.name]["v"])
    assert [f for f in os.listdir(tmp_path / "p")] and not any(
        f.startswith(".tmp-") for f in os.listdir(tmp_path / "p"))


# ------------------------------------------------------ validate() errors
@pytest.mark.parametrize("field,kwargs", [
    ("du", dict(du=4096)), ("dv", dict(dv=-1)), ("vth", dict(vth=1 << 17)),
    ("bias_mant", dict(bias_mant=4096)), ("bias_mant", dict(bias_mant=-4097)),
    ("bias_exp", dict(bias_exp=8)),
    ("weights", dict(weights=[[256]])), ("weights", dict(weights=[[-257, 1]])),
    ("weights", dict(weights=[[-256, 0]])),  # inhibitory: at most -255
    ("num_weight_bits", dict(num_weight_bits=0)),
    ("num_weight_bits", dict(num_weight_bits=9)),
    ("weight_exp", dict(weight_exp=8)), ("weight_exp", dict(weight_exp=-9)),
])
def test_validate_rejects_out_of_range(field, kwargs):
    with pytest.raises(ValueError, match=field):
        one_neuron(**kwargs).validate()


def test_validate_rejects_bad_structure():
    p = one_neuron()
    p.synapses[0].src = "nope"
    with pytest.raises(ValueError, match="src"):
        p.validate()
    p = one_neuron(weights=[[1, 2]])
    p.n_inputs = 3
    with pytest.raises(ValueError, match="shape"):
        p.validate()
    p = one_neuron()
    p.neurons.append(p.neurons[0])
    with pytest.raises(ValueError, match="duplicate"):
        p.validate()
    p = one_neuron()
    p.neurons[0].bias_mant = np.array([0.5])
    with pytest.raises(ValueError, match="bias_mant"):
        p.validate()


# ----------------------------------------------------- program generators
from program_gen import weights as _weights  # noqa: E402


def random_program(seed):
    """3-4 LIF layers, a recurrent Dense on L1 and a skip Dense L0 -> L2.

    Sign modes rotate over the layers, weight_exp in [-4, 4],
    num_weight_bits in {8, 7, 5, 3}, random du/dv (incl. 0, 1, 4095),
    biases with bias_exp in [-3, 4]; 120-160 steps of 20 % input spikes.
    """
    rng = np.random.default_rng(seed)
    n_in = int(rng.integers(16, 33))
    sizes = [int(s) for s in rng.integers(6, 21, int(rng.integers(3, 5)))]
    modes = ["mixed", "excitatory", "inhibitory"]
    in_mode = ["mixed"] + [modes[(seed + i) % 3] for i in range(1, len(sizes))]
    neurons = []
    for i, size in enumerate(sizes):
        # layers fed by inhibitory weights get a positive bias to fire at all
        lo, hi = (0, 2000) if in_mode[i] == "inhibitory" else (-300, 300)
        neurons.append(LoihiLIF(
            name=f"L{i}", size=size,
            du=int(rng.choice([0, 1, 4095, int(rng.integers(0, 4096))])),
            dv=int(rng.choice([0, 4095, int(rng.integers(0, 4096))])),
            vth=int(rng.integers(0, 2000)),
            bias_mant=rng.integers(lo, hi, size),
            bias_exp=int(rng.integers(-3, 5))))
    synapses = []
    src, src_size = "input", n_in
    for i, size in enumerate(sizes):
        synapses.append(LoihiDense(
            name=f"D{i}", src=src, dst=f"L{i}",
            weights=_weights(rng, (size, src_size), in_mode[i]),
            weight_exp=int(rng.integers(-4, 5)),
            num_weight_bits=int(rng.choice([8, 8, 7, 5, 3]))))
        src, src_size = f"L{i}", size
    synapses.append(LoihiDense(
        name="R1", src="L1", dst="L1",
        weights=_weights(rng, (sizes[1], sizes[1]), modes[seed % 3]),
        weight_exp=int(rng.integers(-2, 3)),
        num_weight_bits=int(rng.choice([8, 6]))))
    synapses.append(LoihiDense(
        name="S02", src="L0", dst="L2",
        weights=_weights(rng, (sizes[2], sizes[0]), "mixed"),
        weight_exp=int(rng.integers(-3, 3))))
    prog = LoihiProgram(n_inputs=n_in, neurons=neurons, synapses=synapses)
    spikes = rng.random((int(rng.integers(120, 161)), n_in)) < 0.2
    return prog, spikes


def extreme_program():
    """Drives every overflow path: int32 wrap of the summed input and of
    a << 6, the one-shot 24-bit u wrap, both v clips, a threshold below the
    v clip, two Dense into one LIF and a disconnected bias-only group."""
    rng = np.random.default_rng(1234)
    n_in = 1200
    full = np.full((4, n_in), 255)
    neurons = [
        LoihiLIF("over", 4, du=0, dv=0, vth=131071,
                 bias_mant=np.zeros(4, int)),
        LoihiLIF("wrap", 6, du=0, dv=100, vth=131071,
                 bias_mant=rng.integers(-4096, 4096, 6), bias_exp=7),
        LoihiLIF("neg", 5, du=10, dv=0, vth=0,
                 bias_mant=rng.integers(0, 50, 5), bias_exp=2),
        LoihiLIF("post", 7, du=300, dv=200, vth=3000,
                 bias_mant=rng.integers(-100, 100, 7), bias_exp=0),
        LoihiLIF("iso", 3, du=5, dv=3, vth=50,
                 bias_mant=np.array([100, -7, 4095]), bias_exp=1),
    ]
    synapses = [
        LoihiDense("a", "input", "over", full, weight_exp=7),
        LoihiDense("b", "input", "over", full, weight_exp=6),
        LoihiDense("c", "input", "wrap", rng.integers(0, 4, (6, n_in))),
        LoihiDense("d", "input", "neg", np.full((5, n_in), -255),
                   weight_exp=3),
        LoihiDense("e", "over", "post", _weights(rng, (7, 4), "mixed"),
                   weight_exp=4),
        LoihiDense("f", "wrap", "post", _weights(rng, (7, 6), "mixed"),
                   weight_exp=4, num_weight_bits=4),
        LoihiDense("g", "post", "post", _weights(rng, (7, 7), "inhibitory"),
                   weight_exp=2),
    ]
    prog = LoihiProgram(n_inputs=n_in, neurons=neurons, synapses=synapses)
    spikes = rng.random((130, n_in)) < rng.uniform(0.8, 1.0, (130, 1))
    return prog, spikes


def int32_wrap_program():
    """70000 inputs into one LIF through two Dense of weight 255 << 7: each
    Dense output exceeds 2**31 and wraps when sent as int32, and so does
    their int32 sum (also exercises the float64 matmul path)."""
    rng = np.random.default_rng(99)
    n_in = 70000
    neurons = [LoihiLIF("x", 2, du=4095, dv=4095, vth=1000,
                        bias_mant=np.array([0, 3]), bias_exp=0)]
    synapses = [LoihiDense("a", "input", "x", np.full((2, n_in), 255),
                           weight_exp=7),
                LoihiDense("b", "input", "x", np.full((2, n_in), 255),
                           weight_exp=6)]
    spikes = rng.random((12, n_in)) < rng.uniform(0.5, 1.0, (12, 1))
    return LoihiProgram(n_inputs=n_in, neurons=neurons,
                        synapses=synapses), spikes


def test_int32_wrap_program_overflows():
    prog, x = int32_wrap_program()
    acc = (x.sum(axis=1).astype(np.int64) * 255) << 7
    assert acc.max() > 2**31  # one Dense alone overflows int32
    r = loihi.run(prog, x)
    assert (r["x"]["u"] != 0).any()


def test_extreme_program_reaches_the_edges():
    prog, x = extreme_program()
    r = loihi.run(prog, x)
    lim = 2**23 - 1
    assert r["over"]["u"].min() < -2**23 or r["over"]["u"].max() > 2**23
    assert (r["wrap"]["u"] < 0).any() and (r["wrap"]["u"] > 2**22).any()
    assert r["neg"]["v"].min() == -lim
    assert r["over"]["spikes"].any() and r["post"]["spikes"].any()
    assert r["iso"]["spikes"].any()


# ------------------------------------------------------ Lava conformance
def _lava_python():
    """$NEUROCOMPILE_LAVA_PYTHON, else find_lava_python() (may be None)."""
    from neurocompile.targets.loihi2.lava.host import find_lava_python
    return os.environ.get("NEUROCOMPILE_LAVA_PYTHON") or find_lava_python()


LAVA_SEEDS = list(range(6))


@pytest.fixture(scope="module")
def lava_results():
    """All conformance jobs in one Lava subprocess (start-up costs ~1 s)."""
    py = _lava_python()
    if not py or not os.path.exists(py):
        if os.environ.get("NEUROCOMPILE_REQUIRE_LAVA"):
            pytest.fail("NEUROCOMPILE_REQUIRE_LAVA is set but no Lava "
                        "interpreter was found (set NEUROCOMPILE_LAVA_PYTHON)")
        pytest.skip("no Lava interpreter (set NEUROCOMPILE_LAVA_PYTHON)")
    from neurocompile.targets.loihi2.lava.host import run_many_in_lava
    jobs = {f"seed{s}": random_program(s) for s in LAVA_SEEDS}
    jobs["extreme"] = extreme_program()
    jobs["int32_wrap"] = int32_wrap_program()
    prog, x = random_program(100)
    jobs["batch2"] = (prog, np.stack([x, x[::-1]], axis=1))
    names = list(jobs)
    outs = run_many_in_lava([jobs[k] for k in names], python=py, timeout=600)
    return {k: (jobs[k], out) for k, out in zip(names, outs)}


@pytest.mark.parametrize("job", [f"seed{s}" for s in LAVA_SEEDS]
                         + ["extreme", "int32_wrap", "batch2"])
def test_emulator_matches_lava(lava_results, job):
    (prog, x), lava = lava_results[job]
    emu = loihi.run(prog, x)
    assert lava["n_steps"] == emu["n_steps"] == len(x)
    total = 0
    for n in prog.neurons:
        for key in ("spikes", "u", "v"):
            got, want = lava[n.name][key], emu[n.name][key]
            assert got.shape == want.shape, (n.name, key)
            bad = np.argwhere(got != want)
            assert bad.size == 0, (
                f"{job}: {n.name}.{key} differs first at (t, b, i)="
                f"{tuple(bad[0])}: lava={got[tuple(bad[0])]} "
                f"emulator={want[tuple(bad[0])]}")
        total += int(emu[n.name]["spikes"].sum())
    assert total > 0  # the comparison is not vacuous
