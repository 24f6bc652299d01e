"""lava-dl netx (.net) import: shipped networks, random files, errors."""
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner
from netx_files import random_conv, random_dense, write_net

import neurocompile as nc
from neurocompile.cli.main import cli
from neurocompile.errors import NeuroCompileError
from neurocompile.frontends.loader import load_model
from neurocompile.frontends.netx import optimize_weight_bits

DATA = Path(__file__).resolve().parents[2] / "data" / "netx"
SHIPPED = ["mnist_dense.net", "oxford_dense.net", "tiny_conv.net"]


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_networks_import_and_compile(name):
    g = load_model(DATA / name)
    assert g.metadata["loihi2_fixed"]["groups"]
    art = nc.compile(g, target="emulator")
    prog = art.payload["program"]
    fixed = g.metadata["loihi2_fixed"]["groups"]
    for n in prog.neurons:
        assert (n.du, n.dv, n.vth) == (fixed[n.name]["du"], fixed[n.name]["dv"], fixed[n.name]["vth"])


def test_inspect_cli_and_lfs_pointer(tmp_path):
    r = CliRunner().invoke(cli, ["inspect", str(DATA / "mnist_dense.net")])
    assert r.exit_code == 0, r.output
    assert "CubaLIF" in r.output
    ptr = tmp_path / "network.net"
    ptr.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:9b0b\nsize 2701856\n")
    r = CliRunner().invoke(cli, ["inspect", str(ptr)])
    assert r.exit_code != 0
    assert "Git LFS pointer" in r.output and "git lfs pull" in r.output and "network.net" in r.output
    for suffix in (".nir", ".onnx"):
        p = tmp_path / f"m{suffix}"
        p.write_bytes(ptr.read_bytes())
        with pytest.raises(NeuroCompileError, match="Git LFS pointer"):
            load_model(p)


def test_weight_preparation_matches_netx_rule():
    w, nwb, exp = optimize_weight_bits(np.array([[2, -4], [6, 8]]))
    assert (nwb, exp) == (4, -4) and w.tolist() == [[32, -64], [96, 128]]  # as lava-dl 0.6.0 gives
    w, nwb, exp = optimize_weight_bits(np.array([[1, 3]]))
    assert (nwb, exp) == (2, -6) and w.tolist() == [[64, 192]]


def test_float_reference_close_to_chip(tmp_path):
    rng = np.random.default_rng(3)
    g = load_model(random_dense(tmp_path / "d.net", rng, sizes=(16, 12), bias=True))
    x = (rng.random((40, 1, 16)) < 0.3).astype(float)
    ref = nc.compile(g, target="float")
    emu = nc.compile(g, target="emulator")
    a = nc.run(ref, x).outputs["output"]
    b = nc.run(emu, x).outputs["output"]
    assert abs(a.sum() - b.sum()) <= 0.2 * max(1.0, a.sum())


def test_delays_and_conv_graph(tmp_path):
    rng = np.random.default_rng(1)
    g = load_model(random_dense(tmp_path / "d.net", rng, delays=True))
    assert any(n.op == "Delay" for n in g.nodes.values())
    g = load_model(random_conv(tmp_path / "c.net", rng))
    assert g.nodes["layer1.syn"].op == "Conv2d"


def test_unsupported_layers_named(tmp_path):
    p = write_net(tmp_path / "s.net", [{"type": "dense", "shape": np.array([3]),
                                        "weight": np.ones((3, 4), np.float32), "neuron": (0, 0, 1, 1, "RF")}])
    with pytest.raises(NeuroCompileError, match="layer0.*RF|RF.*layer0"):
        load_model(p)
    p = write_net(tmp_path / "p.net", [{"type": "input", "shape": np.array([1, 4, 4])}, {"type": "pool"}])
    with pytest.raises(NeuroCompileError, match="pool"):
        load_model(p)


def test_external_link_refused(tmp_path):
    p = random_dense(tmp_path / "d.net", np.random.default_rng(0), sizes=(4, 3))
    with h5py.File(p, "a") as f:
        f["layer/0/extra"] = h5py.ExternalLink("/etc/passwd", "/x")
    with pytest.raises(NeuroCompileError, match="external link"):
        load_model(p)
