"""lava-dl netx SDNN (sigma-delta) networks: import with the integers kept, emulator == netx on Lava.

netx builds an SDNN input layer as Lava's ``Delta`` (fed at its ``a_in``), every SDNN layer as
``SigmaDelta`` (ReLU, ``spike_exp = state_exp = 6``, graded 16-bit messages) and a
``sigma_output`` layer as ``Sigma``; the compiled program runs the Delta on the host and the rest
as ``LoihiSigmaDelta`` groups. Every output message must be equal (a Sigma output: its running
sum), and sigma/act/residue of the first and last group."""
import numpy as np
import pytest
from click.testing import CliRunner
from netx_compare import assert_sdnn_equals_netx
from netx_files import random_sdnn, random_sdnn_conv, random_walk_input, sdnn_neuron, write_net

import neurocompile as nc
from neurocompile.cli.main import cli
from neurocompile.errors import NeuroCompileError
from neurocompile.frontends.loader import load_model
from neurocompile.ir import nodes as N


def _compile(path, target="emulator"):
    return nc.compile(load_model(path), target=target)


# ------------------------------------------------------------------ against netx on Lava
@pytest.mark.parametrize("seed,kw", [
    (0, {}),                                           # Delta input, 3 sigma-delta layers with biases
    (1, {"delays": True, "sizes": (12, 20, 16)}),     # axonal / input delays, 2 layers
    (2, {"sigma_output": True}),                       # last layer netx's Sigma
    (3, {"input_neuron": False, "sizes": (16, 24, 8)}),  # no input encoder: 0/1 spikes
])
def test_random_sdnn_agrees_with_netx(tmp_path, seed, kw):
    rng = np.random.default_rng(seed)
    path = random_sdnn(tmp_path / "s.net", rng, **kw)
    art = _compile(path)
    prog = art.payload["program"]
    assert all(type(n).__name__ == "LoihiSigmaDelta" for n in prog.neurons)
    T = 40
    if kw.get("input_neuron", True):
        x = random_walk_input(rng, T, prog.n_inputs)
        assert art.payload["io"]["encoding"] == "delta" and prog.input_message_bits == 16
    else:
        x = (rng.random((T, prog.n_inputs)) < 0.3).astype(np.int64)
        assert art.payload["io"]["encoding"] == "spikes" and prog.input_message_bits == 0
    out, t_em, r = assert_sdnn_equals_netx(art, path, x)
    assert np.count_nonzero(out) > 0
    print(f"seed {seed} {kw}: {np.count_nonzero(out)} nonzero output values equal; emulator {t_em:.3f} s, "
          f"netx on Lava {float(r['seconds']):.3f} s")


def test_loihi2_artifact_runs_on_lava_like_the_emulator(tmp_path):
    """The same program through `neurocompile run --on lava` (our Lava program runner)."""
    from lava_util import require_lava

    require_lava()
    rng = np.random.default_rng(4)
    path = random_sdnn(tmp_path / "s.net", rng, sizes=(10, 12, 6))
    art = _compile(path, target="loihi2")
    x = random_walk_input(rng, 25, 10)[:, None, :].astype(float)
    a = nc.run(art, x).outputs["output"]
    b = nc.run(art, x, on="lava").outputs["output"]
    assert np.array_equal(a, b) and np.count_nonzero(a) > 0


# ------------------------------------------------------------------ import, float reference, CLI
def test_graph_and_recorded_integers(tmp_path):
    rng = np.random.default_rng(0)
    g = load_model(random_sdnn(tmp_path / "s.net", rng, sigma_output=True))
    assert isinstance(g.nodes["layer0"], N.Delta)
    assert [type(g.nodes[f"layer{i}"]).__name__ for i in (1, 2, 3)] == ["SigmaDelta"] * 3
    assert g.nodes["layer3"].act == "unit" and float(g.nodes["layer3"].vth) == 0.0
    fixed = g.metadata["loihi2_fixed"]
    assert fixed["kind"] == "sigma_delta" and fixed["encoder"] == "layer0"
    prog = nc.compile(g, target="emulator").payload["program"]
    for n in prog.neurons[:-1]:
        rec = fixed["groups"][n.name]
        assert (n.vth, n.spike_exp, n.state_exp, n.act_mode) == (rec["vth"], 6, 6, "relu")
        assert n.bias.tolist() == rec["bias"]
    assert (prog.neurons[-1].spike_exp, prog.neurons[-1].state_exp, prog.neurons[-1].act_mode) == (0, 0, "unit")
    assert any("spike_exp=6" in a for a in g.assumptions)
    # netx tests the presence of 'sigma_output', not its value
    p = write_net(tmp_path / "f.net", [INPUT, _dense(sdnn_neuron(2, sigma_output=False))])
    assert load_model(p).nodes["layer1"].act == "unit"


@pytest.mark.parametrize("seed", [0, 1])
def test_float_reference_close_to_chip(tmp_path, seed):
    """The float graph decodes to what the chip computes, up to its rounding (message and weight
    exponent floors) and the thresholds: decoded values (message sums) within 20 % of their peak."""
    rng = np.random.default_rng(seed)
    g = load_model(random_sdnn(tmp_path / "s.net", rng, sigma_output=bool(seed)))
    x = random_walk_input(rng, 40, 16)[:, None, :].astype(float)
    a = np.cumsum(nc.run(nc.compile(g, target="float"), x).outputs["output"], axis=0)
    b = np.cumsum(nc.run(nc.compile(g, target="emulator"), x).outputs["output"], axis=0)
    assert np.abs(a).max() > 0
    assert np.abs(a - b).max() <= 0.2 * np.abs(a).max()


