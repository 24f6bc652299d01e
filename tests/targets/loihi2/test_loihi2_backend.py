"""Loihi 2 lowering: dense form, quantization, partitioning, emulator vs Lava on real graphs."""
import numpy as np
import pytest

from conftest import NIR_PAPER, paper_lif_input
from lava_util import require_lava
from neurocompile import api
from neurocompile.errors import NeuroCompileError, UnsupportedError
from neurocompile.frontends.nir import read_nir
from neurocompile.ir import nodes as N
from neurocompile.ir import sequential
from neurocompile.ir.interpreter import run as float_run
from neurocompile.passes import NORMALIZE, Pipeline
from neurocompile.passes.dense_form import DenseForm
from neurocompile.targets.loihi2 import emulator as loihi


def paper(name, **kw):
    return Pipeline(NORMALIZE).run(read_nir(NIR_PAPER / name, **kw))


@pytest.mark.parametrize("name", ["braille_noDelay_bias_zero.nir", "cnn_sinabs.nir"])
def test_dense_form_computes_the_same_function(name):
    g = paper(name)
    flat = Pipeline([DenseForm()]).run(g)
    assert all(not isinstance(n, (N.Conv2d, N.SumPool2d, N.Flatten)) for n in flat.nodes.values())
    shape = g.validate()[g.inputs[0]]
    x = (np.random.default_rng(0).random((12, 2) + shape) < 0.3).astype(float)
    a, b = float_run(g, x, record_spikes=True), float_run(flat, x.reshape(12, 2, -1), record_spikes=True)
    for k in a.probes:
        np.testing.assert_array_equal(a.probes[k].reshape(12, 2, -1), b.probes[k], err_msg=k)
    assert sum(v.sum() for v in a.probes.values()) > 0


def test_single_lif_gives_the_loihi_chip_spike_times(tmp_path):
    art = api.compile(paper("lif_norse.nir"), target="loihi2")
    program = art.payload["program"]
    x = paper_lif_input().astype(bool)
    raw = loihi.run(program, x)
    # the NIR paper: Lava fixed point and the Loihi chip spiked at 461, 511, 711, 761
    assert np.flatnonzero(raw["1"]["spikes"][:, 0, 0]).tolist() == [461, 511, 711, 761]
    chip = np.loadtxt(NIR_PAPER / "lif_lava_loihi_fixed.csv", delimiter=",")
    assert np.flatnonzero(chip[:, 2]).tolist() == [461, 511, 711, 761]
    # aligned to the input's time base, the artifact's output matches the float reference
    art.save(tmp_path / "a")
    out = api.run(tmp_path / "a", paper_lif_input()).output
    assert np.flatnonzero(out[:, 0, 0]).tolist() == [460, 510, 710, 760]


def test_single_lif_in_lava_matches_emulator(tmp_path):
    require_lava()
    art = api.compile(paper("lif_norse.nir"), target="loihi2")
    art.save(tmp_path / "a")
    x = paper_lif_input()
    emu = api.run(tmp_path / "a", x, probes=["1.v"])
    lava = api.run(tmp_path / "a", x, probes=["1.v"], on="lava")
    for k in emu.probes:
        np.testing.assert_array_equal(emu.probes[k], lava.probes[k], err_msg=k)
    assert np.flatnonzero(lava.output[:, 0, 0]).tolist() == [460, 510, 710, 760]


def test_braille_emulator_equals_lava_every_step():
    py = require_lava()
    from neurocompile.targets.loihi2.lava.host import run_in_lava

    art = api.compile(paper("braille_noDelay_bias_zero.nir"), target="loihi2")
    program = art.payload["program"]
    x = np.random.default_rng(1).random((160, 12)) < 0.15
    emu = loihi.run(program, x)
    lava = run_in_lava(program, x, python=py)
    for group in ("lif1.lif", "lif2"):
        for key in ("spikes", "u", "v"):
            np.testing.assert_array_equal(emu[group][key], lava[group][key], err_msg=f"{group}.{key}")
    assert emu["lif1.lif"]["spikes"].sum() > 0 and emu["lif2"]["spikes"].sum() > 0


def test_braille_quantized_close_to_float():
    g = paper("braille_noDelay_bias_zero.nir")
    x = (np.random.default_rng(0).random((256, 8, 12)) < 0.1).astype(float)
    art = api.compile(g, target="loihi2", calibration=x[:, :4])
    q = api.run(art, x, record_spikes=True)
    f = float_run(g, x, record_spikes=True)
    for k in ("lif1.lif.out", "lif2.out"):
        a, b = f.probes[k].sum(), q.probes[k].sum()
        assert abs(a - b) <= 0.15 * a, (k, a, b)
    # per sample and output neuron, the spike counts track the float ones closely
    fc, qc = f.output.sum(0).ravel(), q.output.sum(0).ravel()
    assert np.corrcoef(fc, qc)[0, 1] > 0.95
    assert np.abs(fc - qc).sum() / fc.sum() < 0.06


