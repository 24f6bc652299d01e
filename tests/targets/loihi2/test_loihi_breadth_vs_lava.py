"""Breadth features of the Loihi program format, emulator and Lava runner.

Synaptic delays (DelayDense / DelaySparse), sparse connections (Sparse),
convolution (Conv), sigma-delta neurons (SigmaDelta) with graded spikes,
graded Dense and graded external input:

* hand-derived emulator tests (values in the comments), no Lava needed;
* format tests: validate() errors, version 1 vs 2, save/load round trips;
* every hand program plus random and overflow-heavy programs run in Lava
  (all in ONE subprocess) must give identical outputs and states at every
  step.

Lava is located through $NEUROCOMPILE_LAVA_PYTHON (see tests/lava_util.py):
without it the Lava tests are skipped, unless $NEUROCOMPILE_REQUIRE_LAVA is
set.
"""

import json

import numpy as np
import pytest

from neurocompile.targets.loihi2 import emulator as loihi
from neurocompile.targets.loihi2.program import LoihiConv, LoihiDense, LoihiLIF, LoihiProgram, LoihiSigmaDelta


# --------------------------------------------------------------- helpers
def lif(name, size, du=4095, dv=4095, vth=131071, bias=None, probe=True):
    """LIF group; defaults make u = this step's input << 6 and never fire."""
    return LoihiLIF(name, size, du=du, dv=dv, vth=vth,
                    bias_mant=np.zeros(size, int) if bias is None else bias,
                    probe=probe)


def unit_sd(name, size, **kw):
    """Sigma-delta group in 'unit' mode with vth 0: sigma = summed input."""
    return LoihiSigmaDelta(name, size, vth=0, act_mode="unit", **kw)


def col(res, name, key, i=0):
    """Trace of neuron i of group ``name`` (batch element 0) as a list."""
    return res[name][key][:, 0, i].tolist()


# ----------------------------------------------- hand-derived: delays
def delay_program():
    """input (2 lines) -> DelayDense -> LIF 'n' (u = input << 6)."""
    return LoihiProgram(2, [lif("n", 1)], [LoihiDense(
        "d", "input", "n", np.array([[10, 20]]),
        delays=np.array([[0, 3]]))])


def test_delay_d_arrives_at_t_plus_1_plus_d():
    x = np.zeros((6, 2), int)
    x[0] = 1  # both inputs spike at t=0
    u = col(loihi.run(delay_program(), x), "n", "u")
    # delay 0: 10 << 6 = 640 at t=1 (plain Dense timing);
    # delay 3: 20 << 6 = 1280 at t = 0 + 1 + 3 = 4
    assert u == [0, 640, 0, 0, 1280, 0]


def shift_class_program(delays):
    """Two excitatory weights 3 with weight_exp -1 into one LIF."""
    return LoihiProgram(2, [lif("n", 1)], [LoihiDense(
        "d", "input", "n", np.array([[3, 3]]), weight_exp=-1,
        delays=None if delays is None else np.array([delays]))])


def test_delay_classes_are_shifted_separately():
    x = np.zeros((4, 2), int)
    x[0] = 1
    # same class: (3 + 3) >> 1 = 3 -> u = 192 at t=1
    assert col(loihi.run(shift_class_program([0, 0]), x), "n", "u") == \
        [0, 192, 0, 0]
    assert col(loihi.run(shift_class_program(None), x), "n", "u") == \
        [0, 192, 0, 0]
    # delays 0 and 1: each class alone, 3 >> 1 = 1 -> 64 at t=1 and t=2
    assert col(loihi.run(shift_class_program([0, 1]), x), "n", "u") == \
        [0, 64, 64, 0]


def graded_overflow_program():
    """Graded input [-2**22, 2**29] (or [-2**23, 0]) through weights
    [-256, 2] (mixed: kept) with weight_exp -1, into four unit sigma-delta
    groups (sigma = summed input): Dense, Sparse, DelayDense, DelaySparse."""
    w = np.array([[-256, 2]])
    zero = np.zeros((1, 2), int)
    kinds = [("dense", None, False), ("sparse", None, True),
             ("ddense", zero, False), ("dsparse", zero, True)]
    return LoihiProgram(
        2, [unit_sd(k, 1) for k, _, _ in kinds],
        [LoihiDense(f"w_{k}", "input", k, w, weight_exp=-1,
                    num_message_bits=24, delays=d, sparse=sp)
         for k, d, sp in kinds], input_message_bits=32)


