"""NIR reading and writing, on the NIR paper's real graphs."""
import numpy as np
import pytest

from conftest import NIR_PAPER
from neurocompile.errors import NeuroCompileError
from neurocompile.frontends.nir import read_nir, write_nir
from neurocompile.ir import nodes as N
from neurocompile.ir.interpreter import run
from neurocompile.passes import NORMALIZE, Pipeline

PAPER_FILES = ["lif_norse.nir", "braille_noDelay_bias_zero.nir", "braille_noDelay_noBias_subtract.nir",
               "cnn_sinabs.nir"]


def load(name, **kw):
    return Pipeline(NORMALIZE).run(read_nir(NIR_PAPER / name, **kw))


def test_single_lif_spikes_like_the_paper(lif_input):
    g = load("lif_norse.nir")
    assert g.dt == 1e-4
    res = run(g, lif_input, probes=["1.v"])
    spikes = np.flatnonzero(res.output[:, 0, 0])
    # the paper's exact reference (and Norse, snnTorch, Nengo, SpiNNaker2): 460, 510, 710, 760
    exact = np.loadtxt(NIR_PAPER / "lif_exact.csv", delimiter=",")
    assert spikes.tolist() == [460, 510, 710, 760]
    assert np.flatnonzero(exact[:, 2]).tolist() == spikes.tolist()
    # forward Euler vs the exact event-driven solution: the traces stay close
    assert np.abs(res.probes["1.v"][:, 0, 0] - exact[:, 1]).max() < 0.01


def test_assumptions_are_stated():
    g = read_nir(NIR_PAPER / "braille_noDelay_noBias_subtract.nir")
    text = " ".join(g.assumptions)
    assert "dt = 1e-4" in text and "reset" in text
    g = read_nir(NIR_PAPER / "braille_noDelay_noBias_subtract.nir", reset="subtract", dt=1e-4)
    assert all(n.reset == "subtract" for n in g.nodes.values() if hasattr(n, "reset"))
    assert not any("reset" in a for a in g.assumptions)


@pytest.mark.parametrize("name", PAPER_FILES)
def test_paper_graphs_load_run_and_round_trip(name, tmp_path):
    g = load(name)
    shapes = g.validate()
    rng = np.random.default_rng(0)
    (inp,) = g.inputs
    x = (rng.random((60, 2) + shapes[inp]) < 0.3).astype(float)
    res = run(g, x, record_spikes=True)
    assert res.output.shape == (60, 2) + shapes[g.outputs[0]]
    assert sum(v.sum() for v in res.probes.values()) > 0, "nothing spiked"
    write_nir(g, tmp_path / "rt.nir")
    g2 = read_nir(tmp_path / "rt.nir")
    assert g2.assumptions == []  # dt, rule and reset came back from the file's metadata
    assert set(g2.nodes) == set(g.nodes) and sorted(g2.edges) == sorted(g.edges)
    for n in g.nodes:
        a, b = g.nodes[n].params(), g2.nodes[n].params()
        for k in a:
            if isinstance(a[k], np.ndarray):
                np.testing.assert_array_equal(np.broadcast_to(a[k], b[k].shape), b[k], err_msg=f"{n}.{k}")
            else:
                assert a[k] == b[k], f"{n}.{k}"
    np.testing.assert_array_equal(run(g2, x).output, res.output)


def test_braille_recurrent_structure():
    g = load("braille_noDelay_bias_zero.nir")
    assert g.recurrent_edges() == {("lif1.w_rec", "lif1.lif")}
    assert isinstance(g.nodes["lif1.lif"], N.CubaLIF)


def test_nested_subgraph_is_flattened(tmp_path):
    import nir

    rng = np.random.default_rng(3)
    w_in, w_rec = rng.normal(size=(3, 2)), rng.normal(size=(3, 3)) * 0.5
    lif = nir.LIF(tau=np.full(3, 2e-3), r=np.full(3, 20.0), v_leak=np.zeros(3), v_threshold=np.full(3, 0.5))
    inner = nir.NIRGraph(
        nodes={"input": nir.Input(input_type={"input": np.array([3])}), "lif": lif,
               "w_rec": nir.Linear(weight=w_rec), "output": nir.Output(output_type={"output": np.array([3])})},
        edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")], type_check=False)
    outer = nir.NIRGraph(
        nodes={"input": nir.Input(input_type={"input": np.array([2])}), "fc": nir.Linear(weight=w_in),
               "rnn": inner, "output": nir.Output(output_type={"output": np.array([3])})},
        edges=[("input", "fc"), ("fc", "rnn"), ("rnn", "output")], type_check=False)
    nir.write(tmp_path / "nested.nir", outer)
    g = Pipeline(NORMALIZE).run(read_nir(tmp_path / "nested.nir"))
    assert {"rnn.lif", "rnn.w_rec"} <= set(g.nodes)
    assert g.recurrent_edges() == {("rnn.w_rec", "rnn.lif")}
    # hand-computed reference of the same recurrent net
    x = rng.random((30, 2))
    beta = 1 - 1e-4 / 2e-3
    v, s, out = np.zeros(3), np.zeros(3), []
    for t in range(30):
        v = beta * v + (1 - beta) * 20.0 * (w_in @ x[t] + w_rec @ s)
        s = (v > 0.5).astype(float)
        v = np.where(s > 0, 0.0, v)
        out.append(s)
    np.testing.assert_array_equal(run(g, x).output[:, 0], np.array(out))


def test_corrupt_and_missing_files(tmp_path):
    bad = tmp_path / "bad.nir"
    bad.write_bytes(b"not hdf5 at all")
    with pytest.raises(NeuroCompileError) as e:
        read_nir(bad)
    assert "bad.nir" in str(e.value)
    with pytest.raises(NeuroCompileError, match="no such file"):
        read_nir(tmp_path / "missing.nir")
    # truncated real file
    data = (NIR_PAPER / "braille_noDelay_bias_zero.nir").read_bytes()
    (tmp_path / "trunc.nir").write_bytes(data[: len(data) // 2])
    with pytest.raises(NeuroCompileError, match="trunc.nir"):
        read_nir(tmp_path / "trunc.nir")


def test_maxpool_cannot_be_written(tmp_path):
    from neurocompile.ir import sequential

    g = sequential([("in", N.Input(shape=(1, 4, 4))), ("p", N.MaxPool2d(kernel_size=2)), ("o", N.Output())])
    with pytest.raises(NeuroCompileError, match="MaxPool2d") as e:
        write_nir(g, tmp_path / "x.nir")
    assert e.value.node == "p"
    assert not (tmp_path / "x.nir").exists()
