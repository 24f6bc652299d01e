"""The fast numba Loihi kernel must equal the numpy reference bit for bit.

``neurocompile.targets.loihi2.emulator_fast.run`` is compared with
``neurocompile.targets.loihi2.emulator.run`` (itself proven bit-exact against Lava by
test_loihi_emulator_vs_lava.py) on random and extreme programs: spikes, u
and v at every step, for batch 1 and batch > 1.

numba is optional: without it these tests are skipped, unless
$NEUROCOMPILE_REQUIRE_NUMBA is set (CI), in which case they fail.  The
dispatcher fallback (run_best without numba) is tested either way.
"""

import os

import numpy as np
import pytest

from neurocompile.targets.loihi2 import emulator as loihi
from neurocompile.targets.loihi2 import emulator_fast as loihi_fast
from neurocompile.targets.loihi2.program import LoihiDense, LoihiLIF, LoihiProgram


@pytest.fixture(scope="module")
def fast():
    """The loihi_fast module, after making sure its kernel is compiled."""
    if not loihi_fast.available():
        if os.environ.get("NEUROCOMPILE_REQUIRE_NUMBA"):
            pytest.fail("NEUROCOMPILE_REQUIRE_NUMBA is set but numba is not "
                        "importable")
        pytest.skip("numba is not installed (pip install numba)")
    loihi_fast.warmup()
    return loihi_fast


def assert_same(prog, x, got, probes=True):
    """``got`` (fast result) equals loihi.run(prog, x) exactly."""
    want = loihi.run(prog, x, probes=probes)
    assert got["n_steps"] == want["n_steps"]
    assert set(got) == set(want)
    for n in prog.neurons:
        assert set(got[n.name]) == set(want[n.name]), n.name
        for key, w in want[n.name].items():
            g = got[n.name][key]
            assert g.dtype == w.dtype and g.shape == w.shape, (n.name, key)
            bad = np.argwhere(g != w)
            assert bad.size == 0, (
                f"{n.name}.{key} differs first at (t, b, i)={tuple(bad[0])}:"
                f" fast={g[tuple(bad[0])]} reference={w[tuple(bad[0])]}")
    return want


# ----------------------------------------------------- program generators
from program_gen import weights as _weights  # noqa: E402


def random_program(seed, n_steps=None):
    """3-5 LIF layers with random sign modes, recurrence and skip links.

    weight_exp in [-4, 4] (sometimes the extremes -8 / 7), num_weight_bits
    3..8, du/dv including 0, 1 and 4095, biases with bias_exp in [-7, 7],
    a recurrent Dense, a skip Dense and a second input Dense into the last
    layer (several Dense into one LIF), random probe flags.
    """
    rng = np.random.default_rng(seed)
    n_in = int(rng.integers(8, 60))
    sizes = [int(s) for s in rng.integers(1, 40, int(rng.integers(3, 6)))]
    modes = ["mixed", "excitatory", "inhibitory"]

    def dense(name, src, dst, shape, mode, exp_range=(-4, 5)):
        exp = int(rng.integers(*exp_range))
        if rng.random() < 0.1:
            exp = int(rng.choice([-8, 7]))
        return LoihiDense(name, src, dst, _weights(rng, shape, mode),
                          weight_exp=exp,
                          num_weight_bits=int(rng.integers(3, 9)))

    neurons, synapses = [], []
    src, src_size = "input", n_in
    for i, size in enumerate(sizes):
        mode = "mixed" if i == 0 else modes[int(rng.integers(0, 3))]
        lo, hi = (0, 3000) if mode == "inhibitory" else (-400, 400)
        neurons.append(LoihiLIF(
            name=f"L{i}", size=size,
            du=int(rng.choice([0, 1, 4095, int(rng.integers(0, 4096))])),
            dv=int(rng.choice([0, 1, 4095, int(rng.integers(0, 4096))])),
            vth=int(rng.choice([0, int(rng.integers(0, 3000)),
                                int(rng.integers(0, 131072))])),
            bias_mant=rng.integers(lo, hi, size),
            bias_exp=int(rng.integers(-7, 8)) if rng.random() < 0.3
            else int(rng.integers(-2, 4)),
            probe=bool(rng.random() < 0.85)))
        synapses.append(dense(f"D{i}", src, f"L{i}", (size, src_size), mode))
        src, src_size = f"L{i}", size
    synapses.append(dense("R1", "L1", "L1", (sizes[1], sizes[1]),
                          modes[seed % 3], (-2, 3)))
    synapses.append(dense("S02", "L0", "L2", (sizes[2], sizes[0]), "mixed",
                          (-3, 3)))
    synapses.append(dense("I_last", "input", f"L{len(sizes) - 1}",
                          (sizes[-1], n_in), modes[(seed + 1) % 3]))
    prog = LoihiProgram(n_inputs=n_in, neurons=neurons, synapses=synapses)
    t = int(rng.integers(40, 90)) if n_steps is None else n_steps
    rate = rng.uniform(0.05, 0.5)
    return prog, rng, t, rate


