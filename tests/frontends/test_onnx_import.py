"""ONNX frontend: parsing, op-by-op conversion checks, digits accuracy, errors, CLI, and the
sigma-delta conversion (with a conformance run against Lava's sdn models when Lava is installed).

Exact checks use the closed form of the converted IF neuron (threshold 1, reset by subtraction,
spike when v > 1, v starting at 0): a constant input ``c`` per step gives
``n(T) = min(T, max(0, ceil(T*c) - 1))`` spikes in T steps (0 for c <= 0). A layer driven only
by the analog input (constant current) sees exactly such an input, ``c = z / lam`` with ``z``
the ANN's pre-activation and ``lam`` the layer's scale.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from conftest import DATA
from neurocompile.cli.main import cli
from neurocompile.errors import NeuroCompileError, UnsupportedError
from neurocompile.frontends.loader import load_model
from neurocompile.frontends.onnx import decode_output, encode_input, from_onnx
from neurocompile.frontends.onnx import sigma_delta as sd
from neurocompile.frontends.onnx.ann import forward
from neurocompile.frontends.onnx.parser import parse
from neurocompile.ir import nodes as N
from neurocompile.ir.interpreter import run
from neurocompile.ir.interpreter import run as ref_run
from neurocompile.ir.semantics import OPS
from neurocompile.targets.loihi2 import sdn_fixed

ONNX_DATA = DATA / "onnx"
RNG = np.random.default_rng(1234)


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------
def make_model(nodes, inputs, outputs, inits=(), opset=17, path=None):
    """An ONNX model from helper pieces; ``inputs``/``outputs``: (name, shape) pairs."""
    graph = helper.make_graph(
        nodes, "test",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs],
        initializer=[numpy_helper.from_array(np.asarray(v, dtype=np.float32 if np.asarray(v).dtype.kind == "f"
                                                        else np.int64), k) for k, v in inits])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    if path is not None:
        onnx.save(model, str(path))
    return model


def ann_reference(path, x):
    """The ONNX model's own output (onnx.reference), float64."""
    sess = ReferenceEvaluator(str(path))
    name = sess.input_names[0]
    return np.asarray(sess.run(None, {name: x.astype(np.float32)})[0], dtype=np.float64)


def if_counts(c, T):
    """Closed-form spike count of the converted IF neuron for a constant input c per step."""
    c = np.asarray(c, dtype=np.float64)
    return np.where(c > 0, np.minimum(T, np.maximum(0, np.ceil(T * c) - 1)), 0)


def assert_if_exact(counts, c, T):
    """counts == closed form, except within float round-off of an integer T*c (then +-1)."""
    want = if_counts(c, T)
    near = np.abs(T * c - np.round(T * c)) < 1e-7
    assert np.all(np.abs(counts - want) <= near), (counts[counts != want], want[counts != want])
    assert np.count_nonzero(want) > 0


def spike_counts(graph, x, T):
    r = run(graph, encode_input(graph, x, T))
    return r.output.sum(axis=0)


def scale_of(graph, name):
    return graph.metadata["onnx"]["scales"][name]


W = lambda *shape: RNG.normal(0, 0.5, shape).astype(np.float32)  # noqa: E731


# ------------------------------------------------------------------------------------------
# digits: accuracy of the converted networks against the ANNs
# ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    _, x_te, _, y_te = train_test_split(x, d.target, test_size=0.25, stratify=d.target, random_state=0)
    return x_te, y_te, np.load(ONNX_DATA / "digits_calib.npy", allow_pickle=False)


_ANN_ACCURACY: dict[str, float] = {}


def ann_accuracy(model, x_te, y_te):
    """Held-out accuracy of the ONNX model itself, run by onnx.reference (cached)."""
    if model not in _ANN_ACCURACY:
        x = x_te.reshape(len(x_te), -1) if model == "mlp" else x_te
        _ANN_ACCURACY[model] = float((ann_reference(ONNX_DATA / f"digits_{model}.onnx", x).argmax(1) == y_te).mean())
    return _ANN_ACCURACY[model]