def test_cli_inspect_compile_run(tmp_path):
    rng = np.random.default_rng(0)
    net = random_sdnn(tmp_path / "s.net", rng)
    np.save(tmp_path / "x.npy", random_walk_input(rng, 30, 16)[:, None, :].astype(float))
    runner = CliRunner()
    r = runner.invoke(cli, ["inspect", str(net)])
    assert r.exit_code == 0 and "SigmaDelta" in r.output and "Delta" in r.output, r.output
    r = runner.invoke(cli, ["compile", str(net), "--target", "loihi2", "-o", str(tmp_path / "art")])
    assert r.exit_code == 0 and "sigma-delta vth=" in r.output, r.output
    r = runner.invoke(cli, ["run", str(tmp_path / "art"), "-i", str(tmp_path / "x.npy"), "-o", str(tmp_path / "r.npz")])
    assert r.exit_code == 0, r.output
    with np.load(tmp_path / "r.npz") as z:
        assert np.count_nonzero(z["output"]) > 0


# ------------------------------------------------------------------ refused, naming the layer
def _dense(neuron, n_in=4, n_out=3, **extra):
    return {"type": "dense", "shape": np.array([n_out]), "weight": np.full((n_out, n_in), 4, np.float32),
            "neuron": neuron, **extra}


INPUT = {"type": "input", "shape": np.array([4]), "neuron": sdnn_neuron(1)}
REFUSED = [
    ("activation", [INPUT, _dense(sdnn_neuron(2, activation="sigmoid"))], "layer1", "activation 'sigmoid'"),
    ("message_bits", [INPUT, _dense(sdnn_neuron(2, messageBits=np.int64(32)))], "layer1", "messageBits=32"),
    ("vth", [INPUT, _dense(sdnn_neuron(4096))], "layer1", "vThMant=4096"),
    ("bias", [INPUT, _dense(sdnn_neuron(2), bias=np.full(3, 3000, np.float32))], "layer1", "bias 3000"),
    ("cum_error", [INPUT, _dense(sdnn_neuron(2, cum_error=True))], "layer1", "cum_error"),
    ("sigma_bias", [INPUT, _dense(sdnn_neuron(2, sigma_output=True), bias=np.ones(3, np.float32))], "layer1",
     "sigma_output layer with a bias"),
    ("sigma_not_last", [INPUT, _dense(sdnn_neuron(2, sigma_output=True)), _dense(sdnn_neuron(2), n_in=3)],
     "layer1", "must be the last layer"),
    ("mixed", [INPUT, _dense((4096, 0, 10))], "layer1", "'CUBA' in an SDNN network"),
    ("no_neuron", [INPUT, {"type": "dense", "shape": np.array([3]), "weight": np.ones((3, 4), np.float32)}],
     "layer1", "without a neuron"),
]


@pytest.mark.parametrize("case,layers,layer,words", REFUSED, ids=[c[0] for c in REFUSED])
def test_unsupported_sdnn_variants_are_one_line_errors_naming_the_layer(tmp_path, case, layers, layer, words):
    p = write_net(tmp_path / f"{case}.net", layers)
    with pytest.raises(NeuroCompileError) as e:
        load_model(p)
    msg = str(e.value)
    assert f"'{layer}'" in msg and words in msg and "\n" not in msg, msg


def test_random_sdnn_conv_agrees_with_netx(tmp_path):
    """SDNN convs (PilotNet's layout) stay Lava Convs with graded 16-bit input from the host's Delta
    encoder and from sigma-delta groups; per-channel biases; then flatten, dense, sigma_output."""
    rng = np.random.default_rng(7)
    path = random_sdnn_conv(tmp_path / "c.net", rng)
    g = load_model(path)
    assert g.nodes["layer1.syn"].op == "Conv2d" and g.nodes["layer1"].bias.shape == (4, 1, 1)
    art = nc.compile(g, target="emulator")
    prog = art.payload["program"]
    assert [type(s).__name__ for s in prog.synapses] == ["LoihiConv", "LoihiConv", "LoihiDense", "LoihiDense"]
    assert all(s.num_message_bits == 16 for s in prog.synapses)
    x = random_walk_input(rng, 30, prog.n_inputs)
    out, _, _ = assert_sdnn_equals_netx(art, path, x)
    assert np.count_nonzero(out) > 0
    f = nc.run(nc.compile(g, target="float"), x.reshape(30, 1, 2, 9, 8).astype(float)).outputs["output"]
    assert f.shape == (30, 1, 1)


def test_lava_dl_pilotnet_sdnn_equals_netx_and_its_ground_truth():
    """lava-dl's own trained PilotNet SDNN (``tests/lava/lib/dl/netx/gts/pilotnet_sdnn``, shipped in
    tests/data/netx): the emulator equals netx on Lava and lava-dl's recorded ground truth
    (``output.npy``) for its ``input.npy``."""
    from pathlib import Path

    d = Path(__file__).resolve().parents[2] / "data" / "netx" / "pilotnet_sdnn"
    art = _compile(d / "network.net")
    frame = np.load(d / "input.npy", allow_pickle=False)[..., 0].transpose(2, 1, 0)  # netx's (W, H, C) -> (C, H, W)
    x = np.repeat(frame.reshape(1, -1), 10, axis=0)
    out, _, _ = assert_sdnn_equals_netx(art, d / "network.net", x)
    gt = np.load(d / "output.npy", allow_pickle=False).reshape(-1)
    assert np.array_equal(out.reshape(-1)[:gt.size], gt)