def extreme_program():
    """Every overflow path of both Dense code paths (see asserts below).

    * "over": 1200 inputs of 255 through weight_exp 7 and 6 (pre-shifted,
      wrapping int32 adds): a << 6 wraps int32, then
      u wraps at 24 bits.  (Dense outputs wrapping: the next test.)
    * "floor": the same fan-in through weight_exp -1 and -3 (exact
      accumulator, floor shift of a large negative and positive sum).
    * "neg": v clips at -(2**23 - 1); "sat": v saturates at +(2**23 - 1)
      above the largest threshold; "iso": bias-only group.
    """
    rng = np.random.default_rng(1234)
    n_in = 1200
    full = np.full((4, n_in), 255)
    neurons = [
        LoihiLIF("over", 4, du=0, dv=0, vth=131071,
                 bias_mant=np.zeros(4, int)),
        LoihiLIF("floor", 4, du=7, dv=1, vth=131071,
                 bias_mant=np.array([0, 1, -1, 4095]), bias_exp=-7),
        LoihiLIF("neg", 5, du=10, dv=0, vth=0,
                 bias_mant=rng.integers(0, 50, 5), bias_exp=2),
        LoihiLIF("sat", 3, du=4095, dv=0, vth=131071,
                 bias_mant=np.array([4095, 4095, 4000]), bias_exp=7),
        LoihiLIF("post", 7, du=300, dv=200, vth=3000,
                 bias_mant=rng.integers(-100, 100, 7), bias_exp=0),
        LoihiLIF("iso", 3, du=5, dv=3, vth=50,
                 bias_mant=np.array([100, -7, 4095]), bias_exp=1),
    ]
    mixed = rng.integers(-256, 256, (4, n_in))
    synapses = [
        LoihiDense("a", "input", "over", full, weight_exp=7),
        LoihiDense("b", "input", "over", full, weight_exp=6),
        LoihiDense("c", "input", "floor", mixed, weight_exp=-1),
        LoihiDense("c2", "input", "floor", -full, weight_exp=-3,
                   num_weight_bits=5),
        LoihiDense("d", "input", "neg", np.full((5, n_in), -255),
                   weight_exp=3),
        LoihiDense("e", "over", "post", _weights(rng, (7, 4), "mixed"),
                   weight_exp=4),
        LoihiDense("f", "floor", "post", _weights(rng, (7, 4), "mixed"),
                   weight_exp=-8, num_weight_bits=4),
        LoihiDense("g", "post", "post", _weights(rng, (7, 7), "inhibitory"),
                   weight_exp=2),
        LoihiDense("h", "sat", "post", _weights(rng, (7, 3), "excitatory"),
                   weight_exp=-2, num_weight_bits=1),
    ]
    prog = LoihiProgram(n_inputs=n_in, neurons=neurons, synapses=synapses)
    rates = rng.uniform(0.6, 1.0, (60, 1, 1))
    return prog, rng, rates


