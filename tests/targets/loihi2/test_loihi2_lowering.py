"""Loihi 2 lowering breadth: convolutions kept as LoihiConv, Delay nodes as synaptic delays,
sigma-delta networks as LoihiSigmaDelta with graded messages.

Each feature is checked three ways: the dense-form / float semantics, the aligned emulator output
against the float reference (hand-derived where the timing matters), and the emulator against
Lava's fixed_pt models bit for bit (all Lava runs share ONE subprocess, see ``lava_runs``).
"""
import time

import numpy as np
import pytest

from conftest import DATA, NIR_PAPER
from lava_util import require_lava
from neurocompile import api
from neurocompile.errors import UnsupportedError
from neurocompile.frontends.nir import read_nir
from neurocompile.ir import nodes as N
from neurocompile.ir import sequential
from neurocompile.ir.interpreter import run as float_run
from neurocompile.ir.latency import shortest_hops
from neurocompile.passes import NORMALIZE, Pipeline
from neurocompile.passes.dense_form import DenseForm
from neurocompile.targets.loihi2 import emulator as loihi
from neurocompile.targets.loihi2.program import LoihiConv, LoihiDense, LoihiSigmaDelta
from neurocompile.targets.loihi2.target import spikes_in
from neurocompile.targets.registry import get_backend

ONNX = DATA / "onnx"
BACKEND = get_backend("loihi2")
EMULATOR = BACKEND.runners["emulator"]


def chip_input(art, x):
    """What the chip is fed: the encoded input padded by the pipeline latency (as run_raw)."""
    xs = spikes_in(art, x)
    L = max(shortest_hops(art.graph).values())
    pad = np.concatenate([xs, np.zeros((L,) + xs.shape[1:], dtype=xs.dtype)])
    return pad if art.payload["program"].input_message_bits else pad.astype(bool)


def assert_same_raw(a, b, program):
    for n in program.neurons:
        for key in a[n.name]:
            np.testing.assert_array_equal(a[n.name][key], b[n.name][key], err_msg=f"{n.name}.{key}")


# ------------------------------------------------------------------------------ convolution
def conv_net(seed=0):
    """1x8x8 -> Conv(4, 3x3, pad 1, bias) -> IF -> SumPool 2 -> Flatten -> Linear -> IF."""
    rng = np.random.default_rng(seed)
    return sequential([
        ("in", N.Input(shape=(1, 8, 8))),
        ("conv", N.Conv2d(weight=rng.normal(0, 0.6, (4, 1, 3, 3)), bias=rng.normal(0.05, 0.05, 4), padding=1)),
        ("if1", N.IF(v_threshold=1.0)), ("pool", N.SumPool2d(kernel_size=2)), ("flat", N.Flatten()),
        ("fc", N.Linear(weight=rng.normal(0, 0.4, (5, 64)))), ("if2", N.IF()), ("out", N.Output())], dt=1.0)


def conv_input(T=40, B=3, seed=1):
    return (np.random.default_rng(seed).random((T, B, 1, 8, 8)) < 0.3).astype(float)


def test_dense_form_keeps_conv_and_computes_the_same_function():
    for g in (conv_net(), Pipeline(NORMALIZE).run(read_nir(NIR_PAPER / "cnn_sinabs.nir"))):
        flat = Pipeline([DenseForm(keep_conv=True)]).run(g)
        kept = flat.metadata["kept_conv"]
        assert kept and all(isinstance(flat.nodes[c], N.Conv2d) for c in kept)
        assert not any(isinstance(n, (N.SumPool2d,)) for n in flat.nodes.values())  # pools fold or join a conv
        shape = g.validate()[g.inputs[0]]
        x = (np.random.default_rng(0).random((10, 2) + shape) < 0.3).astype(float)
        a, b = float_run(g, x, record_spikes=True), float_run(flat, x, record_spikes=True)
        for k in a.probes:
            np.testing.assert_array_equal(a.probes[k].reshape(10, 2, -1), b.probes[k].reshape(10, 2, -1), err_msg=k)
        for k in a.outputs:
            np.testing.assert_array_equal(a.outputs[k].reshape(10, 2, -1), b.outputs[k].reshape(10, 2, -1))
        assert sum(v.sum() for v in a.probes.values()) > 0
    # the NIR CNN: conv 5 follows a 2x2 sum pool, the pair is one strided conv (kept, named by the conv)
    assert flat.metadata["kept_conv"] == ["0", "2", "5"] and flat.metadata["folded"]["5"] == ["4", "5"]


