"""The command line: compile/run/inspect/targets, errors and exit codes."""
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import NIR_PAPER, paper_lif_input
from neurocompile.cli.main import cli


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def lif_artifact(tmp_path):
    art = tmp_path / "lif"
    r = invoke("compile", NIR_PAPER / "lif_norse.nir", "-o", art)
    assert r.exit_code == 0, r.output
    return art


def test_compile_run_reproduces_paper_spikes(tmp_path, lif_artifact):
    np.save(tmp_path / "x.npy", paper_lif_input())
    r = invoke("run", lif_artifact, "--input", tmp_path / "x.npy", "-o", tmp_path / "out.npz", "--probe", "1.v")
    assert r.exit_code == 0, r.output
    with np.load(tmp_path / "out.npz", allow_pickle=False) as d:
        assert np.flatnonzero(d["output"][:, 0, 0]).tolist() == [460, 510, 710, 760]
        assert d["probe:1.v"].shape == (1000, 1, 1)


def test_compile_states_assumptions(tmp_path):
    r = invoke("compile", NIR_PAPER / "braille_noDelay_bias_zero.nir", "-o", tmp_path / "b")
    assert r.exit_code == 0
    assert "assumed: NIR has no time step" in r.output
    r = invoke("inspect", tmp_path / "b")
    assert "lif1.w_rec->lif1.lif (recurrent)" in r.output and "assumed:" in r.output


def test_targets_lists_float():
    r = invoke("targets")
    assert r.exit_code == 0 and any(line.startswith("float ") for line in r.output.splitlines())


@pytest.mark.parametrize("make_bad", ["missing", "corrupt"])
def test_bad_model_file_exit_2(tmp_path, make_bad):
    path = tmp_path / "m.nir"
    if make_bad == "corrupt":
        path.write_bytes(b"\x89HDF garbage")
    r = invoke("compile", path, "-o", tmp_path / "out")
    assert r.exit_code == 2
    assert "m.nir" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "out").exists()


def test_wrong_input_shape_names_file_and_node(tmp_path, lif_artifact):
    np.save(tmp_path / "bad.npy", np.zeros((10, 2, 3)))
    r = invoke("run", lif_artifact, "--input", tmp_path / "bad.npy", "-o", tmp_path / "o.npz")
    assert r.exit_code == 2
    assert "bad.npy" in r.output and "node 'input'" in r.output
    assert not (tmp_path / "o.npz").exists()


def test_pickled_input_refused(tmp_path, lif_artifact):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    r = invoke("run", lif_artifact, "--input", tmp_path / "obj.npy")
    assert r.exit_code == 2 and "pickle" in r.output


def test_console_script_debug_traceback(tmp_path):
    exe = [sys.executable, "-m", "neurocompile"]
    r = subprocess.run(exe + ["inspect", str(tmp_path / "none.nir")], capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "none.nir" in r.stderr
    r = subprocess.run(exe + ["--debug", "inspect", str(tmp_path / "none.nir")], capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" in r.stderr


def test_help_has_examples():
    for cmd in ["compile", "run", "inspect", "targets"]:
        r = invoke(cmd, "--help")
        assert r.exit_code == 0 and "Example" in r.output, cmd


def test_unknown_target(tmp_path):
    r = invoke("compile", NIR_PAPER / "lif_norse.nir", "-t", "nochip", "-o", tmp_path / "x")
    assert r.exit_code == 2 and "unknown target 'nochip'" in r.output


def test_snntorch_model_through_the_cli(tmp_path):
    """`compile file.py:factory --weights W --input-shape S`: the run equals snnTorch's forward."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("snntorch")

    (tmp_path / "mynet.py").write_text(
        "import torch.nn as nn\nimport snntorch as snn\n"
        "def make():\n"
        "    return nn.Sequential(nn.Linear(5, 6), snn.Leaky(beta=0.8, init_hidden=True),\n"
        "                         nn.Linear(6, 3), snn.Leaky(beta=0.7, init_hidden=True, output=False))\n")
    torch.manual_seed(0)
    import importlib.util

    spec = importlib.util.spec_from_file_location("mynet", tmp_path / "mynet.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    net = mod.make()
    torch.save(net.state_dict(), tmp_path / "w.pt")
    r = invoke("compile", f"{tmp_path / 'mynet.py'}:make", "--weights", tmp_path / "w.pt", "--input-shape", "5",
               "-t", "float", "-o", tmp_path / "art")
    assert r.exit_code == 0, r.output
    x = (np.random.default_rng(0).random((40, 2, 5)) < 0.5).astype(np.float32) * 1.5
    np.save(tmp_path / "x.npy", x)
    r = invoke("run", tmp_path / "art", "--input", tmp_path / "x.npy", "-o", tmp_path / "o.npz")
    assert r.exit_code == 0, r.output
    from snntorch import utils as snn_utils

    snn_utils.reset(net)
    with torch.no_grad():
        want = np.stack([net(torch.from_numpy(x[t])).numpy() for t in range(40)])
    with np.load(tmp_path / "o.npz", allow_pickle=False) as d:
        np.testing.assert_array_equal(d["output"], want)
    assert want.sum() > 0