@pytest.mark.parametrize("model, options", [
    ("mlp", {}),                                    # calibration, current input, T = default (64)
    ("cnn", {}),
    ("mlp", {"input_encoding": "spikes"}),
    ("mlp", {"calibration": None}),                 # weight-based fallback
    ("mlp", {"reset": "zero", "timesteps": 32}),    # what Lava's Loihi 2 LIF can do today
    ("cnn", {"calibration": None, "timesteps": 32}),
])
def test_digits_converted_accuracy_within_1_5_points(digits, model, options):
    x_te, y_te, calib = digits
    options = dict(options)
    cal = options.pop("calibration", calib)
    g = from_onnx(ONNX_DATA / f"digits_{model}.onnx", cal, **options)
    T = g.metadata["onnx"]["timesteps"]
    assert T == options.get("timesteps", 64)
    r = run(g, encode_input(g, x_te), record_spikes=True)
    snn = float((decode_output(g, r.output).argmax(1) == y_te).mean())
    ann = ann_accuracy(model, x_te, y_te)
    spikes = sum(float(v.sum()) for v in r.probes.values()) / len(y_te)
    print(f"{model} {options or 'defaults'}: T={T} ANN {ann * 100:.2f}% SNN {snn * 100:.2f}% "
          f"({spikes:.0f} spikes/inference)")
    assert ann >= 0.95
    assert snn >= ann - 0.015


def test_shipped_ann_accuracies_match_the_record(digits):
    x_te, y_te, calib = digits
    rec = json.loads((ONNX_DATA / "digits_ann.json").read_text())
    assert calib.dtype == np.float32 and calib.shape[1:] == (1, 8, 8) and 200 <= len(calib) <= 500
    for model in ("mlp", "cnn"):
        assert ann_accuracy(model, x_te, y_te) == pytest.approx(rec[model], abs=1e-9)


def test_digits_graph_structure_and_assumptions(digits):
    g = from_onnx(ONNX_DATA / "digits_cnn.onnx", digits[2])
    ops = {n: type(node).__name__ for n, node in g.nodes.items()}
    assert list(ops.values()) == ["Input", "Conv2d", "IF", "AvgPool2d", "Flatten", "Affine", "Integrator", "Output"]
    neuron = g.nodes["2_Relu"]
    assert (neuron.reset, neuron.reset_delay, neuron.compare, float(neuron.v_threshold)) == \
        ("subtract", False, "gt", 1.0)
    assert g.dt == 1.0
    text = " | ".join(g.assumptions)
    assert "dt = 1.0" in text and "99.9th percentile" in text and "constant current" in text
    assert "Integrator" in text and "64 time steps" in text


def test_analog_network_matches_onnx_reference(digits):
    x = digits[2][:50]
    for model in ("mlp", "cnn"):
        path = ONNX_DATA / f"digits_{model}.onnx"
        xin = x.reshape(50, -1) if model == "mlp" else x
        got = forward(parse(path), xin, keep="outputs")["logits"]
        np.testing.assert_allclose(got, ann_reference(path, xin), atol=1e-5)


# ------------------------------------------------------------------------------------------
# op-by-op conversions on tiny models
# ------------------------------------------------------------------------------------------
def test_conv_batchnorm_fold_exact_if_counts(tmp_path):
    c_out = 3
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c", "s", "bb", "m", "v"], ["n"], name="bn", epsilon=1e-3),
             helper.make_node("Relu", ["n"], ["y"], name="relu")]
    inits = [("w", W(c_out, 2, 3, 3)), ("b", W(c_out)), ("s", np.abs(W(c_out)) + 0.5), ("bb", W(c_out)),
             ("m", W(c_out)), ("v", np.abs(W(c_out)) + 0.1)]
    path = tmp_path / "convbn.onnx"
    make_model(nodes, [("x", ["N", 2, 5, 5])], [("y", ["N", c_out, 5, 5])], inits, path=path)
    x = RNG.uniform(0, 1, (8, 2, 5, 5))
    ann = parse(path)
    assert [op.kind for op in ann.ops.values()] == ["input", "linear", "relu"]  # BN folded into conv
    np.testing.assert_allclose(forward(ann, x, keep="outputs")["y"], ann_reference(path, x), atol=1e-5)
    g = from_onnx(path, x)
    assert [type(n).__name__ for n in g.nodes.values()] == ["Input", "Conv2d", "IF", "Output"]
    # pre-activation of the ANN (the BN output) and the neuron's constant per-step input
    sess = ReferenceEvaluator(str(path))
    z = np.asarray(sess.run(["n"], {"x": x.astype(np.float32)})[0], dtype=np.float64)
    T = 50
    assert_if_exact(spike_counts(g, x, T), z / scale_of(g, "relu"), T)