def test_conv_into_a_group_with_another_input_is_folded():
    # if1 also receives a folded (flat) input, so it cannot keep the conv's (C, H, W) shape (a
    # per-position Scale: not a conv; a per-channel one would be kept as a 1x1 depthwise conv)
    rng = np.random.default_rng(0)
    g = sequential([("in", N.Input(shape=(2, 4, 4))),
                    ("conv", N.Conv2d(weight=rng.normal(size=(2, 2, 3, 3)), padding=1)),
                    ("if1", N.IF()), ("o", N.Output())], dt=1.0)
    g.add("sc", N.Scale(scale=np.arange(1.0, 33.0).reshape(2, 4, 4) / 32))
    g.chain("in", "sc", "if1")
    flat = Pipeline([DenseForm(keep_conv=True)]).run(g)
    assert "kept_conv" not in flat.metadata and isinstance(flat.nodes["conv"], N.Linear)
    x = (np.random.default_rng(1).random((6, 2, 2, 4, 4)) < 0.5).astype(float)
    np.testing.assert_array_equal(float_run(g, x).output.reshape(6, 2, -1),
                                  float_run(flat, x.reshape(6, 2, -1)).output)


def test_conv_fits_lavas_int8_fields():
    from neurocompile.targets.loihi2.conv import conv_fits

    assert conv_fits(N.Conv2d(weight=np.ones((4, 2, 5, 5)), stride=2, padding=1), (2, 34, 34))
    assert not conv_fits(N.Conv2d(weight=np.ones((1, 1, 2, 2)), dilation=130), (1, 140, 140))
    assert not conv_fits(N.Conv2d(weight=np.ones((1, 1, 3, 3)), padding=128), (1, 8, 8))


def test_conv_lowered_to_loihi_conv_with_exponent_free_weights(tmp_path):
    art = api.compile(conv_net(), target="loihi2")
    prog = art.payload["program"]
    (conv,) = [s for s in prog.synapses if isinstance(s, LoihiConv)]
    assert conv.src == "input" and conv.dst == "if1" and conv.in_shape == (1, 8, 8) and conv.padding == (1, 1)
    assert conv.weight_exp == 0 and np.abs(conv.weights).max() == 254 and np.all(conv.weights % 2 == 0)
    rep = art.report["quantization"]
    assert rep["conv"]["kind"] == "conv" and rep["conv"]["clipped"] == 0 and rep["conv"]["rel_rms_error"] < 0.01
    assert "vth_rule" in rep["if1"] and prog.neuron("if1").vth == rep["if1"]["vth"]
    assert any(s.name == "if1.bias" for s in prog.synapses)   # the conv bias comes through the clock
    fc = next(s for s in prog.synapses if s.name == "pool")   # pool -> flat -> fc, folded
    assert isinstance(fc, LoihiDense) and fc.src == "if1" and fc.weights.shape == (5, 256)
    # float vs emulator spike counts (aligned on the float time base)
    x = conv_input()
    f, q = float_run(conv_net(), x, record_spikes=True), api.run(art, x, record_spikes=True)
    for k in ("if1.out", "if2.out"):
        a, b = f.probes[k].sum(), q.probes[k].sum()
        assert a > 20 and abs(a - b) <= 0.05 * a, (k, a, b)
    fc_, qc = f.output.sum(0).ravel(), q.output.sum(0).ravel()   # per sample and output neuron
    assert np.abs(fc_ - qc).sum() <= 0.1 * fc_.sum() and np.corrcoef(fc_, qc)[0, 1] > 0.99
    # the saved artifact runs the same; probes of a shaped group come in its (C, H, W) shape
    art.save(tmp_path / "a")
    again = api.run(tmp_path / "a", x, probes=["if1.v"])
    np.testing.assert_array_equal(again.output, q.output)
    assert again.probes["if1.v"].shape == (40, 3, 4, 8, 8)


# ---------------------------------------------------------------------------------- delays
def delay_before_net(d=(0, 3)):
    """in(2) -> eye -> IF a -> Delay d (per source) -> eye -> IF b."""
    return sequential([("in", N.Input(shape=(2,))), ("fc1", N.Linear(weight=np.eye(2))), ("a", N.IF(v_threshold=0.5)),
                       ("dly", N.Delay(delay=np.array(d))), ("fc2", N.Linear(weight=np.eye(2))),
                       ("b", N.IF(v_threshold=0.5)), ("out", N.Output())], dt=1.0)


