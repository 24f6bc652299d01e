"""`neurocompile export --format netx`: a compiled Loihi 2 program as a netx file that lava-dl's
netx.hdf5.Network runs on Lava (fixed_pt) with the emulator's results, spike for spike and u/v."""
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner
from netx_compare import assert_emulator_equals_netx, assert_sdnn_equals_netx
from netx_files import random_dense, random_sdnn, random_walk_input

import neurocompile as nc
from netx_util import run_netx
from neurocompile.cli.main import cli
from neurocompile.errors import NeuroCompileError
from neurocompile.frontends.loader import load_model
from neurocompile.ir import nodes as N
from neurocompile.ir.graph import sequential
from neurocompile.targets.loihi2 import emulator
from neurocompile.targets.loihi2.netx_export import netx_prepare, write_netx

DATA = Path(__file__).resolve().parents[2] / "data" / "netx"


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def _export(art_dir: Path, out: Path) -> Path:
    r = invoke("export", art_dir, "--format", "netx", "-o", out)
    assert r.exit_code == 0, r.output
    return out


def _check_weights(prog, path):
    """Through netx's own weight preparation the stored weights are the program's integers."""
    with h5py.File(path, "r") as f:
        for k, s in enumerate(prog.synapses):
            stored = f["layer"][str(k + 1)]["weight"][()]
            w, nwb, exp = netx_prepare(stored.astype(int))
            assert exp == s.weight_exp and np.array_equal(w, s.effective_weights()), s.name


def _compare_with_netx(prog, net, T, p, seed=0):
    return assert_emulator_equals_netx(prog, net, T, p, seed)[0]


def _compile(model, tmp_path):
    art = nc.compile(model if not isinstance(model, Path) else load_model(model), target="loihi2")
    art.save(tmp_path / "art")
    return art.payload["program"], tmp_path / "art"


@pytest.mark.parametrize("name,T,p", [("mnist_dense.net", 60, 0.15), ("oxford_dense.net", 60, 0.1)])
def test_shipped_dense_round_trip_runs_in_netx(tmp_path, name, T, p):
    prog, art = _compile(DATA / name, tmp_path)
    net = _export(art, tmp_path / "out.net")
    _check_weights(prog, net)
    assert _compare_with_netx(prog, net, T, p).sum() > 0


def test_random_dense_with_delays_and_bias_round_trip(tmp_path):
    src = random_dense(tmp_path / "d.net", np.random.default_rng(3), sizes=(24, 32, 12), delays=True, bias=True)
    prog, art = _compile(src, tmp_path)
    assert any(s.delays is not None for s in prog.synapses)
    _compare_with_netx(prog, _export(art, tmp_path / "out.net"), 50, 0.3)


def _mlp(bias=0.0):
    rng = np.random.default_rng(0)
    return sequential([
        ("input", N.Input(shape=(12,))),
        ("fc1", N.Affine(weight=rng.normal(0, 50, (16, 12)), bias=np.full(16, bias))),
        ("lif1", N.CubaLIF(tau_syn=0.1, tau_mem=0.2, v_threshold=1.0)),
        ("fc2", N.Affine(weight=rng.normal(0, 50, (6, 16)), bias=np.zeros(6))),
        ("lif2", N.CubaLIF(tau_syn=0.1, tau_mem=0.2, v_threshold=1.0)),
        ("output", N.Output())], dt=1e-3)


def test_graph_mlp_without_bias_runs_in_netx(tmp_path):
    prog, art = _compile(_mlp(), tmp_path)
    assert [n.name for n in prog.neurons] == ["lif1", "lif2"]
    net = _export(art, tmp_path / "mlp.net")
    _check_weights(prog, net)
    assert _compare_with_netx(prog, net, 80, 0.3).sum() > 0


def test_bias_clock_is_a_one_line_error_naming_the_group(tmp_path):
    prog, art = _compile(_mlp(bias=0.1), tmp_path)
    assert any(n.name.startswith("_clock") for n in prog.neurons)
    with pytest.raises(NeuroCompileError) as e:
        write_netx(prog, tmp_path / "x.net", source=str(art))
    msg = str(e.value)
    assert "'_clock'" in msg and "bias clock" in msg and str(art) in msg and "\n" not in msg
    assert not (tmp_path / "x.net").exists()
    r = CliRunner().invoke(cli, ["export", str(art), "-o", str(tmp_path / "x.net")])
    assert r.exit_code == 2 and "_clock" in r.output and not (tmp_path / "x.net").exists()