def graded_overflow_input():
    return np.array([[-2**22, 2**29], [-2**23, 0], [0, 0]])


def test_graded_overflow_differs_between_dense_and_delay_dense():
    r = loihi.run(graded_overflow_program(), graded_overflow_input())
    # t=0 input: products -256 * -2**22 = 2**30 and 2 * 2**29 = 2**30.
    #   Dense / Sparse / DelaySparse sum in int32: 2**31 wraps to -2**31,
    #   >> 1 = -2**30.  DelayDense sums in int64: 2**31 >> 1 = 2**30.
    # t=1 input: product -256 * -2**23 = 2**31.  DelayDense wraps each
    #   product to int32: -2**31 >> 1 = -2**30 (delivered at t=2); the
    #   int32-sum paths give the same -2**30.
    # sigma accumulates: t=1 value, then t=1 + t=2 value (int32 wrap).
    assert col(r, "dense", "sigma") == [0, -2**30, -2**31]
    assert col(r, "sparse", "sigma") == [0, -2**30, -2**31]
    assert col(r, "dsparse", "sigma") == [0, -2**30, -2**31]
    assert col(r, "ddense", "sigma") == [0, 2**30, 0]


def test_sparse_equals_dense():
    prog, x = random_sparse_program(3)
    dense = LoihiProgram(prog.n_inputs, prog.neurons, [
        LoihiDense(s.name, s.src, s.dst, s.weights, s.weight_exp,
                   s.num_weight_bits, s.num_message_bits, s.delays, False)
        for s in prog.synapses], prog.input_message_bits)
    a, b = loihi.run(prog, x), loihi.run(dense, x)
    for n in prog.neurons:
        for key in a[n.name]:
            assert np.array_equal(a[n.name][key], b[n.name][key])


# ------------------------------------------------- hand-derived: conv
KERNEL = np.arange(1, 10).reshape(1, 1, 3, 3)  # [[1,2,3],[4,5,6],[7,8,9]]


def conv_program(stride, padding, hw, **kw):
    """input (1, hw, hw) -> 3x3 conv -> LIF 'n' (u = input << 6)."""
    c = LoihiConv("c", "input", "n", KERNEL, (1, hw, hw), stride=stride,
                  padding=padding, **kw)
    return LoihiProgram(hw * hw, [lif("n", c.out_size())], [c])


def test_conv_is_pytorch_cross_correlation_with_padding():
    prog = conv_program(1, 1, 4)
    x = np.zeros((3, 16), int)
    x[0, 0] = 1  # spike at (h=0, w=0)
    u = loihi.run(prog, x)["n"]["u"][:, 0].reshape(3, 4, 4) >> 6
    # out[y, x] = sum_{b,a} in_pad[y+b, x+a] * K[b, a] with the spike at
    # padded (1, 1): out[0,0] = K[1,1] = 5, out[0,1] = K[1,0] = 4,
    # out[1,0] = K[0,1] = 2, out[1,1] = K[0,0] = 1; one-step delay.
    want = np.zeros((4, 4), int)
    want[:2, :2] = [[5, 4], [2, 1]]
    assert (u[0] == 0).all() and (u[2] == 0).all()
    assert u[1].tolist() == want.tolist()


def test_conv_stride_and_ignored_weight_exp():
    x = np.zeros((2, 25), int)
    x[0, 2 * 5 + 2] = 1  # spike at (2, 2) of a 5x5 input
    # stride 2, no padding -> 2x2 output; out[y,x] = in[2y+b, 2x+a] K[b,a]:
    # out[0,0] = K[2,2] = 9, out[0,1] = K[2,0] = 7, out[1,0] = K[0,2] = 3,
    # out[1,1] = K[0,0] = 1.  Lava's fixed_pt Conv ignores weight_exp and
    # num_weight_bits, so -3 / 2 bits change nothing.
    for kw in ({}, {"weight_exp": -3, "num_weight_bits": 2}):
        u = loihi.run(conv_program(2, 0, 5, **kw), x)["n"]["u"][1, 0] >> 6
        assert u.tolist() == [9, 7, 3, 1]