# ------------------------------------------------------------------ tests
@pytest.mark.parametrize("seed", range(12))
def test_random_programs_batch1(fast, seed):
    prog, rng, t, rate = random_program(seed)
    x = rng.random((t, prog.n_inputs)) < rate
    assert_same(prog, x, fast.run(prog, x))


@pytest.mark.parametrize("seed", range(100, 106))
def test_random_programs_batched(fast, seed):
    prog, rng, t, rate = random_program(seed)
    batch = int(rng.integers(2, 7))
    # per-element rates, so batch elements really differ
    x = rng.random((t, batch, prog.n_inputs)) < rng.uniform(
        0.02, 0.6, (1, batch, 1))
    want = assert_same(prog, x, fast.run(prog, x))
    # a batched run equals the single runs of its elements
    one = fast.run(prog, x[:, batch - 1])
    for n in prog.neurons:
        assert np.array_equal(one[n.name]["spikes"][:, 0],
                              want[n.name]["spikes"][:, batch - 1])


def test_extreme_program_hits_every_overflow(fast):
    prog, rng, rates = extreme_program()
    x = rng.random((60, 3, prog.n_inputs)) < rates
    got = fast.run(prog, x)
    assert_same(prog, x, got)
    # the comparison really covers the edges
    lim = 2**23 - 1
    acc = x.sum(axis=2).astype(np.int64) * 255
    assert ((acc << 7) + (acc << 6)).max() < 2**31  # a itself fits, but
    assert (((acc << 7) + (acc << 6)) << 6).max() >= 2**31  # a << 6 wraps
    u = got["over"]["u"]
    assert u.min() < -2**22 and u.max() > 2**22  # u wrapped both ways
    assert got["neg"]["v"].min() == -lim
    assert (got["sat"]["spikes"]).any()          # v saturated above vth<<6
    assert got["floor"]["u"].min() < 0 < got["floor"]["u"].max()
    for name in ("over", "post", "iso", "floor"):
        assert got[name]["spikes"].any(), name


def test_int32_sum_of_two_dense_wraps(fast):
    # 70000 inputs of 255 << 7 into one LIF: each Dense output exceeds
    # 2**31 and wraps; so does the int32 sum of the two Dense.
    rng = np.random.default_rng(99)
    n_in = 70000
    prog = LoihiProgram(n_in, [LoihiLIF("x", 2, du=4095, dv=4095, vth=1000,
                                        bias_mant=np.array([0, 3]))],
                        [LoihiDense("a", "input", "x",
                                    np.full((2, n_in), 255), weight_exp=7),
                         LoihiDense("b", "input", "x",
                                    np.full((2, n_in), 255), weight_exp=6),
                         LoihiDense("c", "input", "x",
                                    np.full((2, n_in), -255), weight_exp=-1)])
    x = rng.random((8, 2, n_in)) < rng.uniform(0.5, 1.0, (8, 2, 1))
    assert (x.sum(axis=2).astype(np.int64) * 255 << 7).max() >= 2**31
    got = fast.run(prog, x)
    assert_same(prog, x, got)
    assert (got["x"]["u"] != 0).any()


def test_thread_slicing_is_exact(fast):
    # uneven batch slices over 1, 2 and 3 threads give identical results
    prog, rng, t, rate = random_program(9)
    x = rng.random((t, 7, prog.n_inputs)) < rng.uniform(0.05, 0.5,
                                                          (1, 7, 1))
    plan = fast.prepare(prog)
    want = plan.run(x, threads=1)
    assert_same(prog, x, want)
    for threads in (2, 3, 16):
        got = plan.run(x, threads=threads)
        for n in prog.neurons:
            for key in want[n.name]:
                assert np.array_equal(got[n.name][key], want[n.name][key])