def test_cli_refuses_to_overwrite_a_foreign_file(tmp_path):
    _, art = _compile(DATA / "oxford_dense.net", tmp_path)
    foreign = tmp_path / "mine.net"
    foreign.write_bytes(b"not ours")
    r = CliRunner().invoke(cli, ["export", str(art), "--format", "netx", "-o", str(foreign)])
    assert r.exit_code == 2 and "refusing to replace" in r.output
    assert foreign.read_bytes() == b"not ours"


def test_cli_replaces_its_own_export_but_not_a_lava_dl_file(tmp_path):
    """An exported file carries the root attribute ``neurocompile_format``: exporting again to the
    same path replaces it; lava-dl's own network (no marker) is never replaced."""
    _, art = _compile(DATA / "oxford_dense.net", tmp_path)
    out = _export(art, tmp_path / "x.net")
    with h5py.File(out, "r") as f:
        assert f.attrs["neurocompile_format"] == "neurocompile.netx"
    first = out.read_bytes()
    _export(art, out)
    assert out.read_bytes() == first  # deterministic, and replaced without complaint
    theirs = tmp_path / "theirs.net"
    theirs.write_bytes((DATA / "oxford_dense.net").read_bytes())
    r = CliRunner().invoke(cli, ["export", str(art), "--format", "netx", "-o", str(theirs)])
    assert r.exit_code == 2 and "refusing to replace" in r.output
    assert theirs.read_bytes() == (DATA / "oxford_dense.net").read_bytes()


def test_max_weight_exp_zero_makes_small_weights_exportable(tmp_path):
    """By default vth is as large as the 24-bit state allows, which puts weights near the threshold
    at weight_exp > 0, a form netx cannot store; ``max_weight_exp=0`` caps vth instead, and the exported file
    runs in netx with the emulator's results."""
    rng = np.random.default_rng(1)
    g = sequential([
        ("input", N.Input(shape=(12,))),
        ("fc1", N.Linear(weight=rng.normal(0, 2.0, (16, 12)))),
        ("lif1", N.LIF(tau=0.01, v_threshold=1.0)),
        ("fc2", N.Linear(weight=rng.normal(0, 2.0, (6, 16)))),
        ("lif2", N.LIF(tau=0.01, v_threshold=1.0)),
        ("output", N.Output())], dt=1e-3)
    default = nc.compile(g, target="loihi2")
    assert max(s.weight_exp for s in default.payload["program"].synapses) > 0
    default.save(tmp_path / "default")
    r = CliRunner().invoke(cli, ["export", str(tmp_path / "default"), "--format", "netx",
                                 "-o", str(tmp_path / "d.net")])
    assert r.exit_code == 2 and "--max-weight-exp 0" in r.output
    capped = nc.compile(g, target="loihi2", max_weight_exp=0)
    prog = capped.payload["program"]
    assert all(s.weight_exp == 0 for s in prog.synapses)
    capped.save(tmp_path / "capped")
    _compare_with_netx(prog, _export(tmp_path / "capped", tmp_path / "c.net"), 60, 0.4)


# ------------------------------------------------------------------ conv layers
def _conv_net():
    """Input (2, 8, 8) -> Conv2d 3x3 pad 1 -> CubaLIF -> Conv2d 3x3 stride 2 -> CubaLIF -> Flatten -> Linear
    -> CubaLIF, no biases (weights seeded so that every layer fires)."""
    rng = np.random.default_rng(0)
    lif = dict(tau_syn=0.1, tau_mem=0.2, v_threshold=1.0)
    return sequential([
        ("input", N.Input(shape=(2, 8, 8))),
        ("conv1", N.Conv2d(weight=rng.normal(30, 40, (4, 2, 3, 3)), padding=1)),
        ("lif1", N.CubaLIF(**lif)),
        ("conv2", N.Conv2d(weight=rng.normal(25, 40, (6, 4, 3, 3)), stride=2)),
        ("lif2", N.CubaLIF(**lif)),
        ("flat", N.Flatten()),
        ("fc", N.Linear(weight=rng.normal(30, 600, (5, 54)))),
        ("lif3", N.CubaLIF(**lif)),
        ("output", N.Output())], dt=1e-3)


def _all_groups_equal(prog, net, T, p, seed=0):
    """Every group's spikes and u/v (the helper checks the first and last group's u/v)."""
    x = (np.random.default_rng(seed).random((T, prog.n_inputs)) < p).astype(np.int64)
    em = emulator.run(prog, x)
    r = run_netx(net, x, probes=range(len(prog.neurons)))
    for k, n in enumerate(prog.neurons):
        for v in ("u", "v"):
            assert np.array_equal(em[n.name][v][:, 0], r[f"{v}{k}"]), f"{v} of {n.name}"
    return {n.name: int(em[n.name]["spikes"].sum()) for n in prog.neurons}