def delay_after_net():
    """in(1) -> IF a -> Affine(bias 1) -> Delay [2, 0] (per destination, bias delayed too) -> IF c."""
    return sequential([("in", N.Input(shape=(1,))), ("fc1", N.Linear(weight=np.ones((1, 1)))),
                       ("a", N.IF(v_threshold=0.5)),
                       ("fc2", N.Affine(weight=np.ones((2, 1)), bias=np.ones(2))),
                       ("dly", N.Delay(delay=np.array([2, 0]))),
                       ("c", N.IF(v_threshold=2.5)), ("out", N.Output())], dt=1.0)


def spike_times(out, i):
    return np.flatnonzero(out[:, 0, i]).tolist()


def test_delay_before_synapses_hand_derived_timing():
    x = np.zeros((8, 1, 2))
    x[0] = 1                                      # both inputs spike at t = 0
    f = float_run(delay_before_net(), x).output
    # a spikes at t=0; b0 through delay 0 at t=0, b1 through delay 3 at t=3
    assert spike_times(f, 0) == [0] and spike_times(f, 1) == [3]
    art = api.compile(delay_before_net(), target="loihi2")
    (d,) = [s for s in art.payload["program"].synapses if s.name == "fc2"]
    np.testing.assert_array_equal(d.delays, [[0, 3], [0, 3]])  # per source column
    raw = loihi.run(art.payload["program"], chip_input(art, x))
    # chip time: a at 1 (one hop), b0 at 1+1 = 2, b1 at 1+1+3 = 5; aligned by latency(b) = 2
    assert np.flatnonzero(raw["b"]["spikes"][:, 0, 0]).tolist() == [2]
    assert np.flatnonzero(raw["b"]["spikes"][:, 0, 1]).tolist() == [5]
    np.testing.assert_array_equal(api.run(art, x).output, f)


def test_delay_after_synapses_delays_bias_too():
    x = np.zeros((12, 1, 1))
    f = float_run(delay_after_net(), x).output
    # no input: only the bias (1 per step, threshold 2.5): c1 from t=0 fires at 2, 5, 8, 11;
    # c0 gets it from t=2 on (the Delay holds zeros before): fires at 4, 7, 10
    assert spike_times(f, 0) == [4, 7, 10] and spike_times(f, 1) == [2, 5, 8, 11]
    art = api.compile(delay_after_net(), target="loihi2")
    np.testing.assert_array_equal(api.run(art, x).output, f)
    x[[1, 6]] = 1                                 # input spikes add to both, c0 two steps later
    f = float_run(delay_after_net(), x).output
    assert spike_times(f, 0) != [4, 7, 10]
    np.testing.assert_array_equal(api.run(art, x).output, f)
    (d,) = [s for s in art.payload["program"].synapses if s.name == "fc2"]
    np.testing.assert_array_equal(d.delays, [[2], [0]])   # per destination row


def test_delay_limits_name_the_node():
    art = api.compile(delay_before_net((0, 62)), target="loihi2")
    x = np.zeros((70, 1, 2))
    x[0] = 1
    assert spike_times(api.run(art, x).output, 1) == [62]
    with pytest.raises(UnsupportedError, match="at most 62") as e:
        api.compile(delay_before_net((0, 63)), target="loihi2")
    assert e.value.node == "dly"
    g = sequential([("in", N.Input(shape=(2,))), ("fc1", N.Linear(weight=np.eye(2))), ("a", N.IF()),
                    ("dly", N.Delay(delay=np.array([1, 1]))), ("out", N.Output())], dt=1.0)
    with pytest.raises(UnsupportedError, match="next to a synapse") as e:
        api.compile(g, target="loihi2")
    assert e.value.node == "dly"


# ----------------------------------------------------------------------------- sigma-delta
@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    X = d.images.astype(np.float32) / 16.0
    _, Xt, _, yt = train_test_split(X, d.target, test_size=0.25, stratify=d.target, random_state=0)
    return Xt.reshape(len(Xt), -1), yt


@pytest.fixture(scope="module")
def sdn_art():
    from neurocompile.frontends.onnx import from_onnx

    calib = np.load(ONNX / "digits_calib.npy", allow_pickle=False)
    g = from_onnx(ONNX / "digits_mlp.onnx", calib, method="sigma_delta")
    return api.compile(g, target="loihi2", calibration=calib)


SDN_T = 4


def static(x, T=SDN_T):
    return np.ascontiguousarray(np.broadcast_to(x[None], (T,) + x.shape))


