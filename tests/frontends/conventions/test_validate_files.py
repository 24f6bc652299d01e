"""validate takes what compile takes; torch-saved and LFS files named; batch dims; batch-first."""
from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from neurocompile.cli.main import cli

onnx = pytest.importorskip("onnx")
nir = pytest.importorskip("nir")


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def _onnx_mlp(path):
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w1, w2 = rng.normal(0, 0.6, (6, 10)).astype(np.float32), rng.normal(0, 0.6, (10, 3)).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"]), helper.make_node("Relu", ["h"], ["a"]),
             helper.make_node("MatMul", ["a", "w2"], ["y"])]
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
                              initializer=[numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))


def test_validate_onnx_on_float_and_emulator_like_compile(tmp_path):
    """compile -t loihi2 applies the target's frontend defaults (zero reset); validate does too, and
    the non-spiking Integrator readout raises no 'never fired' warning."""
    _onnx_mlp(tmp_path / "m.onnx")
    calib = np.random.default_rng(1).random((32, 6)).astype(np.float32)
    np.save(tmp_path / "calib.npy", calib)
    r = invoke("compile", tmp_path / "m.onnx", "-t", "loihi2", "--calibration", tmp_path / "calib.npy",
               "-o", tmp_path / "art")
    assert r.exit_code == 0, r.output
    r = invoke("encode", tmp_path / "art", "--samples", tmp_path / "calib.npy", "-o", tmp_path / "X.npy")
    assert r.exit_code == 0, r.output
    r = invoke("validate", tmp_path / "m.onnx", "--input", tmp_path / "X.npy", "--targets", "float,emulator",
               "--calibration", tmp_path / "calib.npy")
    assert "reset by subtraction is not expressible" not in r.output, r.output
    assert r.exit_code in (0, 3), r.output
    assert "never fired" not in r.output or "output" not in [ln.split(":")[0].split()[-1] for ln in
                                                             r.output.splitlines() if "never fired" in ln]


def test_readout_groups_get_no_firing_warnings():
    from types import SimpleNamespace

    from neurocompile.ir import nodes as N
    from neurocompile.validate import diagnostics as D

    class Lif:
        du, vth, size = 4095, 64, 3

    art = SimpleNamespace(report={}, payload={"program": SimpleNamespace(synapses=[], neuron=lambda n: Lif())},
                          graph=SimpleNamespace(nodes={"out": N.Integrator(r=1.0), "hid": N.IF(r=1.0)}))
    raw = {"v": np.zeros((4, 1, 3)), "u": np.zeros((4, 1, 3)), "spikes": np.zeros((4, 1, 3))}
    tr = SimpleNamespace(raw={"out": raw, "hid": raw})
    orig = D.neuron_groups
    D.neuron_groups = lambda a: ["hid", "out"]
    try:
        warnings = D.loihi2_diagnostics(art, tr)["warnings"]
    finally:
        D.neuron_groups = orig
    assert any(w.startswith("hid: no neuron fired") for w in warnings)
    assert not any(w.startswith("out:") and "fire" in w for w in warnings)


def _mlp_nir(path, batch_dim=False):
    rng = np.random.default_rng(3)
    shape = [1, 4] if batch_dim else [4]
    nodes = {"input": nir.Input(input_type={"input": np.array(shape)}),
             "fc": nir.Affine(weight=rng.normal(0, 1, (3, 4)), bias=np.zeros(3)),
             "lif": nir.LIF(tau=np.full(3, 1e-3), r=np.full(3, 10.0), v_leak=np.zeros(3), v_threshold=np.ones(3)),
             "output": nir.Output(output_type={"output": np.array([1, 3] if batch_dim else [3])})}
    nir.write(str(path), nir.NIRGraph(nodes=nodes, edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")],
                                      type_check=False))


def test_leading_batch_dim_of_one_is_dropped_and_recorded(tmp_path):
    from neurocompile.frontends.nir import read_nir
    from neurocompile.ir.interpreter import run

    _mlp_nir(tmp_path / "b.nir", batch_dim=True)
    _mlp_nir(tmp_path / "p.nir")
    g, plain = read_nir(tmp_path / "b.nir"), read_nir(tmp_path / "p.nir")
    assert g.nodes["input"].shape == (4,)
    assert any("leading 1 taken as a batch dimension" in a for a in g.assumptions)
    x = np.random.default_rng(0).random((20, 2, 4)) * 3
    np.testing.assert_array_equal(run(g, x).output, run(plain, x).output)