def test_gemm_variants(tmp_path):
    K, M = 6, 4
    cases = {
        "transB0": (dict(), W(K, M), W(M)),
        "transB1": (dict(transB=1), W(M, K), W(M)),
        "alpha_beta_row": (dict(transB=1, alpha=0.5, beta=2.0), W(M, K), W(1, M)),
        "scalar_c": (dict(alpha=1.5), W(K, M), np.float32(0.3)),
        "no_c": (dict(transB=1), W(M, K), None),
    }
    x = RNG.uniform(0, 1, (16, K))
    T = 40
    for name, (attrs, b, c) in cases.items():
        ins = ["x", "B"] + (["C"] if c is not None else [])
        inits = [("B", b)] + ([("C", c)] if c is not None else [])
        path = tmp_path / f"{name}.onnx"
        nodes = [helper.make_node("Gemm", ins, ["z"], name="fc", **attrs),
                 helper.make_node("Relu", ["z"], ["y"], name="relu")]
        make_model(nodes, [("x", ["N", K])], [("y", ["N", M])], inits, path=path)
        sess = ReferenceEvaluator(str(path))
        z = np.asarray(sess.run(["z"], {"x": x.astype(np.float32)})[0], dtype=np.float64)
        np.testing.assert_allclose(forward(parse(path), x, keep="outputs")["y"], np.maximum(z, 0), atol=1e-5,
                                   err_msg=name)
        g = from_onnx(path, x)
        assert_if_exact(spike_counts(g, x, T), z / scale_of(g, "relu"), T)


def test_matmul_add_becomes_affine(tmp_path):
    nodes = [helper.make_node("MatMul", ["x", "B"], ["p"], name="mm"),
             helper.make_node("Add", ["p", "C"], ["z"], name="bias"),
             helper.make_node("Relu", ["z"], ["y"], name="relu")]
    path = tmp_path / "mm.onnx"
    make_model(nodes, [("x", ["N", 5])], [("y", ["N", 3])], [("B", W(5, 3)), ("C", W(3))], path=path)
    ann = parse(path)
    assert [op.kind for op in ann.ops.values()] == ["input", "linear", "relu"]
    assert isinstance(ann.ops["mm"].node, N.Affine)
    x = RNG.uniform(0, 1, (10, 5))
    np.testing.assert_allclose(forward(ann, x, keep="outputs")["y"], ann_reference(path, x), atol=1e-5)


def test_add_of_two_branches_is_two_edges_exact(tmp_path):
    # both branches are driven by the input current, so the neuron's input is still constant
    nodes = [helper.make_node("Gemm", ["x", "B1", "C1"], ["a"], name="fc_a", transB=1),
             helper.make_node("Gemm", ["x", "B2"], ["b"], name="fc_b", transB=1),
             helper.make_node("Add", ["a", "b"], ["z"], name="add"),
             helper.make_node("Relu", ["z"], ["y"], name="relu")]
    path = tmp_path / "add.onnx"
    make_model(nodes, [("x", ["N", 6])], [("y", ["N", 4])],
               [("B1", W(4, 6)), ("C1", W(4)), ("B2", W(4, 6))], path=path)
    x = RNG.uniform(0, 1, (12, 6))
    g = from_onnx(path, x)
    assert sorted(g.predecessors("add")) == ["fc_a", "fc_b"] and g.predecessors("relu") == ["add"]
    sess = ReferenceEvaluator(str(path))
    z = np.asarray(sess.run(["z"], {"x": x.astype(np.float32)})[0], dtype=np.float64)
    T = 64
    assert_if_exact(spike_counts(g, x, T), z / scale_of(g, "relu"), T)


def test_residual_add_of_spikes_and_current(tmp_path):
    # y = relu(fc2(h) + h), h = relu(fc1(x)): the skip path carries spikes, rescaled if needed
    nodes = [helper.make_node("Gemm", ["x", "B1", "C1"], ["z1"], name="fc1", transB=1),
             helper.make_node("Relu", ["z1"], ["h"], name="relu1"),
             helper.make_node("Gemm", ["h", "B2", "C2"], ["z2"], name="fc2", transB=1),
             helper.make_node("Add", ["z2", "h"], ["s"], name="res"),
             helper.make_node("Relu", ["s"], ["y"], name="relu2")]
    path = tmp_path / "res.onnx"
    make_model(nodes, [("x", ["N", 8])], [("y", ["N", 8])],
               [("B1", W(8, 8)), ("C1", W(8)), ("B2", W(8, 8)), ("C2", W(8))], path=path)
    x = RNG.uniform(0, 1, (32, 8))
    g = from_onnx(path, x, percentile=100)
    assert len(g.predecessors("res")) == 2
    ann = ann_reference(path, x)
    T = 400
    est = spike_counts(g, x, T) / T * scale_of(g, "relu2")
    # two layers of rate error: a few spikes of the 400 steps, relative to the layer's scale
    assert np.max(np.abs(est - ann)) <= 0.03 * scale_of(g, "relu2")
    assert np.corrcoef(est.ravel(), ann.ravel())[0, 1] > 0.999


