"""The shipped digits model: accuracy on the held-out split through the reference executor, and
the executor's output spikes equal to snnTorch's own forward pass on the same encoded input."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("snntorch")
pytest.importorskip("sklearn")

from neurocompile.frontends.snntorch import from_snntorch  # noqa: E402
from neurocompile.ir import nodes as N  # noqa: E402
from neurocompile.ir.interpreter import run  # noqa: E402
from neurocompile.zoo import digits  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def shipped():
    net = digits.load_model()
    x, y = digits.test_data()
    graph = from_snntorch(net, (digits.N_IN,))
    result = run(graph, x, record_spikes=True)
    return net, graph, x, y, result


def test_held_out_split_and_encoding():
    split = digits.load_digits_split()
    assert split.X_test.shape == (450, 64) and split.X_train.shape == (1347, 64)
    per_class = np.bincount(np.concatenate([split.y_train, split.y_test]))
    assert np.all(np.abs(np.bincount(split.y_test) - 0.25 * per_class) <= 1)  # stratified
    x, y = digits.test_data()
    assert x.shape == (digits.T, 450, 64) and np.array_equal(y, split.y_test)
    assert set(np.unique(x)) <= {0.0, 1.0}
    # deterministic rate code: intensity k spikes floor(T*k/16) times, evenly
    code = digits.encode(np.array([[0, 4, 8, 16]]))[:, 0]
    assert code.sum(axis=0).tolist() == [0, 8, 16, 32]
    assert code[:, 2].tolist() == [0, 1] * 16
    assert np.array_equal(code, digits.encode(np.array([[0, 4, 8, 16]]))[:, 0])  # no randomness


def test_predict_breaks_ties_to_lowest_index():
    counts = np.array([[3, 5, 5, 1], [0, 0, 0, 0], [2, 9, 1, 9]])
    assert digits.predict(counts).tolist() == [1, 0, 1]


def test_shipped_graph_structure(shipped):
    _, graph, *_ = shipped
    ops = [type(graph.nodes[n]).__name__ for n in graph.order()]
    assert ops == ["Input", "Affine", "LIF", "Affine", "LIF", "Output"]
    for name in ("1", "3"):
        lif = graph.nodes[name]
        assert isinstance(lif, N.LIF) and lif.reset == "zero" and lif.compare == "gt"
        np.testing.assert_allclose(1 - graph.dt / lif.tau, 0.9, atol=1e-7)


def test_accuracy_on_held_out_split(shipped):
    _, _, _, y, result = shipped
    counts = result.output.sum(axis=0)
    acc = float((digits.predict(counts) == y).mean())
    assert acc >= 0.95, f"accuracy {acc:.4f}"


def test_executor_spikes_equal_snntorch_forward(shipped):
    net, graph, x, _, result = shipped
    with torch.no_grad():
        ref = digits.run_snntorch(net.double(), x, dtype=torch.float64).numpy()
    net.float()
    out = result.output
    assert out.shape == ref.shape
    assert np.array_equal(out.sum(axis=0), ref.sum(axis=0))  # spike counts, exactly
    assert np.array_equal(out, ref)  # and every spike at every step
    assert out.sum() > 0 and result.probes["1.out"].mean() > 0.01


def test_load_graph_for_the_cli():
    g = digits.load_graph()
    assert g.metadata.get("zoo") == "digits" and g.dt == 1.0
    assert any("rate code" in a for a in g.assumptions)