def conv_wrap_program():
    """1x1 conv of weight 32767 on one graded input -> unit sigma-delta."""
    return LoihiProgram(1, [unit_sd("s", 1)], [LoihiConv(
        "c", "input", "s", np.full((1, 1, 1, 1), 32767), (1, 1, 1),
        num_message_bits=16)], input_message_bits=16)


def test_conv_output_wraps_to_24_bits():
    r = loihi.run(conv_wrap_program(), np.array([[300], [0]]))
    # 300 * 32767 = 9830100 >= 2**23 -> 9830100 - 2**24 = -6947116
    assert col(r, "s", "sigma") == [0, -6947116]


# ------------------------------------------ hand-derived: sigma-delta
def sdn_program(**kw):
    """graded input -> Dense weight 1 (graded) -> one sigma-delta 's'."""
    return LoihiProgram(1, [LoihiSigmaDelta("s", 1, **kw)], [LoihiDense(
        "d", "input", "s", np.array([[1]]), num_message_bits=8)],
        input_message_bits=8)


def test_sigma_delta_relu_threshold_and_state_exp():
    prog = sdn_program(vth=2, bias=np.array([1]), state_exp=1)
    r = loihi.run(prog, np.array([[3], [0], [0], [-10], [0], [0]]))
    # VTH = 2 << 1 = 4, BIAS = 1 << 1 = 2; input arrives one step later:
    # t  a   sigma act delta out residue  s_out = out >> 1
    # 0  0     0    2    2    0    2        0
    # 1  3     3    5    5    5    0        2
    # 2  0     3    5    0    0    0        0
    # 3  0     3    5    0    0    0        0
    # 4 -10   -7    0   -5   -5    0       -3 (floor)
    # 5  0    -7    0    0    0    0        0
    assert col(r, "s", "sigma") == [0, 3, 3, 3, -7, -7]
    assert col(r, "s", "act") == [2, 5, 5, 5, 0, 0]
    assert col(r, "s", "residue") == [2, 0, 0, 0, 0, 0]
    assert col(r, "s", "spikes") == [0, 2, 0, 0, -3, 0]


SDN_X = np.array([[1], [1], [1], [-2], [0], [0]])


def test_sigma_delta_cumulative_error():
    r = loihi.run(sdn_program(vth=3, act_mode="unit", cum_error=True), SDN_X)
    # t  a  sigma=act delta error  out residue
    # 1  1     1       1     1     0     1
    # 2  1     2       2     3 ->  2     0   (|error| >= 3: sends delta,
    #                                          error reset to 0)
    # 3  1     3       1     1     0     1
    # 4 -2     1      -1     0     0    -1
    # 5  0     1      -1    -1     0    -1
    assert col(r, "s", "spikes") == [0, 0, 2, 0, 0, 0]
    assert col(r, "s", "error") == [0, 1, 0, 1, 0, -1]
    assert col(r, "s", "residue") == [0, 1, 0, 1, -1, -1]


def test_sigma_delta_without_cumulative_error():
    r = loihi.run(sdn_program(vth=3, act_mode="unit"), SDN_X)
    # delta 1 (residue 1), 2 (residue 2), 3 >= 3 -> out 3 (>= is inclusive)
    # then 1 - 3 = -2 and 1 - 1 - 2 = -2 stay below the threshold
    assert col(r, "s", "spikes") == [0, 0, 0, 3, 0, 0]
    assert col(r, "s", "residue") == [0, 1, 2, 0, -2, -2]
    assert col(r, "s", "error") == [0] * 6