def test_compiled_conv_net_runs_in_netx(tmp_path):
    prog, art = _compile(_conv_net(), tmp_path)
    assert [type(s).__name__ for s in prog.synapses] == ["LoihiConv", "LoihiConv", "LoihiDense"]
    net = _export(art, tmp_path / "conv.net")
    with h5py.File(net, "r") as f:
        kinds = [f["layer"][str(k)]["type"][0].decode() for k in range(len(f["layer"]))]
        assert kinds == ["input", "conv", "conv", "flatten", "dense"]
        assert list(f["layer/0/shape"][()]) == [2, 8, 8] and list(f["layer/2/shape"][()]) == [6, 3, 3]
        for k, s in ((1, prog.synapses[0]), (2, prog.synapses[1])):  # the program's kernel, as is
            assert np.array_equal(f["layer"][str(k)]["weight"][()][..., 0], s.weights)
    out = _compare_with_netx(prog, net, 80, 0.3)
    assert out.sum() > 0
    counts = _all_groups_equal(prog, net, 80, 0.3, seed=1)
    assert min(counts.values()) > 0, counts


def _hand_conv_program(bias=True, w_scale=1):
    """A hand-built program: asymmetric stride/padding, dilation, groups, per-channel bias."""
    from neurocompile.targets.loihi2.program import LoihiConv, LoihiDense, LoihiLIF, LoihiProgram

    rng = np.random.default_rng(5)
    c1 = LoihiConv(name="c1", src="input", dst="g1", weights=rng.integers(-60, 200, (4, 1, 3, 2)) * w_scale,
                   in_shape=(2, 9, 7), stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2)
    C, H, W = c1.out_shape()
    b1 = np.repeat(np.array([0, 3, -2, 1]) * 64 if bias else np.zeros(4, int), H * W)
    g1 = LoihiLIF(name="g1", size=C * H * W, du=300, dv=200, vth=900, bias_mant=b1, bias_exp=0)
    c2 = LoihiConv(name="c2", src="g1", dst="g2", weights=rng.integers(-100, 255, (3, 4, 2, 2)), in_shape=(C, H, W))
    C2, H2, W2 = c2.out_shape()
    g2 = LoihiLIF(name="g2", size=C2 * H2 * W2, du=4095, dv=100, vth=600, bias_mant=np.zeros(C2 * H2 * W2, int))
    d = LoihiDense(name="d", src="g2", dst="g3", weights=rng.integers(-128, 127, (4, C2 * H2 * W2)) * 2)
    g3 = LoihiLIF(name="g3", size=4, du=500, dv=500, vth=300, bias_mant=np.zeros(4, int))
    return LoihiProgram(n_inputs=2 * 9 * 7, neurons=[g1, g2, g3], synapses=[c1, c2, d])


def test_hand_built_conv_program_with_groups_dilation_and_bias_runs_in_netx(tmp_path):
    prog = _hand_conv_program()
    prog.validate()
    net = write_netx(prog, tmp_path / "hand.net")
    with h5py.File(net, "r") as f:
        assert list(f["layer/1/stride"][()]) == [2, 1] and f["layer/1/groups"][()] == 2
        assert list(f["layer/1/bias"][()]) == [0, 3, -2, 1]
    counts = _all_groups_equal(prog, net, 60, 0.4)
    assert min(counts.values()) > 0, counts
    _compare_with_netx(prog, net, 60, 0.4, seed=2)


def test_conv_programs_netx_cannot_express_are_one_line_errors_naming_the_group(tmp_path):
    prog = _hand_conv_program(w_scale=2)  # kernel up to 398: beyond the 8-bit synapse range
    with pytest.raises(NeuroCompileError) as e:
        write_netx(prog, tmp_path / "x.net", source="prog")
    msg = str(e.value)
    assert "'g1'" in msg and "8-bit" in msg and "\n" not in msg and not (tmp_path / "x.net").exists()
    prog = _hand_conv_program()
    prog.neurons[0].bias_mant = prog.neurons[0].bias_mant.copy()
    prog.neurons[0].bias_mant[1] += 64  # no longer one bias per channel
    with pytest.raises(NeuroCompileError, match="group 'g1'.*per channel"):
        write_netx(prog, tmp_path / "x.net")
    prog = _hand_conv_program()
    prog.synapses[0].weight_exp = 1
    with pytest.raises(NeuroCompileError, match="group 'g1'.*weight_exp=1"):
        write_netx(prog, tmp_path / "x.net")