@pytest.mark.parametrize("mode", ["mixed", "excitatory", "inhibitory"])
def test_prepared_weights_equal_effective_weights(fast, mode):
    # the kernel's transposed int16 weights (pre-shifted for weight_exp >= 0)
    # are LoihiDense.effective_weights() exactly, for every bit width
    rng = np.random.default_rng(5)
    for nwb in range(1, 9):
        for exp in (-8, -1, 0, 3, 7):
            w = _weights(rng, (70, 131), mode)   # not multiples of the tile
            d = LoihiDense("d", "input", "n", w, weight_exp=exp,
                           num_weight_bits=nwb)
            prog = LoihiProgram(131, [LoihiLIF("n", 70, 0, 0, 0,
                                               np.zeros(70, int))], [d])
            plan = fast.prepare(prog)
            want = d.effective_weights() << max(exp, 0)
            got = plan.w_all.reshape(131, 70).T
            assert plan.w_all.dtype == np.int16
            assert np.array_equal(got, want), (nwb, exp)


def test_wide_accumulator_path(fast):
    # fan-ins >= 2**23 need the int64 accumulator; force it on a small
    # program (the int32 and int64 specialisations must agree).
    prog, rng, t, rate = random_program(7)
    x = rng.random((t, 2, prog.n_inputs)) < rate
    plan = fast.prepare(prog)
    plan.acc_proto = np.zeros_like(plan.acc_proto, dtype=np.int64)
    assert_same(prog, x, plan.run(x))


def test_probes_flags_and_no_probes(fast):
    prog, rng, t, rate = random_program(3)
    prog.neurons[0].probe = False
    x = rng.random((t, 2, prog.n_inputs)) < rate
    got = fast.run(prog, x, probes=True)
    assert "u" not in got["L0"] and "u" in got["L1"]
    assert_same(prog, x, got, probes=True)
    got = fast.run(prog, x, probes=False)
    assert all(set(got[n.name]) == {"spikes"} for n in prog.neurons)
    assert_same(prog, x, got, probes=False)


def test_input_dtypes_and_shapes(fast):
    prog, rng, t, rate = random_program(11, n_steps=30)
    x = rng.random((30, prog.n_inputs)) < rate
    want = loihi.run(prog, x)
    as_int = np.where(x, rng.choice([-3, 1, 7], x.shape), 0)
    for xi in (x, x.astype(np.uint8), x.astype(np.int8), as_int,
               as_int.astype(np.int16), np.asfortranarray(x)):
        got = fast.run(prog, xi)
        for n in prog.neurons:
            assert np.array_equal(got[n.name]["spikes"],
                                  want[n.name]["spikes"])
            if "v" in want[n.name]:
                assert np.array_equal(got[n.name]["v"], want[n.name]["v"])
    # non-contiguous batched view
    xb = np.stack([x, x], axis=1)[:, ::-1]
    assert_same(prog, xb, fast.run(prog, xb))
    with pytest.raises(ValueError, match="n_inputs"):
        fast.run(prog, x[:, :-1])
    with pytest.raises(ValueError, match="int or bool"):
        fast.run(prog, x.astype(float))


def test_degenerate_sizes(fast):
    prog, rng, _, rate = random_program(5)
    for shape in ((0, prog.n_inputs), (1, prog.n_inputs),
                  (4, 0, prog.n_inputs)):
        x = rng.random(shape) < 0.5
        assert_same(prog, x, fast.run(prog, x))
    # bias-only network without inputs and without synapses
    iso = LoihiProgram(0, [LoihiLIF("b", 3, du=2, dv=9, vth=5,
                                    bias_mant=np.array([7, -9, 4095]),
                                    bias_exp=3)])
    x = np.zeros((20, 2, 0), bool)
    assert_same(iso, x, fast.run(iso, x))
    empty = LoihiProgram(4)
    assert fast.run(empty, np.ones((3, 4), bool)) == {"n_steps": 3}


def test_plan_is_reusable_and_detached(fast):
    prog, rng, t, rate = random_program(8)
    x = rng.random((t, prog.n_inputs)) < rate
    plan = fast.prepare(prog)
    want = loihi.run(prog, x)
    first = plan.run(x)
    prog.synapses[0].weights = np.zeros_like(prog.synapses[0].weights)
    second = plan.run(x)  # the edit does not reach the plan
    for n in prog.neurons:
        for key, w in want[n.name].items():
            assert np.array_equal(first[n.name][key], w)
            assert np.array_equal(second[n.name][key], w)


