"""validate: exact comparison finds an injected one-bit difference; float vs quantized; report."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import NIR_PAPER
from neurocompile import api
from neurocompile.cli.main import cli
from neurocompile.frontends.nir import read_nir
from neurocompile.targets import registry
from neurocompile.targets.loihi2.target import EmulatorRunner, Loihi2Target
from neurocompile.validate import validate

FLIP = {"step": 37, "group": "lif1.lif", "neuron": 5}


class OneBitOffRunner(EmulatorRunner):
    """The emulator, but one neuron's v has its lowest bit flipped at one step (a faulty chip)."""

    name = "faulty"

    def execute(self, program, spikes):
        raw = super().execute(program, spikes)
        v = raw[FLIP["group"]]["v"]
        flat = v.reshape(v.shape[0], v.shape[1], -1)  # a view: groups may be (C, H, W)
        flat[FLIP["step"], 0, FLIP["neuron"]] ^= 1
        return raw


class OneBitOff(Loihi2Target):
    """A Loihi 2 target whose default runner is the faulty one."""

    name = "faulty"
    runners = {**Loihi2Target.runners, "faulty": OneBitOffRunner()}
    default_runner = "faulty"


@pytest.fixture
def braille_input():
    return (np.random.default_rng(2).random((100, 2, 12)) < 0.15).astype(float)


@pytest.fixture
def faulty_target(monkeypatch):
    monkeypatch.setitem(registry._loaded, "faulty", OneBitOff())


def test_one_bit_difference_is_located(faulty_target, braille_input):
    g = read_nir(NIR_PAPER / "braille_noDelay_bias_zero.nir")
    rep = validate(g, braille_input, ["emulator", "faulty"])
    assert not rep["ok"]
    (c,) = rep["exact"]
    m = c["first_mismatch"]
    assert (m["step"], m["node"], m["neuron"], m["variable"], m["batch"]) == (37, "lif1.lif", 5, "v", 0)
    assert m["emulator"]["v"] ^ m["faulty"]["v"] == 1
    # the inputs of that neuron at that step are shown, per synapse matrix
    assert {i["synapses"] for i in m["inputs"]} == {"fc1", "lif1.w_rec", "lif1.lif.bias", "lif1.lif.bias_fine"}


def test_cli_exit_code_and_message(faulty_target, braille_input, tmp_path):
    np.save(tmp_path / "x.npy", braille_input)
    r = CliRunner().invoke(cli, ["validate", str(NIR_PAPER / "braille_noDelay_bias_zero.nir"), "-i",
                                 str(tmp_path / "x.npy"), "--targets", "emulator,faulty"], catch_exceptions=False)
    assert r.exit_code == 3
    assert "DIFFER first at step 37 node 'lif1.lif' neuron 5 (v)" in r.output


def test_report_for_float_and_emulator(tmp_path, braille_input):
    g = read_nir(NIR_PAPER / "braille_noDelay_bias_zero.nir")
    rep = validate(g, braille_input, ["float", "emulator"], report_dir=tmp_path / "rep",
                   labels=np.array([0, 5]))
    assert rep["ok"]
    files = set(p.name for p in (tmp_path / "rep").iterdir())
    assert {"report.json", "report.md", "raster.png", "weight_error.png"} <= files
    doc = json.loads((tmp_path / "rep" / "report.json").read_text())
    fvq = doc["float_vs_quantized"]["float vs emulator"]
    assert [layer["node"] for layer in fvq["layers"]] == ["lif1.lif", "lif2"]
    em = doc["metrics"]["emulator"]
    # synaptic ops = input spikes x fan-out + hidden spikes x fan-out (hand count from the program)
    art = api.compile(g, target="loihi2")
    prog = art.payload["program"]
    fan = {d.src: 0 for d in prog.synapses}
    for d in prog.synapses:
        fan[d.src] = fan[d.src] + np.count_nonzero(d.weights, axis=0)
    hidden = api.run(art, braille_input, record_spikes=True).probes["lif1.lif.out"]
    expect = (braille_input.sum((0, 1)) * fan["input"]).sum() + (hidden.sum((0, 1)) * fan["lif1.lif"]).sum()
    assert em["synaptic_ops"] == pytest.approx(expect)
    assert em["estimate"]["is_estimate"] and "Davies" in em["estimate"]["source"]
    assert "accuracy" in doc and set(doc["accuracy"]) == {"float", "emulator"}
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "## Float reference vs quantized" in md and "| lif2 |" in md and "energy ESTIMATE" in md