def test_host_delta_encoder_is_lavas_fixed_point_delta():
    from neurocompile.targets.loihi2.sdn_fixed import sigma_delta_fixed
    from neurocompile.targets.loihi2.sigma_delta import delta_encode

    a = np.random.default_rng(0).integers(-300, 300, (30, 7))
    for cum in (False, True):
        ours = delta_encode(a[:, None], np.full(7, 40), cum)[:, 0]
        lava = sigma_delta_fixed(a, vth=40, act="unit", cum_error=cum, delta_only=True)["s_out"]
        np.testing.assert_array_equal(ours, lava)


def test_sigma_delta_lowering(sdn_art, digits, tmp_path):
    prog = sdn_art.payload["program"]
    assert [type(n) for n in prog.neurons] == [LoihiSigmaDelta, LoihiSigmaDelta]
    assert prog.input_message_bits == 24 and all(s.num_message_bits == 24 for s in prog.synapses)
    assert all(s.src != "input_delta" for s in prog.synapses)    # the Delta encoder is on the host
    rep = sdn_art.report["quantization"]
    for s in prog.synapses:  # the unit rule: w 2**e = W Q_post / M_pre
        dst = prog.neuron(s.dst)
        m_pre = sdn_art.payload["io"]["scale"] if s.src == "input" else sdn_art.payload["scales"][s.src][0]
        q_post = sdn_art.payload["scales"][s.dst][0] * 2 ** dst.state_exp
        W = sdn_art.graph.nodes[s.name].weight
        np.testing.assert_allclose(s.weights * 2.0 ** s.weight_exp, W * q_post / m_pre,
                                   atol=2 ** s.weight_exp * 1.0 + 1e-9)
        assert np.abs(s.weights).max() == 254 and rep[s.name]["clipped"] == 0
    # api.run: outputs on the float graph's time base, messages dequantized (saved artifact too)
    sdn_art.save(tmp_path / "a")
    x = static(digits[0][:20])
    q, f = api.run(tmp_path / "a", x), float_run(sdn_art.graph, x)
    assert q.output.shape == f.output.shape == (SDN_T, 20, 10)
    np.testing.assert_allclose(q.output.sum(0), f.output.sum(0), atol=0.25)


def test_sigma_delta_accuracy_and_messages(sdn_art, digits):
    import json

    from neurocompile.frontends.onnx import encode_input, from_onnx

    Xt, yt = digits
    ann = json.loads((ONNX / "digits_ann.json").read_text())["mlp"]
    x = static(Xt)
    q = api.run(sdn_art, x)
    acc = float((q.output.sum(0).argmax(1) == yt).mean())
    assert acc >= ann - 0.015, (acc, ann)
    # activation sparsity: graded messages per inference (host input + both groups, whole run)
    raw, _ = EMULATOR.run_raw(sdn_art, x)
    sent = np.count_nonzero(spikes_in(sdn_art, x)) + sum(
        np.count_nonzero(raw[n.name]["spikes"]) for n in sdn_art.payload["program"].neurons)
    per_sdn = sent / len(Xt)
    # rate coding of the same ANN for Loihi (spike input, reset to zero, 64 steps): spikes per inference
    calib = np.load(ONNX / "digits_calib.npy", allow_pickle=False)
    g = from_onnx(ONNX / "digits_mlp.onnx", calib, input_encoding="spikes", reset="zero")
    rate = api.compile(g, target="loihi2", calibration=calib)
    xr = encode_input(rate.graph, Xt[:100].reshape(100, 1, 8, 8), 64)
    rraw, _ = EMULATOR.run_raw(rate, xr)
    spikes = np.count_nonzero(xr) + sum(int(rraw[n.name]["spikes"].sum()) for n in rate.payload["program"].neurons
                                        if not n.name.startswith("_"))
    per_rate = spikes / 100
    print(f"\nsigma-delta digits MLP on the emulator: accuracy {acc:.4f} (ANN {ann}); "
          f"{per_sdn:.1f} messages per inference vs {per_rate:.1f} spikes per inference rate-coded (T=64)")
    assert per_sdn < 0.25 * per_rate


def sdn_small_net():
    """Input values (no Delta: sent every step) -> Linear -> Delay [0..3] -> SigmaDelta relu ->
    Linear -> SigmaDelta unit readout."""
    rng = np.random.default_rng(0)
    return sequential([("in", N.Input(shape=(3,))), ("fc", N.Linear(weight=rng.normal(0, 0.5, (4, 3)))),
                       ("dly", N.Delay(delay=np.array([0, 1, 2, 3]))),
                       ("sd", N.SigmaDelta(vth=0.0, bias=0.1, act="relu")),
                       ("fc2", N.Linear(weight=rng.normal(0, 0.5, (2, 4)))), ("ro", N.SigmaDelta(vth=0.0, act="unit")),
                       ("o", N.Output())], dt=1.0)