def test_invalid_program_raises_like_reference(fast):
    prog, _, _, _ = random_program(2)
    prog.neurons[1].du = 4096
    x = np.zeros((3, prog.n_inputs), bool)
    with pytest.raises(ValueError, match="du"):
        fast.run(prog, x)


def _dense_has(field_name):
    import dataclasses
    return field_name in {f.name for f in dataclasses.fields(LoihiDense)}


@pytest.mark.skipif(not _dense_has("delays"),
                    reason="LoihiDense has no delays in this version")
def test_programs_beyond_lif_dense_fall_back(fast):
    # features the kernel does not implement: refused by run, run_best
    # falls back to the numpy reference (same results by definition)
    prog, rng, t, rate = random_program(6, n_steps=30)
    d = prog.synapses[1]
    d.delays = rng.integers(0, 4, np.shape(d.weights))
    assert "delays" in fast.unsupported_features(prog)
    assert not fast.supports(prog)
    x = rng.random((t, 2, prog.n_inputs)) < rate
    with pytest.raises(NotImplementedError, match="delays"):
        fast.run(prog, x)
    got, want = fast.run_best(prog, x), loihi.run(prog, x)
    for n in prog.neurons:
        for key in want[n.name]:
            assert np.array_equal(got[n.name][key], want[n.name][key])


def test_run_best_uses_fast_path_and_falls_back(monkeypatch):
    prog, rng, t, rate = random_program(4, n_steps=25)
    x = rng.random((t, prog.n_inputs)) < rate
    calls = []
    real = loihi.run
    monkeypatch.setattr(loihi, "run", lambda *a, **k: (calls.append(1),
                                                       real(*a, **k))[1])
    got = loihi_fast.run_best(prog, x)
    assert calls == ([] if loihi_fast.available() else [1])
    monkeypatch.setattr(loihi_fast, "_numba", None)
    assert not loihi_fast.available()
    back = loihi_fast.run_best(prog, x)
    assert calls[-1:] == [1]
    with pytest.raises(RuntimeError, match="numba"):
        loihi_fast.run(prog, x)
    for n in prog.neurons:
        for key in back[n.name]:
            assert np.array_equal(got[n.name][key], back[n.name][key])