def test_global_average_pool_and_flatten_exact(tmp_path):
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv"),
             helper.make_node("GlobalAveragePool", ["c"], ["g"], name="gap"),
             helper.make_node("Flatten", ["g"], ["f"], name="flat", axis=1),
             helper.make_node("Relu", ["f"], ["y"], name="relu")]
    path = tmp_path / "gap.onnx"
    bias = np.array([0.6, 0.2, 0.9], np.float32)  # keep most pre-activations positive
    make_model(nodes, [("x", ["N", 2, 4, 4])], [("y", ["N", 3])], [("w", W(3, 2, 1, 1)), ("b", bias)], path=path)
    x = RNG.uniform(0, 1, (20, 2, 4, 4))
    g = from_onnx(path, x)
    assert [type(n).__name__ for n in g.nodes.values()] == ["Input", "Conv2d", "AvgPool2d", "Flatten", "IF", "Output"]
    sess = ReferenceEvaluator(str(path))
    z = np.asarray(sess.run(["f"], {"x": x.astype(np.float32)})[0], dtype=np.float64)
    T = 64
    assert_if_exact(spike_counts(g, x, T), z / scale_of(g, "relu"), T)


def test_reshape_from_shape_arithmetic_is_folded(tmp_path):
    # what torch emits for x.view(x.size(0), -1): Shape -> Gather -> Unsqueeze -> Concat -> Reshape
    nodes = [helper.make_node("Shape", ["x"], ["shp"], name="shape"),
             helper.make_node("Gather", ["shp", "zero"], ["n"], name="gather", axis=0),
             helper.make_node("Unsqueeze", ["n", "ax0"], ["n1"], name="unsq"),
             helper.make_node("Concat", ["n1", "minus1"], ["target"], name="cat_shape", axis=0),
             helper.make_node("Reshape", ["x", "target"], ["f"], name="reshape"),
             helper.make_node("Gemm", ["f", "B", "C"], ["z"], name="fc", transB=1),
             helper.make_node("Relu", ["z"], ["y"], name="relu")]
    inits = [("zero", np.array(0, np.int64)), ("ax0", np.array([0], np.int64)),
             ("minus1", np.array([-1], np.int64)), ("B", W(4, 18)), ("C", W(4))]
    path = tmp_path / "reshape.onnx"
    make_model(nodes, [("x", ["N", 2, 3, 3])], [("y", ["N", 4])], inits, path=path)
    x = RNG.uniform(0, 1, (10, 2, 3, 3))
    g = from_onnx(path, x)
    assert [type(n).__name__ for n in g.nodes.values()] == ["Input", "Flatten", "Affine", "IF", "Output"]
    sess = ReferenceEvaluator(str(path))
    z = np.asarray(sess.run(["z"], {"x": x.astype(np.float32)})[0], dtype=np.float64)
    T = 64
    assert_if_exact(spike_counts(g, x, T), z / scale_of(g, "relu"), T)


