"""Dense form keeps structure: Flatten is an index map, conv chains (strided, pooled, composed)
stay convolutions, and what is folded costs its real size (issue 14)."""
import numpy as np

from neurocompile.ir import nodes as N
from neurocompile.ir import sequential
from neurocompile.ir.interpreter import run as float_run
from neurocompile.passes import Pipeline
from neurocompile.passes.dense_form import DenseForm


def same_function(g, flat, seed=0, T=8):
    shape = g.validate()[g.inputs[0]]
    x = (np.random.default_rng(seed).random((T, 2) + shape) < 0.3).astype(float)
    a, b = float_run(g, x, record_spikes=True), float_run(flat, x.reshape(T, 2, -1), record_spikes=True)
    for k in a.outputs:
        np.testing.assert_allclose(a.outputs[k].reshape(T, 2, -1), b.outputs[k].reshape(T, 2, -1), atol=1e-9)
    total = 0.0
    for k in a.probes:
        np.testing.assert_array_equal(a.probes[k].reshape(T, 2, -1), b.probes[k].reshape(T, 2, -1), err_msg=k)
        total += a.probes[k].sum()
    assert total > 0


def test_flatten_before_a_readout_costs_nothing(monkeypatch):
    # 64 x 32 x 32 = 65,536 values: folding Flatten through unit vectors took a 32 GiB identity
    monkeypatch.setenv("NEUROCOMPILE_MEMORY_BUDGET", "64M")
    w = np.random.default_rng(0).normal(size=(10, 65536))
    g = sequential([("in", N.Input(shape=(64, 32, 32))), ("a", N.IF()), ("flat", N.Flatten()),
                    ("fc", N.Linear(weight=w)), ("b", N.IF()), ("out", N.Output())], dt=1.0)
    flat = Pipeline([DenseForm(keep_conv=True)]).run(g)
    assert flat.nodes["flat"].weight is w               # the Linear's own matrix
    assert "fc" not in flat.nodes and flat.metadata["folded"]["flat"] == ["flat", "fc"]


def test_index_maps_alone_become_one_flatten():
    g = sequential([("in", N.Input(shape=(2, 3, 3))), ("a", N.IF()), ("f1", N.Flatten()), ("id", N.Identity()),
                    ("out", N.Output())], dt=1.0)
    flat = Pipeline([DenseForm()]).run(g)
    assert isinstance(flat.nodes["f1"], N.Flatten) and "id" not in flat.nodes


def test_conv_pool_and_conv_chains_stay_convolutions():
    rng = np.random.default_rng(3)
    g = sequential([
        ("in", N.Input(shape=(2, 16, 16))),
        ("c1", N.Conv2d(weight=rng.normal(0.3, 0.3, (4, 2, 3, 3)), bias=0.05, padding=1)),
        ("p1", N.SumPool2d(kernel_size=2)), ("l1", N.IF()),                         # conv -> pool
        ("p2", N.AvgPool2d(kernel_size=2)), ("l2", N.IF(v_threshold=0.5)),           # pool alone
        ("c3", N.Conv2d(weight=rng.normal(0.3, 0.3, (4, 4, 3, 3)), stride=2, padding=1)),
        ("c4", N.Conv2d(weight=rng.normal(0.3, 0.3, (6, 4, 1, 1)))), ("l3", N.IF()),  # conv -> conv
        ("flat", N.Flatten()), ("fc", N.Linear(weight=rng.normal(0.2, 0.2, (5, 6 * 2 * 2)))),
        ("l4", N.IF()), ("out", N.Output())], dt=1.0)
    flat = Pipeline([DenseForm(keep_conv=True)]).run(g)
    assert flat.metadata["kept_conv"] == ["c1", "p2", "c3"]
    assert flat.metadata["folded"] == {"c1": ["c1", "p1"], "c3": ["c3", "c4"], "flat": ["flat", "fc"]}
    assert flat.nodes["c1"].stride == (2, 2) and flat.nodes["c1"].weight.shape == (4, 2, 4, 4)
    assert flat.nodes["p2"].groups == 4 and flat.nodes["c3"].weight.shape == (6, 4, 3, 3)
    same_function(g, flat)


def test_folded_conv_without_keep_conv_matches_and_is_dense():
    rng = np.random.default_rng(4)
    g = sequential([("in", N.Input(shape=(1, 6, 6))), ("c", N.Conv2d(weight=rng.normal(1, 0.3, (2, 1, 3, 3)),
                                                                     stride=2, padding=1)),
                    ("p", N.SumPool2d(kernel_size=1)), ("l", N.IF()), ("out", N.Output())], dt=1.0)
    flat = Pipeline([DenseForm()]).run(g)
    assert isinstance(flat.nodes["c"].weight, np.ndarray) and flat.nodes["c"].weight.shape == (18, 36)
    same_function(g, flat)


def test_per_channel_scale_between_conv_groups_is_a_depthwise_conv():
    rng = np.random.default_rng(5)
    g = sequential([("in", N.Input(shape=(3, 6, 6))),
                    ("c", N.Conv2d(weight=rng.normal(0.4, 0.2, (3, 3, 3, 3)), padding=1)), ("a", N.IF()),
                    ("s", N.Scale(scale=np.array([1.5, 0.5, 2.0]).reshape(3, 1, 1))), ("b", N.IF(v_threshold=0.7)),
                    ("out", N.Output())], dt=1.0)
    flat = Pipeline([DenseForm(keep_conv=True)]).run(g)
    assert flat.metadata["kept_conv"] == ["c", "s"]
    assert flat.nodes["s"].groups == 3 and flat.nodes["s"].weight.shape == (3, 1, 1, 1)
    same_function(g, flat)