# ----------------------------------------------------- format tests
@pytest.mark.parametrize("make,field", [
    (lambda: LoihiDense("d", "input", "n", np.ones((1, 2), int),
                        delays=np.array([[0, 64]])), "delays"),
    (lambda: LoihiDense("d", "input", "n", np.ones((1, 2), int),
                        delays=np.array([[0, -1]])), "delays"),
    (lambda: LoihiDense("d", "input", "n", np.ones((1, 2), int),
                        delays=np.zeros((2, 1), int)), "delays"),
    (lambda: LoihiDense("d", "input", "n", np.ones((1, 2), int),
                        num_message_bits=25), "num_message_bits"),
    (lambda: LoihiDense("d", "input", "n", np.ones((1, 2), int),
                        sparse=1), "sparse"),
    (lambda: LoihiConv("c", "input", "n", np.ones((2, 1, 3, 3), int),
                       (3, 5, 5), groups=2), "groups"),
    (lambda: LoihiConv("c", "input", "n", np.ones((2, 3, 3, 3), int),
                       (3, 2, 2)), "empty"),
    (lambda: LoihiConv("c", "input", "n", np.full((1, 1, 1, 1), 2**15),
                       (1, 1, 1)), "weights"),
    (lambda: LoihiConv("c", "input", "n", np.ones((1, 1, 1, 1), int),
                       (1, 1, 1), stride=0), "stride"),
    (lambda: LoihiSigmaDelta("s", 2, vth=1, act_mode="tanh"), "act_mode"),
    (lambda: LoihiSigmaDelta("s", 2, vth=1 << 20, state_exp=3), "vth"),
    (lambda: LoihiSigmaDelta("s", 2, vth=1, state_exp=8), "state_exp"),
    (lambda: LoihiSigmaDelta("s", 2, vth=1, bias=np.array([1, 1 << 22]),
                             spike_exp=1), "bias"),
])
def test_validate_rejects(make, field):
    with pytest.raises(ValueError, match=field):
        make().validate()


def test_program_checks_conv_sizes_and_graded_input():
    c = LoihiConv("c", "input", "n", np.ones((2, 1, 3, 3), int), (1, 4, 4))
    assert c.out_shape() == (2, 2, 2)
    LoihiProgram(16, [lif("n", 8)], [c]).validate()
    with pytest.raises(ValueError, match="source"):
        LoihiProgram(15, [lif("n", 8)], [c]).validate()
    with pytest.raises(ValueError, match="output shape"):
        LoihiProgram(16, [lif("n", 9)], [c]).validate()
    prog = sdn_program(vth=1)
    with pytest.raises(ValueError, match="8-bit"):
        loihi.run(prog, np.array([[128]]))
    assert loihi.run(prog, np.array([[127], [-128]]))["n_steps"] == 2


def test_versions_and_round_trip(tmp_path):
    plain = LoihiProgram(2, [lif("n", 1)], [LoihiDense(
        "d", "input", "n", np.array([[1, 2]]))])
    assert plain.extensions() == [] and plain.format_version() == 1
    plain.save(str(tmp_path / "v1"))
    doc = json.loads((tmp_path / "v1" / "program.json").read_text())
    assert doc["version"] == 1 and "kind" not in doc["synapses"][0]
    assert LoihiProgram.load(str(tmp_path / "v1")).synapses[0].delays is None
    prog, x = mixed_program(0)
    assert prog.extensions() == ["conv", "delays", "graded_input",
                                 "graded_synapses", "sigma_delta", "sparse"]
    prog.save(str(tmp_path / "v2"))
    doc = json.loads((tmp_path / "v2" / "program.json").read_text())
    assert doc["version"] == 2
    back = LoihiProgram.load(str(tmp_path / "v2"))
    assert [type(s) for s in back.synapses] == \
        [type(s) for s in prog.synapses]
    a, b = loihi.run(prog, x), loihi.run(back, x)
    for n in prog.neurons:
        for key in a[n.name]:
            assert np.array_equal(a[n.name][key], b[n.name][key])


# ----------------------------------------------------- program generators
def _weights(rng, shape, mode, density=1.0):
    """Random raw 8-bit weights of one sign mode, optionally sparse."""
    lo, hi = {"mixed": (-256, 256), "excitatory": (0, 256),
              "inhibitory": (-255, 1)}[mode]
    w = rng.integers(lo, hi, shape)
    return w * (rng.random(shape) < density) if density < 1 else w


MODES = ("mixed", "excitatory", "inhibitory")