def test_weights_are_representable_and_exponents_sensible():
    rng = np.random.default_rng(0)
    g = sequential([("in", N.Input(shape=(30,))), ("fc", N.Linear(weight=rng.normal(0, 0.3, (20, 30)))),
                    ("l", N.LIF(tau=5.0, v_threshold=1.0)), ("o", N.Output())], dt=1.0)
    art = api.compile(g, target="loihi2")
    (d,) = art.payload["program"].synapses
    assert d.sign_mode() == "mixed" and np.all(d.weights % 2 == 0)   # nothing for Lava to truncate
    np.testing.assert_array_equal(d.effective_weights(), d.weights)
    assert 200 <= np.abs(d.weights).max() <= 254                      # uses the 8-bit range
    rep = art.report["quantization"]["fc"]
    assert rep["clipped"] == 0 and rep["rel_rms_error"] < 0.01
    lif = art.payload["program"].neurons[0]
    assert lif.dv == round(4096 * 0.2) and lif.du == 4095


def test_unsupported_reset_names_node():
    g = sequential([("in", N.Input(shape=(3,))), ("fc", N.Linear(weight=np.eye(3))),
                    ("lif_sub", N.LIF(tau=5.0, reset="subtract")), ("o", N.Output())], dt=1.0)
    with pytest.raises(UnsupportedError, match="subtraction") as e:
        api.compile(g, target="loihi2")
    assert e.value.node == "lif_sub"


def test_partition_splits_and_reports_limits():
    g = sequential([("in", N.Input(shape=(4,))), ("fc", N.Linear(weight=np.ones((10000, 4)))),
                    ("big", N.IF()), ("o", N.Output())], dt=1.0)
    art = api.compile(g, target="loihi2")
    res = art.report["resources"]
    assert res["cores"] == 2 and res["neurons"] == 10000
    assert [c["n_neurons"] for c in res["per_core"]] == [5000, 5000]


def test_small_layers_share_a_core():
    rng = np.random.default_rng(0)
    g = sequential([("in", N.Input(shape=(8,))), ("fc1", N.Linear(weight=rng.normal(size=(100, 8)))),
                    ("a", N.IF()), ("fc2", N.Linear(weight=rng.normal(size=(10, 100)))),
                    ("b", N.IF()), ("o", N.Output())], dt=1.0)
    res = api.compile(g, target="loihi2").report["resources"]
    assert res["cores"] == 1 and res["inter_core_routes"] == 0
    assert [x["group"] for x in res["per_core"][0]["groups"]] == ["a", "b"]
    assert res["spike_routes"] == 100  # each hidden neuron reaches the one core once


def test_network_too_big_for_one_chip_names_layer():
    # 129 cores' worth of neurons in one group: more than the 128 cores of one chip
    g = sequential([("in", N.Input(shape=(1,))), ("fc", N.Linear(weight=np.ones((129 * 8192, 1)))),
                    ("huge", N.IF()), ("o", N.Output())], dt=1.0)
    with pytest.raises(NeuroCompileError, match="more than 1 chip") as e:
        api.compile(g, target="loihi2")
    assert e.value.node == "huge"
    art = api.compile(g, target="loihi2", chips=2)
    assert art.report["resources"]["chips"] == 2


def test_non_binary_input_is_refused():
    g = sequential([("in", N.Input(shape=(2,))), ("fc", N.Linear(weight=np.eye(2))),
                    ("l", N.IF()), ("o", N.Output())], dt=1.0)
    art = api.compile(g, target="loihi2")
    with pytest.raises(NeuroCompileError, match="spikes"):
        api.run(art, np.full((3, 2), 0.5))


def test_split_weights_reach_16_bit_precision_and_stay_bit_exact():
    """--split-weights: a residual matrix per synapse layer; rounding error falls ~100x, the
    recurrent Braille net tracks the float run much closer, and Lava still agrees exactly."""
    g = paper("braille_noDelay_bias_zero.nir")
    x = (np.random.default_rng(0).random((256, 4, 12)) < 0.1).astype(float)
    plain = api.compile(g, target="loihi2")
    split = api.compile(g, target="loihi2", split_weights=True)
    for name in ("fc1", "lif1.w_rec", "fc2"):
        q_split, q_plain = split.report["quantization"][name], plain.report["quantization"][name]
        assert q_split["rel_rms_error"] < q_plain["rel_rms_error"] / 50
    assert {d.name for d in split.payload["program"].synapses} >= {"fc1.fine", "lif1.w_rec.fine", "fc2.fine"}
    f = float_run(g, x, record_spikes=True)
    q = api.run(split, x, record_spikes=True)
    for k in ("lif1.lif.out", "lif2.out"):
        assert abs(f.probes[k].sum() - q.probes[k].sum()) <= 0.03 * f.probes[k].sum(), k
    py = require_lava()
    from neurocompile.targets.loihi2.lava.host import run_in_lava

    xs = x[:120, 0].astype(bool)
    emu, lava = loihi.run(split.payload["program"], xs), run_in_lava(split.payload["program"], xs, python=py)
    for group in ("lif1.lif", "lif2"):
        for key in ("spikes", "u", "v"):
            np.testing.assert_array_equal(emu[group][key], lava[group][key], err_msg=f"{group}.{key}")
