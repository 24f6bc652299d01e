"""The intermediate graph: validation errors, shapes, recurrence, serialization, passes."""
import numpy as np
import pytest

from neurocompile.errors import GraphError, NeuroCompileError
from neurocompile.ir import nodes as N
from neurocompile.ir import sequential
from neurocompile.ir.interpreter import run
from neurocompile.ir.serialize import load_graph, save_graph
from neurocompile.passes import NORMALIZE, PassContext, Pipeline


def mlp(rng):
    return sequential([
        ("in", N.Input(shape=(4,))),
        ("fc", N.Affine(weight=rng.normal(size=(3, 4)), bias=rng.normal(size=3))),
        ("lif", N.LIF(tau=2.0, v_threshold=0.5)),
        ("out", N.Output()),
    ], dt=1.0)


def test_shape_mismatch_names_node():
    g = sequential([("in", N.Input(shape=(5,))), ("fc", N.Linear(weight=np.ones((3, 4)))), ("out", N.Output())])
    with pytest.raises(GraphError) as e:
        g.validate()
    assert e.value.node == "fc" and "(5,)" in str(e.value)


def test_dangling_edge_and_node():
    g = mlp(np.random.default_rng(0))
    g.connect("fc", "ghost")
    with pytest.raises(GraphError, match="does not exist"):
        g.validate()
    g = mlp(np.random.default_rng(0))
    g.add("lonely", N.LIF(tau=1.0))
    with pytest.raises(GraphError, match="dangling") as e:
        g.validate()
    assert e.value.node == "lonely"


def test_loop_without_state_rejected():
    g = sequential([("in", N.Input(shape=(2,))), ("a", N.Linear(weight=np.eye(2))), ("out", N.Output())])
    g.add("b", N.Scale(scale=0.5))
    g.connect("a", "b")
    g.connect("b", "a")
    with pytest.raises(GraphError, match="no stateful node"):
        g.validate()


def test_bad_parameters():
    with pytest.raises(GraphError, match="tau"):
        sequential([("in", N.Input(shape=(2,))), ("l", N.LIF(tau=-1.0)), ("o", N.Output())], dt=1.0).validate()
    with pytest.raises(GraphError, match="reset"):
        sequential([("in", N.Input(shape=(2,))), ("l", N.LIF(tau=1.0, reset="halfway")), ("o", N.Output())]).validate()


def test_conv_pool_flatten_shapes():
    g = sequential([
        ("in", N.Input(shape=(2, 34, 34))),
        ("c", N.Conv2d(weight=np.zeros((16, 2, 5, 5)), stride=2, padding=1)),
        ("p", N.SumPool2d(kernel_size=2)),
        ("f", N.Flatten()),
        ("o", N.Output()),
    ])
    shapes = g.validate()
    assert shapes["c"] == (16, 16, 16) and shapes["p"] == (16, 8, 8) and shapes["f"] == (1024,)


def test_recurrent_edge_is_delayed_one_step():
    # x -> lif (IF, thr 0.5) -> rec Scale(1) back into lif: the recurrent input at t is s[t-1]
    g = sequential([("in", N.Input(shape=(1,))), ("lif", N.IF(v_threshold=0.5, reset="zero")), ("out", N.Output())])
    g.add("rec", N.Scale(scale=1.0))
    g.connect("lif", "rec")
    g.connect("rec", "lif")
    assert g.recurrent_edges() == {("rec", "lif")}
    x = np.zeros((5, 1))
    x[0] = 1.0
    out = run(g, x).output[:, 0, 0]
    # t0: v=1 spike, reset; t1: v=0+rec(s0)=1 spike; self-sustaining from then on
    assert out.tolist() == [1, 1, 1, 1, 1]


def test_lif_hand_trace():
    # beta = 1 - dt/tau = 0.5, (1-beta)*r = 0.5; input 1 each step; threshold 0.7, reset to zero
    g = sequential([("in", N.Input(shape=(1,))), ("l", N.LIF(tau=2.0, r=1.0, v_threshold=0.7)),
                    ("o", N.Output())], dt=1.0)
    res = run(g, np.ones((4, 1)), probes=["l.v"])
    # v: 0.5, 0.75 (spike -> 0), 0.5, 0.75 (spike -> 0)
    assert res.output[:, 0, 0].tolist() == [0, 1, 0, 1]
    assert np.allclose(res.probes["l.v"][:, 0, 0], [0.5, 0.0, 0.5, 0.0])


def test_subtract_reset_delay_hand_trace():
    # snnTorch convention: v[t] = beta*v[t-1] + x - thr*s[t-1]; reported v is pre-reset
    g = sequential([("in", N.Input(shape=(1,))),
                    ("l", N.LIF(tau=2.0, r=2.0, v_threshold=1.0, reset="subtract", reset_delay=True)),
                    ("o", N.Output())], dt=1.0)
    res = run(g, np.full((3, 1), 0.8), probes=["l.v"])
    # beta=0.5, drive=(1-beta)*r*x = 0.8: v0=0.8; v1=0.4+0.8=1.2 (spike); v2=0.6+0.8-1=0.4
    assert np.allclose(res.probes["l.v"][:, 0, 0], [0.8, 1.2, 0.4])
    assert res.output[:, 0, 0].tolist() == [0, 1, 0]


def test_delay_node():
    g = sequential([("in", N.Input(shape=(2,))), ("d", N.Delay(delay=[0, 2])), ("o", N.Output())])
    x = np.arange(1, 9, dtype=float).reshape(4, 2)
    out = run(g, x).output[:, 0]
    assert out[:, 0].tolist() == [1, 3, 5, 7]
    assert out[:, 1].tolist() == [0, 0, 2, 4]


def test_serialization_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    g = mlp(rng)
    g.assume("something was assumed")
    save_graph(g, tmp_path / "g")
    g2 = load_graph(tmp_path / "g")
    assert g2.dt == g.dt and g2.assumptions == g.assumptions and g2.edges == g.edges
    for name in g.nodes:
        a, b = g.nodes[name].params(), g2.nodes[name].params()
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])
    x = rng.random((20, 3, 4))
    np.testing.assert_array_equal(run(g, x).output, run(g2, x).output)


def test_serialization_rejects_newer_version(tmp_path):
    import json
    g = mlp(np.random.default_rng(0))
    save_graph(g, tmp_path)
    doc = json.loads((tmp_path / "graph.json").read_text())
    doc["version"] = 99
    (tmp_path / "graph.json").write_text(json.dumps(doc))
    with pytest.raises(NeuroCompileError, match="newer"):
        load_graph(tmp_path)


def test_pipeline_dumps_between_passes(tmp_path):
    g = mlp(np.random.default_rng(0))
    g.add("id", N.Identity())
    g.edges = [("in", "id"), ("id", "fc"), ("fc", "lif"), ("lif", "out")]
    dump = tmp_path / "dump"
    out = Pipeline(NORMALIZE, dump_dir=dump).run(g, PassContext())
    assert "id" not in out.nodes and ("in", "fc") in out.edges
    assert (dump / "01-remove-identity" / "graph.json").is_file()
    assert (dump / "02-set-time-step" / "summary.txt").is_file()


def test_missing_dt_is_an_error():
    g = mlp(np.random.default_rng(0))
    g.dt = None
    with pytest.raises(NeuroCompileError, match="--dt"):
        Pipeline(NORMALIZE).run(g, PassContext())