def _lif_layer(rng, name, size, inhibited=False, probe=True, vth_max=500):
    """Random LIF group; fed by inhibitory weights it gets a positive bias."""
    lo, hi = (0, 1500) if inhibited else (-200, 300)
    return LoihiLIF(name, size,
                    du=int(rng.choice([0, 4095, int(rng.integers(0, 4096))])),
                    dv=int(rng.choice([0, int(rng.integers(0, 4096))])),
                    vth=int(rng.integers(0, vth_max)),
                    bias_mant=rng.integers(lo, hi, size),
                    bias_exp=int(rng.integers(3, 6) if inhibited
                                 else rng.integers(-2, 4)), probe=probe)


def random_delay_program(seed, sparse=False):
    """3 LIF layers through DelayDense (or DelaySparse), delays 0..63
    (a few distinct classes per matrix), a delayed recurrent link."""
    rng = np.random.default_rng(seed)
    n_in, sizes = int(rng.integers(10, 25)), rng.integers(5, 14, 3)
    modes = ["mixed"] + [MODES[(seed + i) % 3] for i in (1, 2)]
    neurons = [_lif_layer(rng, f"L{i}", int(s), modes[i] == "inhibitory",
                          probe=(i != 1 or seed % 2 == 0))
               for i, s in enumerate(sizes)]
    synapses, src, src_size = [], "input", n_in
    density = 0.35 if sparse else 1.0
    for i, size in enumerate(sizes):
        shape = (int(size), src_size)
        classes = rng.choice(64, int(rng.integers(1, 6)), replace=False)
        synapses.append(LoihiDense(
            f"D{i}", src, f"L{i}", _weights(rng, shape, modes[i], density),
            weight_exp=int(rng.integers(-4, 4)),
            num_weight_bits=int(rng.choice([8, 7, 5])),
            delays=rng.choice(classes, shape), sparse=sparse))
        src, src_size = f"L{i}", int(size)
    synapses.append(LoihiDense(
        "R1", "L1", "L1", _weights(rng, (sizes[1], sizes[1]), "mixed",
                                   density),
        weight_exp=int(rng.integers(-3, 2)),
        delays=rng.integers(0, 8, (sizes[1], sizes[1])), sparse=sparse))
    prog = LoihiProgram(n_in, neurons, synapses)
    return prog, rng.random((int(rng.integers(90, 121)), n_in)) < 0.25


def random_sparse_program(seed):
    """Sparse (no delay) layers of every sign mode + a DelaySparse skip."""
    rng = np.random.default_rng(seed)
    n_in, sizes = int(rng.integers(20, 40)), rng.integers(8, 20, 3)
    neurons = [_lif_layer(rng, f"L{i}", int(s), MODES[i] == "inhibitory")
               for i, s in enumerate(sizes)]
    synapses, src, src_size = [], "input", n_in
    for i, size in enumerate(sizes):
        synapses.append(LoihiDense(
            f"S{i}", src, f"L{i}",
            _weights(rng, (int(size), src_size), MODES[i],
                     float(rng.uniform(0.1, 0.5))),
            weight_exp=int(rng.integers(-4, 5)),
            num_weight_bits=int(rng.choice([8, 6, 3])), sparse=True))
        src, src_size = f"L{i}", int(size)
    synapses.append(LoihiDense(
        "skip", "L0", "L2", _weights(rng, (sizes[2], sizes[0]), "mixed", 0.3),
        weight_exp=-2, delays=rng.integers(0, 4, (sizes[2], sizes[0])),
        sparse=True))
    prog = LoihiProgram(n_in, neurons, synapses)
    return prog, rng.random((int(rng.integers(80, 101)), n_in)) < 0.3