def test_conv_input_of_one_channel_keeps_its_shape(tmp_path):
    from neurocompile.frontends.nir import read_nir

    nodes = {"input": nir.Input(input_type={"input": np.array([1, 5, 5])}),
             "conv": nir.Conv2d(input_shape=(5, 5), weight=np.ones((2, 1, 3, 3)), stride=1, padding=0, dilation=1,
                                groups=1, bias=np.zeros(2)),
             "output": nir.Output(output_type={"output": np.array([2, 3, 3])})}
    nir.write(str(tmp_path / "c.nir"), nir.NIRGraph(nodes=nodes, edges=[("input", "conv"), ("conv", "output")],
                                                    type_check=False))
    g = read_nir(tmp_path / "c.nir")
    assert g.nodes["input"].shape == (1, 5, 5)
    assert not any("batch dimension" in a for a in g.assumptions)


def test_torch_saved_nirgraph_is_named(tmp_path):
    torch = pytest.importorskip("torch")
    _mlp_nir(tmp_path / "p.nir")
    torch.save(nir.read(str(tmp_path / "p.nir")), tmp_path / "saved.nir")
    r = invoke("inspect", tmp_path / "saved.nir")
    assert r.exit_code != 0
    assert "torch.save" in r.output and "nir.write" in r.output and "signature" not in r.output


def test_lfs_pointer_is_named(tmp_path):
    (tmp_path / "m.nir").write_text("version https://git-lfs.github.com/spec/v1\noid sha256:"
                                    + "0" * 64 + "\nsize 12345\n")
    r = invoke("inspect", tmp_path / "m.nir")
    assert r.exit_code != 0 and "Git LFS pointer" in r.output and "git lfs pull" in r.output


def test_convention_option_on_inspect_and_compile(tmp_path):
    _mlp_nir(tmp_path / "p.nir")
    r = invoke("inspect", tmp_path / "p.nir", "--convention", "snntorch")
    assert r.exit_code == 0, r.output
    assert "convention 'snntorch'" in r.output
    r = invoke("compile", tmp_path / "p.nir", "-t", "float", "--convention", "sinabs", "-o", tmp_path / "a")
    assert r.exit_code == 0, r.output
    assert "convention 'sinabs'" in r.output


def test_run_layout_and_batch_first_detection(tmp_path):
    _mlp_nir(tmp_path / "p.nir")
    assert invoke("compile", tmp_path / "p.nir", "-t", "float", "-o", tmp_path / "a").exit_code == 0
    x_tb = (np.random.default_rng(0).random((30, 5, 4)) * 3)
    np.save(tmp_path / "tb.npy", x_tb)
    np.save(tmp_path / "bt.npy", np.swapaxes(x_tb, 0, 1))
    np.save(tmp_path / "y.npy", np.zeros(5, dtype=np.int64))
    r1 = invoke("run", tmp_path / "a", "--input", tmp_path / "tb.npy", "-o", tmp_path / "o1.npz")
    r2 = invoke("run", tmp_path / "a", "--input", tmp_path / "bt.npy", "--layout", "bt", "-o", tmp_path / "o2.npz")
    r3 = invoke("run", tmp_path / "a", "--input", tmp_path / "bt.npy", "--labels", tmp_path / "y.npy",
                "-o", tmp_path / "o3.npz")
    for r in (r1, r2, r3):
        assert r.exit_code == 0, r.output
        assert "T = 30 steps, batch = 5" in r.output
    assert "batch-first detected" in r3.output
    o1, o2, o3 = (np.load(tmp_path / f"o{i}.npz") for i in (1, 2, 3))
    for k in o1.files:
        np.testing.assert_array_equal(o1[k], o2[k])
        np.testing.assert_array_equal(o1[k], o3[k])


def test_validate_takes_the_convention(tmp_path):
    _mlp_nir(tmp_path / "p.nir")
    np.save(tmp_path / "X.npy", (np.random.default_rng(0).random((20, 3, 4)) > 0.5).astype(np.float64))
    r = invoke("validate", tmp_path / "p.nir", "--input", tmp_path / "X.npy", "--targets",
               "float,emulator,spinnaker", "--convention", "norse")
    assert r.exit_code in (0, 3), r.output
    # snnTorch's subtract reset runs on float only: the chips say so by name
    r = invoke("validate", tmp_path / "p.nir", "--input", tmp_path / "X.npy", "--targets", "float,emulator",
               "--convention", "snntorch")
    assert r.exit_code == 2 and "reset by subtraction is not expressible" in r.output and "'lif'" in r.output