def test_concat_into_conv_becomes_block_weights(tmp_path):
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["a"], name="conv_a", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["a"], ["ra"], name="relu_a"),
             helper.make_node("Conv", ["x", "w2"], ["b"], name="conv_b"),
             helper.make_node("Concat", ["ra", "b"], ["cat"], name="cat", axis=1),
             helper.make_node("BatchNormalization", ["cat", "s", "bb", "m", "v"], ["bn"], name="bn_cat"),
             helper.make_node("Relu", ["bn"], ["rc"], name="relu_cat"),
             helper.make_node("AveragePool", ["rc"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Flatten", ["p"], ["f"], name="flat"),
             helper.make_node("Gemm", ["f", "B", "C"], ["z"], name="fc", transB=1),
             helper.make_node("Relu", ["z"], ["y"], name="relu_out")]
    inits = [("w1", W(2, 1, 3, 3)), ("b1", W(2)), ("w2", W(3, 1, 1, 1)), ("B", W(4, 5 * 2 * 2)), ("C", W(4)),
             ("s", np.abs(W(5)) + 0.5), ("bb", W(5)), ("m", W(5)), ("v", np.abs(W(5)) + 0.1)]
    path = tmp_path / "cat.onnx"
    make_model(nodes, [("x", ["N", 1, 4, 4])], [("y", ["N", 4])], inits, path=path)
    x = RNG.uniform(0, 1, (30, 1, 4, 4))
    ann = parse(path)
    assert all(op.kind != "concat" for op in ann.ops.values())
    # BN (a depthwise conv here), ReLU, pool and flatten moved in front of the concat, per branch
    relus = sorted(n for n, op in ann.ops.items() if op.kind == "relu")
    assert relus == ["relu_a", "relu_cat_0", "relu_cat_1", "relu_out"]
    np.testing.assert_allclose(forward(ann, x, keep="outputs")["y"], ann_reference(path, x), atol=1e-5)
    g = from_onnx(path, x, percentile=100)
    # the Gemm after the concat is split into one Affine/Linear per branch meeting at one node
    assert sorted(type(g.nodes[p]).__name__ for p in g.predecessors("fc")) == ["Affine", "Linear"]
    T = 400
    est = spike_counts(g, x, T) / T * scale_of(g, "relu_out")
    assert np.max(np.abs(est - ann_reference(path, x))) <= 0.05 * scale_of(g, "relu_out")


def test_concat_at_output_is_embedded(tmp_path):
    nodes = [helper.make_node("Gemm", ["x", "B1"], ["a"], name="fa", transB=1),
             helper.make_node("Gemm", ["x", "B2"], ["b"], name="fb", transB=1),
             helper.make_node("Concat", ["a", "b"], ["y"], name="cat", axis=-1),
             helper.make_node("Softmax", ["y"], ["prob"], name="softmax")]
    path = tmp_path / "cat_out.onnx"
    make_model(nodes, [("x", ["N", 3])], [("prob", ["N", 5])], [("B1", W(2, 3)), ("B2", W(3, 3))], path=path)
    x = RNG.uniform(0, 1, (7, 3))
    ann = parse(path)
    sess = ReferenceEvaluator(str(path))
    logits = np.asarray(sess.run(["y"], {"x": x.astype(np.float32)})[0])
    np.testing.assert_allclose(forward(ann, x, keep="outputs")["prob"], logits, atol=1e-5)
    g = from_onnx(path, x)
    assert any("Softmax" in a and "dropped" in a for a in g.assumptions)
    # no neuron between input and readout: the Integrator holds exactly T * logits / scale
    T = 10
    out = run(g, encode_input(g, x, T)).output
    np.testing.assert_allclose(out[-1] * g.metadata["onnx"]["output_scales"]["prob"] / T, logits, atol=1e-5)


def test_identity_and_dropout_removed(tmp_path):
    nodes = [helper.make_node("Identity", ["x"], ["i"], name="id"),
             helper.make_node("Gemm", ["i", "B"], ["z"], name="fc", transB=1),
             helper.make_node("Dropout", ["z"], ["d"], name="drop"),
             helper.make_node("Relu", ["d"], ["y"], name="relu")]
    path = tmp_path / "id.onnx"
    make_model(nodes, [("x", ["N", 3])], [("y", ["N", 2])], [("B", W(2, 3))], path=path)
    g = from_onnx(path, RNG.uniform(0, 1, (4, 3)))
    assert list(g.nodes) == ["x", "fc", "relu", "y"]


# ------------------------------------------------------------------------------------------
# errors
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cut", [0.0, 0.1, 0.5, 0.9, 0.99])
def test_truncated_file_names_the_file(tmp_path, cut):
    data = (ONNX_DATA / "digits_cnn.onnx").read_bytes()
    path = tmp_path / "broken.onnx"
    path.write_bytes(data[:int(len(data) * cut)])
    with pytest.raises(NeuroCompileError) as err:
        from_onnx(path)
    assert "broken.onnx" in str(err.value)


def test_not_onnx_and_missing_file(tmp_path):
    path = tmp_path / "junk.onnx"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 4)
    with pytest.raises(NeuroCompileError, match="junk.onnx"):
        from_onnx(path)
    with pytest.raises(NeuroCompileError, match="no such file"):
        from_onnx(tmp_path / "none.onnx")


def test_unsupported_ops_are_all_listed_with_names(tmp_path):
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv1"),
             helper.make_node("MaxPool", ["c"], ["p"], name="pool1", kernel_shape=[2, 2]),
             helper.make_node("Sigmoid", ["p"], ["s"], name="act_sig"),
             helper.make_node("Mul", ["s", "k"], ["m"], name="scale_mul"),
             helper.make_node("Relu", ["m"], ["y"], name="relu")]
    path = tmp_path / "bad.onnx"
    make_model(nodes, [("x", ["N", 1, 4, 4])], [("y", ["N", 2, 1, 1])],
               [("w", W(2, 1, 3, 3)), ("k", np.float32(2.0))], path=path)
    with pytest.raises(UnsupportedError) as err:
        from_onnx(path)
    msg = str(err.value)
    for name, op in [("pool1", "MaxPool"), ("act_sig", "Sigmoid"), ("scale_mul", "Mul")]:
        assert f"'{name}' ({op})" in msg
    assert "bad.onnx" in msg and "3 unsupported" in msg and "AveragePool" in msg and "\n" not in msg
    assert err.value.unsupported == [("pool1", "MaxPool"), ("act_sig", "Sigmoid"), ("scale_mul", "Mul")]