# ----------------------------------------------- convolutions and sparse rows
def random_conv_program(seed, wide=False):
    """Input (C, H, W) -> Conv -> L0 -> Conv -> L1 (-> Conv recurrent into L1), plus a sparse
    Dense and a Dense with mostly empty rows (stored as compressed / skipped rows), random
    strides, padding, dilation and groups; ``wide``: one conv whose sums leave 24 bits (Lava's
    int32 cast and wrap)."""
    from neurocompile.targets.loihi2.program import LoihiConv

    rng = np.random.default_rng(seed)

    def geometry(c_in, h, w):
        for _ in range(100):
            g = int(rng.choice([1, 1, 2])) if c_in % 2 == 0 else 1
            co = g * int(rng.integers(1, 4))
            k = (int(rng.integers(1, 5)), int(rng.integers(1, 5)))
            s, p, d = (tuple(int(v) for v in rng.integers(lo, hi, 2)) for lo, hi in ((1, 4), (0, 3), (1, 3)))
            ho = (h + 2 * p[0] - d[0] * (k[0] - 1) - 1) // s[0] + 1
            wo = (w + 2 * p[1] - d[1] * (k[1] - 1) - 1) // s[1] + 1
            if ho >= 1 and wo >= 1:
                return g, co, k, s, p, d, (co, ho, wo)
        raise AssertionError("no geometry")

    def lif(name, size):
        return LoihiLIF(name, size, du=int(rng.integers(0, 4096)), dv=int(rng.integers(0, 4096)),
                        vth=int(rng.integers(0, 400)), bias_mant=rng.integers(-50, 50, size),
                        bias_exp=int(rng.integers(0, 3)), probe=bool(rng.random() < 0.9))

    shape = (int(rng.choice([1, 2, 4])), int(rng.integers(3, 12)), int(rng.integers(3, 12)))
    neurons, synapses, src, src_shape = [], [], "input", shape
    for i in range(2):
        g, co, k, s, p, d, out = geometry(*src_shape)
        big = wide and i == 1
        w = (rng.integers(-32768, 32768, (co, src_shape[0] // g) + k) if big
             else _weights(rng, (co, src_shape[0] // g) + k, "mixed"))
        w[rng.random(w.shape) < 0.2] = 0
        synapses.append(LoihiConv(f"C{i}", src, f"L{i}", w, in_shape=src_shape, stride=s, padding=p,
                                  dilation=d, groups=g))
        neurons.append(lif(f"L{i}", int(np.prod(out))))
        src, src_shape = f"L{i}", out
    n0, n1 = neurons[0].size, neurons[1].size
    if src_shape[1] >= 3 and src_shape[2] >= 3:   # a recurrent conv L1 -> L1 ("same" padding)
        w = _weights(rng, (src_shape[0], src_shape[0], 3, 3), "mixed")
        synapses.append(LoihiConv("Crec", "L1", "L1", w, in_shape=src_shape, padding=1))
    sparse = _weights(rng, (n1, n0), "mixed") * (rng.random((n1, n0)) < 0.05)
    synapses.append(LoihiDense("Dsp", "L0", "L1", sparse, weight_exp=int(rng.integers(-3, 3)), sparse=True))
    rows = np.zeros((n0, 3), np.int64)
    rows[:, 1] = _weights(rng, n0, "excitatory")
    neurons.append(lif("clk", 3))
    synapses.append(LoihiDense("Drows", "clk", "L0", rows, weight_exp=int(rng.integers(-2, 3))))
    synapses.append(LoihiDense("Dclk", "input", "clk", _weights(rng, (3, int(np.prod(shape))), "excitatory")))
    prog = LoihiProgram(n_inputs=int(np.prod(shape)), neurons=neurons, synapses=synapses)
    return prog, rng


@pytest.mark.parametrize("seed", range(16))
def test_conv_and_sparse_programs(fast, seed):
    prog, rng = random_conv_program(seed, wide=seed % 4 == 3)
    assert not fast.unsupported_features(prog)
    for batch in (1, 3):
        x = rng.random((30, batch, prog.n_inputs)) < rng.uniform(0.1, 0.6)
        got = fast.run(prog, x, probes=True, threads=2)
        assert_same(prog, x, got)


def test_wide_conv_sums_go_through_lavas_output_rule(fast):
    # 8 x 6 x 6 taps of +-32767: sums far beyond 24 bits (and int32): cast to -2**31, then wrapped
    from neurocompile.targets.loihi2.program import LoihiConv

    w = np.full((2, 8, 6, 6), 32767)
    w[1] *= -1
    prog = LoihiProgram(n_inputs=8 * 36, neurons=[
        LoihiLIF("a", 2, du=4095, dv=4095, vth=10, bias_mant=np.zeros(2, int))],
        synapses=[LoihiConv("c", "input", "a", w, in_shape=(8, 6, 6))])
    plan = fast.prepare(prog)
    assert plan.v_par[0, 19] == 1          # the wide (exact int64) path
    x = np.ones((4, 1, 8 * 36), bool)
    got = assert_same(prog, x, fast.run(prog, x))
    assert np.any(got["a"]["u"] != 0)


def test_dense_storage_follows_the_nonzeros(fast):
    prog, _ = random_conv_program(0)
    plan = fast.prepare(prog)
    kinds = dict(zip([s.name for s in prog.synapses if isinstance(s, LoihiDense)], plan.d_kind))
    assert kinds["Dsp"] == 1 and kinds["Drows"] == 0          # compressed rows; dense rows, empty skipped
    assert plan.c_idx.size == np.count_nonzero(prog.synapses[[s.name for s in prog.synapses].index("Dsp")]
                                               .effective_weights())