def sdn_small_input():
    rng = np.random.default_rng(1)
    return rng.random((12, 2, 3)) * (rng.random((12, 2, 3)) < 0.3)


def test_sigma_delta_values_input_and_delays_keep_float_timing():
    x = sdn_small_input()
    art = api.compile(sdn_small_net(), target="loihi2", calibration=x)
    assert art.payload["io"]["encoding"] == "values"
    (fc,) = [s for s in art.payload["program"].synapses if s.name == "fc"]
    np.testing.assert_array_equal(fc.delays[:, 0], [0, 1, 2, 3])
    q, f = api.run(art, x), float_run(sdn_small_net(), x)
    decoded_q, decoded_f = np.cumsum(q.output, 0), np.cumsum(f.output, 0)   # the readout's value per step
    assert np.abs(decoded_q - decoded_f).max() < 0.01 * np.abs(decoded_f).max()


# -------------------------------------------------------------------------------- NIR CNN
@pytest.fixture(scope="module")
def cnn_art():
    return api.compile(Pipeline(NORMALIZE).run(read_nir(NIR_PAPER / "cnn_sinabs.nir")), target="loihi2")


def test_nir_cnn_keeps_its_convs(cnn_art):
    prog = cnn_art.payload["program"]
    convs = [s for s in prog.synapses if isinstance(s, LoihiConv)]
    assert sorted(c.name for c in convs) == ["0", "2", "5"]  # 5 after fuse-pool-conv (4 + 5)
    assert all(c.weight_exp == 0 and np.abs(c.weights).max() <= 255 for c in convs)
    res = cnn_art.report["resources"]
    print(f"\nNIR CNN on Loihi 2: {res['cores']} cores, {res['neurons']} neurons, {res['synapses']} synapse "
          f"words, {res['connections']} connections")
    assert res["cores"] <= 3 and res["synapses"] < res["connections"]


# ------------------------------------------------------------------- emulator == Lava, one run
@pytest.fixture(scope="module")
def lava_runs(sdn_art, cnn_art, digits):
    py = require_lava()
    from neurocompile.targets.loihi2.lava.host import run_many_in_lava

    jobs = {}
    art = api.compile(conv_net(), target="loihi2")
    jobs["conv"] = (art.payload["program"], chip_input(art, conv_input(T=30, B=2)))
    x = np.zeros((10, 1, 2))
    x[[0, 4]] = 1
    art = api.compile(delay_before_net((1, 5)), target="loihi2")
    jobs["delay_before"] = (art.payload["program"], chip_input(art, x))
    x = np.zeros((14, 1, 1))
    x[[1, 6]] = 1
    art = api.compile(delay_after_net(), target="loihi2")
    jobs["delay_after"] = (art.payload["program"], chip_input(art, x))
    jobs["sdn"] = (sdn_art.payload["program"], chip_input(sdn_art, static(digits[0][:4])))
    art = api.compile(sdn_small_net(), target="loihi2", calibration=sdn_small_input())
    jobs["sdn_small"] = (art.payload["program"], chip_input(art, sdn_small_input()))
    x = (np.random.default_rng(3).random((20, 1, 2, 34, 34)) < 0.1).astype(float)
    jobs["cnn"] = (cnn_art.payload["program"], chip_input(cnn_art, x))
    t = time.perf_counter()
    out = run_many_in_lava(list(jobs.values()), python=py)
    wall = time.perf_counter() - t
    return {k: (prog, xin, r) for (k, (prog, xin)), r in zip(jobs.items(), out)} | {"_wall": wall}


@pytest.mark.parametrize("job", ["conv", "delay_before", "delay_after", "sdn", "sdn_small", "cnn"])
def test_emulator_equals_lava(lava_runs, job):
    prog, xin, lava = lava_runs[job]
    t = time.perf_counter()
    emu = loihi.run(prog, xin)
    t_emu = time.perf_counter() - t
    assert_same_raw(emu, lava, prog)
    active = sum(np.count_nonzero(emu[n.name]["spikes"]) for n in prog.neurons if not n.name.startswith("_"))
    assert active > 0
    if job == "cnn":
        t_lava = float(np.sum(lava["wall_build_run_s"]))
        print(f"\nNIR CNN, {xin.shape[0]} steps batch 1: Lava build+run {t_lava:.2f} s, emulator {t_emu:.3f} s "
              f"({t_lava / t_emu:.0f}x); all Lava jobs in one process {lava_runs['_wall']:.1f} s")