def test_conv_after_a_dense_layer_is_an_error_naming_the_group(tmp_path):
    from neurocompile.targets.loihi2.program import LoihiConv, LoihiDense, LoihiLIF, LoihiProgram

    z = np.zeros
    prog = LoihiProgram(n_inputs=4, neurons=[
        LoihiLIF(name="a", size=9, du=1, dv=1, vth=10, bias_mant=z(9, int)),
        LoihiLIF(name="b", size=4, du=1, dv=1, vth=10, bias_mant=z(4, int))], synapses=[
        LoihiDense(name="d", src="input", dst="a", weights=np.ones((9, 4), int)),
        LoihiConv(name="c", src="a", dst="b", weights=np.ones((1, 1, 2, 2), int), in_shape=(1, 3, 3))])
    with pytest.raises(NeuroCompileError, match="group 'b' \\(conv 'c'\\).*follows a dense layer"):
        write_netx(prog, tmp_path / "x.net")


# ------------------------------------------------------------------ sigma-delta (SDNN) programs
def _sd_export(src, tmp_path, name="sd.net"):
    """Compile a netx SDNN file for loihi2 and export it (with the artifact's host input encoding)."""
    art = nc.compile(load_model(src), target="loihi2")
    return art, write_netx(art.payload["program"], tmp_path / name, io=art.payload["io"])


def _assert_same_integers(a, b):
    """Two compiled SDNN artifacts hold the same program (every integer) and host encoding."""
    pa, pb = a.payload["program"], b.payload["program"]
    assert a.payload["io"] == b.payload["io"]
    assert (pa.n_inputs, pa.input_message_bits) == (pb.n_inputs, pb.input_message_bits)
    assert [n.name for n in pa.neurons] == [n.name for n in pb.neurons]
    for x, y in zip(pa.neurons, pb.neurons):
        assert (x.size, x.vth, x.act_mode, x.spike_exp, x.state_exp, x.cum_error) == \
            (y.size, y.vth, y.act_mode, y.spike_exp, y.state_exp, y.cum_error), x.name
        zb = np.zeros(x.size, np.int64)
        assert np.array_equal(zb if x.bias is None else x.bias, zb if y.bias is None else y.bias), x.name
    assert [(s.name, s.src, s.dst, type(s)) for s in pa.synapses] == [(s.name, s.src, s.dst, type(s))
                                                                       for s in pb.synapses]
    for s, t in zip(pa.synapses, pb.synapses):
        assert s.num_message_bits == t.num_message_bits, s.name
        if type(s).__name__ == "LoihiConv":
            assert np.array_equal(s.weights, t.weights) and (s.in_shape, s.stride, s.padding, s.dilation, s.groups) \
                == (t.in_shape, t.stride, t.padding, t.dilation, t.groups), s.name
            continue
        assert s.weight_exp == t.weight_exp and np.array_equal(s.effective_weights(), t.effective_weights()), s.name
        live = s.effective_weights() != 0  # a delay on a zero weight carries nothing
        ds = np.zeros(live.shape, int) if s.delays is None else np.broadcast_to(s.delays, live.shape)
        dt = np.zeros(live.shape, int) if t.delays is None else np.broadcast_to(t.delays, live.shape)
        assert np.array_equal(ds[live], dt[live]), s.name


def test_lava_dl_pilotnet_sdnn_exported_runs_in_netx_and_round_trips(tmp_path):
    """lava-dl's PilotNet SDNN (4 convs, flatten, 3 dense, sigma_output) compiled for loihi2 and
    exported: netx on Lava equals the emulator on every output value (and lava-dl's ground truth);
    re-imported, the file gives the same integers."""
    d = DATA / "pilotnet_sdnn"
    art, net = _sd_export(d / "network.net", tmp_path)
    with h5py.File(net, "r") as f, h5py.File(d / "network.net", "r") as g:
        kinds = [f["layer"][str(k)]["type"][0].decode() for k in range(len(f["layer"]))]
        assert kinds == [g["layer"][str(k)]["type"][0].decode() for k in range(len(g["layer"]))]
        assert "sigma_output" in f["layer"][str(len(kinds) - 1)]["neuron"]
        assert int(f["layer/0/neuron/vThMant"][()]) == int(g["layer/0/neuron/vThMant"][()])
    frame = np.load(d / "input.npy", allow_pickle=False)[..., 0].transpose(2, 1, 0)
    gt = np.load(d / "output.npy", allow_pickle=False).reshape(-1)  # 9 steps
    out, _, _ = assert_sdnn_equals_netx(art, net, np.repeat(frame.reshape(1, -1), gt.size, axis=0))
    assert np.array_equal(out.reshape(-1), gt) and np.count_nonzero(out) > 0
    _assert_same_integers(art, nc.compile(load_model(net), target="loihi2"))