def test_maxpool_suggests_average_pool(tmp_path):
    nodes = [helper.make_node("MaxPool", ["x"], ["y"], name="mp", kernel_shape=[2, 2], strides=[2, 2])]
    path = tmp_path / "mp.onnx"
    make_model(nodes, [("x", ["N", 1, 4, 4])], [("y", ["N", 1, 2, 2])], path=path)
    with pytest.raises(UnsupportedError, match=r"'mp' \(MaxPool\).*replace MaxPool by AveragePool"):
        from_onnx(path)


def test_attribute_problems_are_collected(tmp_path):
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="asym", pads=[0, 0, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("Concat", ["r", "r"], ["y"], name="cat_h", axis=2)]
    path = tmp_path / "attrs.onnx"
    make_model(nodes, [("x", ["N", 1, 4, 4])], [("y", ["N", 1, 10, 5])], [("w", W(1, 1, 1, 1))], path=path)
    with pytest.raises(UnsupportedError, match=r"'asym' \(Conv\): asymmetric padding"):
        from_onnx(path)
    nodes[0] = helper.make_node("Conv", ["x", "w"], ["c"], name="asym")
    make_model(nodes, [("x", ["N", 1, 4, 4])], [("y", ["N", 1, 8, 4])], [("w", W(1, 1, 1, 1))], path=path)
    with pytest.raises(UnsupportedError, match=r"'cat_h' \(Concat\): only a concat along the channel"):
        from_onnx(path)


def test_dynamic_shape_error_and_fix(tmp_path):
    nodes = [helper.make_node("GlobalAveragePool", ["x"], ["g"], name="gap"),
             helper.make_node("Flatten", ["g"], ["y"], name="flat")]
    path = tmp_path / "dyn.onnx"
    make_model(nodes, [("x", ["N", 2, "H", "W"])], [("y", ["N", 2])], path=path)
    with pytest.raises(UnsupportedError) as err:
        from_onnx(path)
    msg = str(err.value)
    assert "dyn.onnx" in msg and "'H' at axis 2" in msg and "'W' at axis 3" in msg and "input_shape" in msg
    g = from_onnx(path, input_shape=(2, 3, 3))
    assert g.nodes["x"].shape == (2, 3, 3)


def test_old_opset_rejected(tmp_path):
    path = tmp_path / "old.onnx"
    make_model([helper.make_node("Relu", ["x"], ["y"], name="r")], [("x", ["N", 2])], [("y", ["N", 2])],
               opset=11, path=path)
    with pytest.raises(UnsupportedError, match="opset 11.*>= 13"):
        from_onnx(path)


def test_bad_options_and_calibration(digits, tmp_path):
    path = ONNX_DATA / "digits_mlp.onnx"
    with pytest.raises(NeuroCompileError, match="does not hold samples"):
        from_onnx(path, np.zeros((5, 7)))
    with pytest.raises(NeuroCompileError, match="input_encoding"):
        from_onnx(path, input_encoding="poisson")
    with pytest.raises(UnsupportedError, match="non-negative"):
        from_onnx(path, -digits[2], input_encoding="spikes")
    g = from_onnx(path, method="sigma_delta")  # weight-bound scales without calibration
    assert any(isinstance(n, N.SigmaDelta) for n in g.nodes.values())
    np.save(tmp_path / "calib.npy", digits[2])
    g = from_onnx(path, str(tmp_path / "calib.npy"))
    assert g.metadata["onnx"]["normalisation"] == "data"


# ------------------------------------------------------------------------------------------
# CLI and loader
# ------------------------------------------------------------------------------------------
def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def test_cli_compile_and_run_onnx_without_calibration(digits, tmp_path):
    x_te, y_te, _ = digits
    art = tmp_path / "mlp"
    r = invoke("compile", ONNX_DATA / "digits_mlp.onnx", "--target", "float", "-o", art)
    assert r.exit_code == 0, r.output
    assert "assumed: normalisation without calibration data" in r.output
    T = 64
    np.save(tmp_path / "x.npy", np.broadcast_to(x_te.reshape(1, -1, 64), (T, len(x_te), 64)).astype(np.float32))
    np.save(tmp_path / "y.npy", y_te)
    r = invoke("run", art, "--input", tmp_path / "x.npy", "--labels", tmp_path / "y.npy")
    assert r.exit_code == 0, r.output
    acc = float(re.search(r"accuracy: ([0-9.]+)%", r.output).group(1)) / 100
    assert acc >= ann_accuracy("mlp", x_te, y_te) - 0.015