def test_emulator_and_lava_agree_through_validate(braille_input):
    from lava_util import require_lava

    require_lava()
    g = read_nir(NIR_PAPER / "braille_noDelay_bias_zero.nir")
    rep = validate(g, braille_input[:, :1], ["emulator", "lava"])
    assert rep["ok"] and rep["exact"][0]["equal"]


def test_cnn_with_kept_convolutions_validates_against_lava(tmp_path):
    """The NIR paper's CNN (convolutions kept as Lava Conv): emulator and Lava agree exactly,
    and a one-bit fault in a conv-fed neuron is located by flat index."""
    from lava_util import require_lava

    require_lava()
    g = read_nir(NIR_PAPER / "cnn_sinabs.nir")
    x = (np.random.default_rng(0).random((12, 1, 2, 34, 34)) < 0.1).astype(float)
    rep = validate(g, x, ["float", "emulator", "lava"], report_dir=tmp_path / "rep")
    assert rep["ok"] and all(c["equal"] for c in rep["exact"])
    layers = rep["float_vs_quantized"]["float vs emulator"]["layers"]
    assert layers[0]["node"] == "1" and layers[0]["float_spikes"] > 0
    assert (tmp_path / "rep" / "raster.png").is_file()


def test_fault_in_conv_fed_group_is_located(faulty_target, monkeypatch):
    monkeypatch.setitem(FLIP, "group", "3")       # fed by the kept 3x3 convolution '2'
    monkeypatch.setitem(FLIP, "neuron", 777)
    monkeypatch.setitem(FLIP, "step", 6)
    g = read_nir(NIR_PAPER / "cnn_sinabs.nir")
    x = (np.random.default_rng(1).random((10, 1, 2, 34, 34)) < 0.2).astype(float)
    rep = validate(g, x, ["emulator", "faulty"])
    m = rep["exact"][0]["first_mismatch"]
    assert (m["step"], m["node"], m["neuron"], m["variable"]) == (6, "3", 777, "v")
    (conv_input,) = [i for i in m["inputs"] if i["synapses"] == "2"]
    assert conv_input["emulator"] == conv_input["faulty"]  # same input: the fault is in the state


def test_sigma_delta_network_validates(tmp_path):
    """An ONNX MLP converted to sigma-delta neurons: Lava and the emulator agree exactly; message
    counts (nonzero graded outputs) match the float graph closely; classes agree."""
    from conftest import DATA
    from lava_util import require_lava
    from neurocompile.frontends.onnx import from_onnx

    require_lava()
    g = from_onnx(DATA / "onnx" / "digits_mlp.onnx", np.load(DATA / "onnx" / "digits_calib.npy"),
                  method="sigma_delta")
    samples = np.load(DATA / "onnx" / "digits_calib.npy")[:6].reshape(6, 64)
    x = np.broadcast_to(samples[None], (8, 6, 64)).astype(float)
    rep = validate(g, x, ["float", "emulator", "lava"], report_dir=tmp_path / "rep")
    assert rep["ok"] and rep["exact"][0]["equal"]
    c = rep["float_vs_quantized"]["float vs emulator"]
    hidden = next(layer for layer in c["layers"] if layer["node"] == "1_Relu")
    assert hidden["float_spikes"] > 0 and hidden["rel_count_diff"] < 0.1
    assert c["class_agreement"] == 1.0