@pytest.mark.parametrize("seed,kw", [
    (0, {}),                                                 # Delta input, 3 layers with biases
    (1, {"delays": True, "sigma_output": True}),             # delays, last layer netx's Sigma
    (3, {"input_neuron": False, "sizes": (16, 24, 8)}),      # 0/1 spike input
])
def test_random_sdnn_exported_runs_in_netx_and_round_trips(tmp_path, seed, kw):
    rng = np.random.default_rng(seed)
    art, net = _sd_export(random_sdnn(tmp_path / "s.net", rng, **kw), tmp_path)
    prog = art.payload["program"]
    with h5py.File(net, "r") as f:
        assert ("neuron" in f["layer/0"]) == kw.get("input_neuron", True)
    if kw.get("input_neuron", True):
        x = random_walk_input(rng, 30, prog.n_inputs)
    else:
        x = (rng.random((30, prog.n_inputs)) < 0.3).astype(np.int64)
    out, _, _ = assert_sdnn_equals_netx(art, net, x)
    assert np.count_nonzero(out) > 0
    _assert_same_integers(art, nc.compile(load_model(net), target="loihi2"))


def _sd_program(tmp_path):
    art = nc.compile(load_model(random_sdnn(tmp_path / "s.net", np.random.default_rng(0))), target="loihi2")
    return art.payload["program"], art.payload["io"]


def _refused(prog, io, tmp_path, *words):
    with pytest.raises(NeuroCompileError) as e:
        write_netx(prog, tmp_path / "x.net", source="art", io=io)
    msg = str(e.value)
    assert all(w in msg for w in words) and "\n" not in msg, msg
    assert not (tmp_path / "x.net").exists()


def test_sigma_delta_programs_netx_cannot_express_are_one_line_errors(tmp_path):
    from dataclasses import replace

    # our own sigma-delta quantizer chooses spike_exp/state_exp (not netx's fixed 6/6)
    g = sequential([("input", N.Input(shape=(6,))), ("enc", N.Delta(vth=0.05)),
                    ("fc", N.Linear(weight=np.random.default_rng(0).normal(0, 1, (5, 6)))),
                    ("sd", N.SigmaDelta(vth=0.02, act="relu")), ("output", N.Output())], dt=1e-3)
    art = nc.compile(g, target="loihi2")
    _refused(art.payload["program"], art.payload["io"], tmp_path, "group 'sd'", "spike_exp", "state_exp = 6")
    prog, io = _sd_program(tmp_path)
    _refused(prog, None, tmp_path, "input_message_bits=16", "encoding")
    _refused(prog, {**io, "scale": 128.0}, tmp_path, "Delta input encoding", "scale")
    _refused(prog, {**io, "encoding": "current"}, tmp_path, "'current'")
    p = replace(prog, neurons=[replace(prog.neurons[0], cum_error=True)] + prog.neurons[1:])
    _refused(p, io, tmp_path, f"group '{prog.neurons[0].name}'", "cum_error")
    p = replace(prog, neurons=[replace(prog.neurons[0], act_mode="unit", spike_exp=0, state_exp=0, vth=0,
                                       bias=None)] + prog.neurons[1:])
    _refused(p, io, tmp_path, f"group '{prog.neurons[0].name}'", "last layer")
    p = replace(prog, synapses=[prog.synapses[0], replace(prog.synapses[1], num_message_bits=24)]
                + prog.synapses[2:])
    _refused(p, io, tmp_path, f"group '{prog.neurons[0].name}'", "24-bit", "16-bit")


def test_cli_exports_the_lava_dl_pilotnet_sdnn_with_its_input_encoding(tmp_path):
    """Through the command line (the artifact's host input encoding travels with the program):
    the exported PilotNet SDNN re-imports with the same integers."""
    src = DATA / "pilotnet_sdnn" / "network.net"
    r = invoke("compile", src, "-t", "loihi2", "-o", tmp_path / "art")
    assert r.exit_code == 0, r.output
    out = _export(tmp_path / "art", tmp_path / "p.net")
    a = nc.compile(load_model(src), target="loihi2").payload["program"]
    b = nc.compile(load_model(out), target="loihi2").payload["program"]
    assert [(n.name, n.vth, n.spike_exp, n.state_exp) for n in a.neurons] == \
        [(n.name, n.vth, n.spike_exp, n.state_exp) for n in b.neurons]
    for s, t in zip(a.synapses, b.synapses):
        assert np.array_equal(np.asarray(s.weights), np.asarray(t.weights)), s.name