def test_cli_unsupported_onnx_exit_2(tmp_path):
    path = tmp_path / "mp.onnx"
    make_model([helper.make_node("MaxPool", ["x"], ["y"], name="mp", kernel_shape=[2, 2])],
               [("x", ["N", 1, 4, 4])], [("y", ["N", 1, 3, 3])], path=path)
    r = invoke("compile", path, "-o", tmp_path / "out")
    assert r.exit_code == 2 and "mp.onnx" in r.output and "MaxPool" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "out").exists()


def test_loader_dispatches_onnx():
    g = load_model(str(ONNX_DATA / "digits_mlp.onnx"))
    assert g.metadata["onnx"]["normalisation"] == "weights"


# ------------------------------------------------------------------------------------------
# sigma-delta
# ------------------------------------------------------------------------------------------
def test_sigma_delta_hand_derived():
    node = N.SigmaDelta(vth=0.5, bias=-0.25, act="relu")
    st = {}
    # x:      1.0    0.0    -0.5     0.5    0.0    0.0
    # sigma:  1.0    1.0     0.5     1.0    1.0    1.0
    # act:    0.75   0.75    0.25    0.75   0.75   0.75
    # delta:  0.75   0      -0.5     0.5    0      0      (|delta| >= vth sends, equality included)
    ys = [float(OPS[N.SigmaDelta](node, np.array(v), st, None)) for v in (1.0, 0.0, -0.5, 0.5, 0.0, 0.0)]
    assert ys == [0.75, 0.0, -0.5, 0.5, 0.0, 0.0]
    node = N.SigmaDelta(vth=0.5, act="unit", cum_error=True)
    st = {}
    # residue below vth is re-added to the error every step until it reaches vth:
    # delta: 0.3 (err 0.3), 0.3 (err 0.6 -> send 0.3, err 0), 0 ...
    ys = [float(OPS[N.SigmaDelta](node, np.array(v), st, None)) for v in (0.3, 0.0, 0.0)]
    assert ys == [0.0, pytest.approx(0.3), 0.0]


def test_sigma_delta_conversion_is_exact_at_vth_zero(digits):
    x_te, y_te, calib = digits
    path = ONNX_DATA / "digits_cnn.onnx"
    g = sd.convert(path, calib, vth=0.0)
    T = 3
    xs = np.broadcast_to(x_te[None], (T,) + x_te.shape)
    res = ref_run(g, xs, record_spikes=True)
    outs = res.outputs
    messages = {k: np.count_nonzero(v) for k, v in res.probes.items()}
    logits = outs["logits"].sum(axis=0)
    np.testing.assert_allclose(logits, ann_reference(path, x_te), atol=1e-4)
    assert np.all(outs["logits"][1:] == 0)  # static input: nothing changes after step 0
    g = sd.convert(path, calib, vth=0.1)
    res = ref_run(g, xs, record_spikes=True)
    outs = res.outputs
    sparse = {k: np.count_nonzero(v) for k, v in res.probes.items()}
    acc = float((outs["logits"].sum(axis=0).argmax(1) == y_te).mean())
    assert acc >= ann_accuracy("cnn", x_te, y_te) - 0.015
    assert sum(sparse.values()) < 0.8 * sum(messages.values())


LAVA_SCRIPT = r'''
import json, sys
import numpy as np
from lava.magma.core.run_conditions import RunSteps
from lava.magma.core.run_configs import Loihi2SimCfg
from lava.proc.io.sink import RingBuffer as Sink
from lava.proc.io.source import RingBuffer as Source
from lava.proc.sdn.process import ActivationMode, Delta, SigmaDelta

src = np.load(sys.argv[1], allow_pickle=False)
cases = json.loads(str(src["cases"]))
out = {}
for i, c in enumerate(cases):
    a_in = src["a_in%d" % i]
    T, n = a_in.shape
    fixed = c["tag"] == "fixed_pt"
    source = Source(data=a_in.T.astype(np.int32 if fixed else float))
    common = dict(shape=(n,), vth=c["vth"], cum_error=c["cum_error"], spike_exp=c["spike_exp"],
                  state_exp=c["state_exp"])
    if c["kind"] == "delta":
        proc = Delta(**common)
    else:
        mode = ActivationMode.RELU if c["act"] == "relu" else ActivationMode.UNIT
        proc = SigmaDelta(bias=c["bias"], act_mode=mode, **common)
    sink = Sink(shape=(n,), buffer=T)
    source.s_out.connect(proc.a_in)
    proc.s_out.connect(sink.a_in)
    proc.run(condition=RunSteps(num_steps=T), run_cfg=Loihi2SimCfg(select_tag=c["tag"]))
    out["s_out%d" % i] = np.asarray(sink.data.get()).T
    for var in ("act", "residue", "error"):
        out["%s%d" % (var, i)] = np.asarray(getattr(proc, var).get())
    proc.stop()
np.savez(sys.argv[2], **out)
'''