def random_conv_program(seed):
    """input (C,H,W) -> conv -> LIF -> conv (groups, dilation) -> LIF ->
    Dense -> LIF, plus a second conv from the input into the first layer."""
    rng = np.random.default_rng(seed)
    c_in, h, w = int(rng.integers(1, 4)), int(rng.integers(6, 10)), \
        int(rng.integers(6, 10))
    c1 = 2 * int(rng.integers(1, 3))
    k = (int(rng.integers(1, 4)), int(rng.integers(2, 4)))
    conv1 = LoihiConv("C1", "input", "L1",
                      rng.integers(-300, 300, (c1, c_in) + k), (c_in, h, w),
                      stride=(int(rng.integers(1, 3)), 1),
                      padding=(int(rng.integers(0, 2)),
                               int(rng.integers(0, 2))))
    shape1 = conv1.out_shape()
    # a second kernel of the same output shape from the same input
    conv1b = LoihiConv("C1b", "input", "L1",
                       rng.integers(-50, 50, (c1, c_in) + k), (c_in, h, w),
                       stride=conv1.stride, padding=conv1.padding,
                       weight_exp=int(rng.integers(-3, 3)))
    c2 = 2 * int(rng.integers(1, 3))
    conv2 = LoihiConv("C2", "L1", "L2",
                      rng.integers(-400, 400, (c2, c1 // 2, 2, 2)), shape1,
                      dilation=(int(rng.integers(1, 3)), 1), padding=1,
                      groups=2)
    size1, size2 = conv1.out_size(), conv2.out_size()
    neurons = [_lif_layer(rng, "L1", size1), _lif_layer(rng, "L2", size2,
                                                        vth_max=150),
               _lif_layer(rng, "L3", 6, vth_max=100)]
    synapses = [conv1, conv1b, conv2, LoihiDense(
        "D3", "L2", "L3", _weights(rng, (6, size2), "mixed"),
        weight_exp=-1)]
    prog = LoihiProgram(c_in * h * w, neurons, synapses)
    return prog, rng.random((int(rng.integers(60, 81)), c_in * h * w)) < 0.3


def random_sdn_program(seed):
    """graded input -> Dense -> SDN (relu) -> DelaySparse -> SDN (unit,
    cum_error) -> conv (graded) -> SDN (relu) -> Dense (binary) -> LIF,
    with a DelayDense graded skip and a Sparse graded link."""
    rng = np.random.default_rng(seed)
    n_in, s1, s2 = 16, int(rng.integers(6, 12)), 12  # s2 = 3 x 2 x 2
    bits = int(rng.integers(6, 12))
    conv = LoihiConv("C", "S2", "S3", rng.integers(-100, 100, (2, 3, 2, 2)),
                     (3, 2, 2), padding=1, num_message_bits=16)
    s3 = conv.out_size()
    neurons = [
        LoihiSigmaDelta("S1", s1, vth=int(rng.integers(0, 20)),
                        bias=rng.integers(-50, 50, s1),
                        spike_exp=int(rng.integers(0, 3)),
                        state_exp=int(rng.integers(0, 7))),
        LoihiSigmaDelta("S2", s2, vth=int(rng.integers(1, 50)),
                        act_mode="unit", cum_error=True,
                        state_exp=int(rng.integers(0, 4))),
        LoihiSigmaDelta("S3", s3, vth=int(rng.integers(0, 100)),
                        bias=rng.integers(-200, 200, s3), state_exp=6,
                        probe=bool(seed % 2)),
        _lif_layer(rng, "L", 5)]
    synapses = [
        LoihiDense("G1", "input", "S1", _weights(rng, (s1, n_in), "mixed"),
                   weight_exp=int(rng.integers(-3, 3)), num_message_bits=bits),
        LoihiDense("G2", "S1", "S2", _weights(rng, (s2, s1), "mixed", 0.5),
                   weight_exp=int(rng.integers(-4, 1)), num_message_bits=24,
                   delays=rng.integers(0, 5, (s2, s1)), sparse=True),
        LoihiDense("G2b", "input", "S2",
                   _weights(rng, (s2, n_in), "excitatory"),
                   weight_exp=-2, num_message_bits=bits,
                   delays=rng.integers(0, 3, (s2, n_in))),
        LoihiDense("G2c", "S1", "S2", _weights(rng, (s2, s1), "inhibitory",
                                               0.4),
                   num_message_bits=24, sparse=True),
        conv,
        LoihiDense("B", "S3", "L", _weights(rng, (5, s3), "mixed"),
                   weight_exp=2)]
    prog = LoihiProgram(n_in, neurons, synapses, input_message_bits=bits)
    lo, hi = prog.input_range()
    x = rng.integers(lo, hi + 1, (int(rng.integers(80, 121)), n_in))
    return prog, x * (rng.random(x.shape) < 0.4)


def mixed_program(seed):
    """Every feature in one program: graded input, conv, delays, sparse,
    sigma-delta and LIF."""
    rng = np.random.default_rng(1000 + seed)
    c, h, w = 2, 4, 4
    conv = LoihiConv("C", "input", "S", rng.integers(-60, 60, (2, 2, 3, 3)),
                     (c, h, w), padding=1, stride=2, num_message_bits=8)
    neurons = [LoihiSigmaDelta("S", conv.out_size(), vth=3,
                               bias=rng.integers(-5, 5, conv.out_size()),
                               state_exp=2),
               _lif_layer(rng, "L", 10)]
    synapses = [conv,
                LoihiDense("D", "S", "L", _weights(rng, (10, 8), "mixed"),
                           delays=rng.integers(0, 10, (10, 8)),
                           weight_exp=-3, num_message_bits=12),
                LoihiDense("R", "L", "L", _weights(rng, (10, 10), "mixed",
                                                   0.3),
                           sparse=True, weight_exp=1)]
    prog = LoihiProgram(c * h * w, neurons, synapses, input_message_bits=5)
    x = rng.integers(-16, 16, (100, c * h * w))
    return prog, x * (rng.random(x.shape) < 0.5)


def extreme_graded_program():
    """Full-range int32 graded input into every connection kind (graded
    Dense / Sparse / DelayDense / DelaySparse with a -256 row, a binary
    Dense, a left-shifting graded Dense and a 16-bit-weight conv), each
    into its own unit sigma-delta group: exercises every int32 wrap, the
    per-product wrap of DelayDense, the int32 cast (INT_MIN) and 24-bit
    wrap of Conv, and sigma's int32 wrap."""
    rng = np.random.default_rng(5)
    n = 12
    w = rng.integers(-256, 256, (4, n))
    w[0, :] = -256
    kinds = [("S0", None, False, -3), ("S1", None, True, -3),
             ("S2", rng.integers(0, 3, (4, n)), False, -2),
             ("S3", rng.integers(0, 3, (4, n)), True, -2),
             ("S5", None, False, 6)]
    synapses = [LoihiDense(f"w{g}", "input", g, w, weight_exp=e,
                           num_message_bits=24, delays=d, sparse=sp)
                for g, d, sp, e in kinds]
    synapses.append(LoihiDense("wS4", "input", "S4", w, weight_exp=5))
    synapses.append(LoihiConv(
        "cv", "input", "SC", rng.integers(-2**15, 2**15, (2, 1, 2, 2)),
        (1, 3, 4), num_message_bits=24, weight_exp=3, num_weight_bits=2))
    groups = [unit_sd(f"S{i}", 4) for i in range(6)] + [unit_sd("SC", 12)]
    prog = LoihiProgram(n, groups, synapses, input_message_bits=32)
    x = rng.integers(-2**31, 2**31, (60, n))
    x[3], x[4], x[5] = -2**31, 2**31 - 1, -2**23
    x[6] = rng.integers(-3, 3, n)
    x[7] = 0
    x[8:12] = rng.integers(-2**10, 2**10, (4, n))
    return prog, x


def hand_jobs():
    """The hand-derived programs above, with their inputs."""
    x_delay = np.zeros((6, 2), int)
    x_delay[0] = 1
    x_conv = np.zeros((3, 16), int)
    x_conv[0, 0] = 1
    x_stride = np.zeros((2, 25), int)
    x_stride[0, 12] = 1
    return {
        "hand_delay": (delay_program(), x_delay),
        "hand_classes": (shift_class_program([0, 1]), x_delay),
        "hand_graded_overflow": (graded_overflow_program(),
                                 graded_overflow_input()),
        "hand_conv_pad": (conv_program(1, 1, 4), x_conv),
        "hand_conv_stride": (conv_program(2, 0, 5, weight_exp=-3,
                                          num_weight_bits=2), x_stride),
        "hand_conv_wrap": (conv_wrap_program(), np.array([[300], [0]])),
        "hand_sdn_relu": (sdn_program(vth=2, bias=np.array([1]),
                                      state_exp=1),
                          np.array([[3], [0], [0], [-10], [0], [0]])),
        "hand_sdn_cum": (sdn_program(vth=3, act_mode="unit",
                                     cum_error=True), SDN_X),
    }


def all_jobs():
    """name -> (program, input) for the Lava comparison."""
    jobs = {}
    for s in (0, 1):
        jobs[f"delay{s}"] = random_delay_program(s)
        jobs[f"conv{s}"] = random_conv_program(s)
        jobs[f"sdn{s}"] = random_sdn_program(s)
    jobs["delay_sparse"] = random_delay_program(7, sparse=True)
    jobs["sparse"] = random_sparse_program(0)
    jobs["mixed"] = mixed_program(0)
    jobs["extreme_graded"] = extreme_graded_program()
    prog, x = random_sdn_program(4)
    jobs["sdn_batch2"] = (prog, np.stack([x, x[::-1]], axis=1))
    jobs.update(hand_jobs())
    return jobs


# ------------------------------------------------------ Lava conformance
@pytest.fixture(scope="module")
def lava_results():
    """All jobs in one Lava subprocess."""
    from lava_util import require_lava
    py = require_lava()
    from neurocompile.targets.loihi2.lava.host import run_many_in_lava
    jobs = all_jobs()
    names = list(jobs)
    outs = run_many_in_lava([jobs[k] for k in names], python=py, timeout=600)
    return {k: (jobs[k], out) for k, out in zip(names, outs)}


JOB_NAMES = ["delay0", "delay1", "conv0", "conv1", "sdn0", "sdn1",
             "delay_sparse", "sparse", "mixed", "extreme_graded",
             "sdn_batch2", "hand_delay", "hand_classes",
             "hand_graded_overflow", "hand_conv_pad", "hand_conv_stride",
             "hand_conv_wrap", "hand_sdn_relu", "hand_sdn_cum"]


def test_job_list_is_complete():
    assert sorted(JOB_NAMES) == sorted(all_jobs())


@pytest.mark.parametrize("job", JOB_NAMES)
def test_emulator_matches_lava(lava_results, job):
    (prog, x), lava = lava_results[job]
    emu = loihi.run(prog, x)
    assert lava["n_steps"] == emu["n_steps"] == len(x)
    active = 0
    for n in prog.neurons:
        assert set(lava[n.name]) == set(emu[n.name]), n.name
        for key, want in emu[n.name].items():
            got = lava[n.name][key]
            assert got.shape == want.shape, (n.name, key)
            bad = np.argwhere(got != want)
            assert bad.size == 0, (
                f"{job}: {n.name}.{key} differs first at (t, b, i)="
                f"{tuple(bad[0])}: lava={got[tuple(bad[0])]} "
                f"emulator={want[tuple(bad[0])]}")
            active += int(np.count_nonzero(want))
    assert active > 0  # the comparison is not vacuous


def test_hand_values_hold_in_lava(lava_results):
    """The hand-derived values are Lava's own (not only the emulator's)."""
    def trace(job, group, key):
        return lava_results[job][1][group][key][:, 0, 0].tolist()
    assert trace("hand_delay", "n", "u") == [0, 640, 0, 0, 1280, 0]
    assert trace("hand_classes", "n", "u")[:4] == [0, 64, 64, 0]
    assert trace("hand_graded_overflow", "ddense", "sigma") == [0, 2**30, 0]
    assert trace("hand_graded_overflow", "dsparse", "sigma") == \
        [0, -2**30, -2**31]
    u = lava_results["hand_conv_pad"][1]["n"]["u"][1, 0].reshape(4, 4) >> 6
    assert u[:2, :2].tolist() == [[5, 4], [2, 1]] and u.sum() == 12
    stride = lava_results["hand_conv_stride"][1]["n"]["u"][1, 0] >> 6
    assert stride.tolist() == [9, 7, 3, 1]
    assert trace("hand_conv_wrap", "s", "sigma") == [0, -6947116]
    assert trace("hand_sdn_relu", "s", "spikes") == [0, 2, 0, 0, -3, 0]
    assert trace("hand_sdn_cum", "s", "spikes") == [0, 0, 2, 0, 0, 0]