def _lava_python():
    from neurocompile.targets.loihi2.lava.host import find_lava_python

    exe = find_lava_python()
    if exe is None:
        if os.environ.get("NEUROCOMPILE_REQUIRE_LAVA"):
            pytest.fail("Lava is required ($NEUROCOMPILE_REQUIRE_LAVA) but no Lava interpreter was found")
        pytest.skip("no Lava interpreter ($NEUROCOMPILE_LAVA_PYTHON)")
    return exe


def test_sigma_delta_semantics_match_lava_sdn(tmp_path):
    """The float SigmaDelta/Delta ops and the fixed-point reference against Lava's own process models."""
    exe = _lava_python()
    rng = np.random.default_rng(7)
    T, n = 40, 7
    cases, arrays = [], {}
    for tag in ("floating_pt", "fixed_pt"):
        fixed = tag == "fixed_pt"
        for kind, act in (("sigma_delta", "relu"), ("sigma_delta", "unit"), ("delta", "unit")):
            for cum in (False, True):
                if fixed:
                    a = rng.integers(-150, 250, (T, n)) if kind == "sigma_delta" else rng.integers(-5, 9, (T, n))
                else:
                    a = np.round(rng.normal(0.1, 0.5, (T, n)), 2)
                    a[0, 0] = 0.5  # |delta| == vth at the first step: sent (>=)
                a[rng.random((T, n)) < 0.4] = 0
                a[0, 0] = 0.5 if not fixed else a[0, 0]
                arrays[f"a_in{len(cases)}"] = a
                cases.append(dict(tag=tag, kind=kind, act=act, cum_error=cum, vth=3 if fixed else 0.5,
                                  bias=-2 if fixed else 0.0, spike_exp=2 if fixed else 0,
                                  state_exp=3 if fixed else 0))
    np.savez(tmp_path / "in.npz", cases=json.dumps(cases), **arrays)
    (tmp_path / "lava_sdn.py").write_text(LAVA_SCRIPT)
    proc = subprocess.run([exe, str(tmp_path / "lava_sdn.py"), str(tmp_path / "in.npz"), str(tmp_path / "out.npz")],
                          capture_output=True, text=True, timeout=300, cwd=tempfile.gettempdir())
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = np.load(tmp_path / "out.npz", allow_pickle=False)
    for i, c in enumerate(cases):
        a = arrays[f"a_in{i}"]
        lava = res[f"s_out{i}"]
        assert np.count_nonzero(lava) > 5, c
        if c["tag"] == "floating_pt":
            node = N.SigmaDelta(vth=c["vth"], bias=c["bias"], act=c["act"], cum_error=c["cum_error"]) \
                if c["kind"] == "sigma_delta" else N.Delta(vth=c["vth"], cum_error=c["cum_error"])
            st = {}
            ours = np.array([OPS[type(node)](node, a[t], st, None) for t in range(T)])
            np.testing.assert_allclose(ours, lava, rtol=0, atol=1e-12, err_msg=str(c))
            np.testing.assert_allclose(st["res"], res[f"residue{i}"], atol=1e-12, err_msg=str(c))
            if c["kind"] == "sigma_delta" and not c["cum_error"]:
                assert lava[0, 0] == 0.5  # equality with vth sends
        else:
            ours = sdn_fixed.sigma_delta_fixed(a, vth=c["vth"], bias=c["bias"], act=c["act"], cum_error=c["cum_error"],
                                        spike_exp=c["spike_exp"], state_exp=c["state_exp"],
                                        delta_only=c["kind"] == "delta")
            np.testing.assert_array_equal(ours["s_out"], lava, err_msg=str(c))
            for var in ("act", "residue", "error"):
                np.testing.assert_array_equal(ours[var][-1], res[f"{var}{i}"], err_msg=f"{var} {c}")
