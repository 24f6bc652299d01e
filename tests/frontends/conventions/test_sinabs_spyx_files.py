"""sinabs 3.1.3 and spyx 1.0.0 do not install beside torch 2.13 (sinabs pins nir 1.0.4, spyx needs
jax): the NIR files here are written field by field as their exporters write them
(``sinabs/nir.py:_extract_sinabs_module``, ``spyx/nir.py:to_nir``), and the oracles are their
documented per-step updates (``sinabs/layers/functional/lif.py``, ``spyx/nn.py``) in numpy."""
from __future__ import annotations

import numpy as np
import pytest
from conv_helpers import agreement, record, run_float, spikes_in

nir = pytest.importorskip("nir")


def _weights(seed, shapes, k=2.0):
    rng = np.random.default_rng(seed)
    return [rng.normal(0, k / np.sqrt(s[1]), s) for s in shapes]


def _write(path, nodes, chain):
    edges = list(zip(chain[:-1], chain[1:]))
    nir.write(str(path), nir.NIRGraph(nodes=nodes, edges=edges, type_check=False))


# -- sinabs ---------------------------------------------------------------------------------
def _sinabs_file(path, w1, w2, tau):
    n1, n2 = w1.shape[0], w2.shape[0]
    nodes = {"input": nir.Input(input_type={"input": np.array([w1.shape[1]])}),
             "0": nir.Affine(weight=w1, bias=np.zeros(n1)),
             "1": nir.LIF(tau=np.full(n1, tau), v_threshold=np.ones(n1), v_leak=np.zeros(n1), r=np.ones(n1)),
             "2": nir.Affine(weight=w2, bias=np.zeros(n2)),
             "3": nir.IF(r=np.ones(n2), v_threshold=np.ones(n2)),
             "output": nir.Output(output_type={"output": np.array([n2])})}
    _write(path, nodes, ["input", "0", "1", "2", "3", "output"])


def _sinabs_forward(x, w1, w2, tau):
    """sinabs LIF(norm_input=True) then IAF, MultiSpike, MembraneSubtract; returns spikes, max count."""
    a = np.exp(-1.0 / tau)
    v1 = np.zeros((x.shape[1], w1.shape[0]))
    v2 = np.zeros((x.shape[1], w2.shape[0]))
    out, most = [], 0
    for t in range(x.shape[0]):
        v1 = a * v1 + (1 - a) * (x[t] @ w1.T)
        s1 = (v1 > 0) * np.trunc(v1 / 1.0)
        v1 = v1 - s1
        v2 = v2 + s1 @ w2.T
        s2 = (v2 > 0) * np.trunc(v2 / 1.0)
        v2 = v2 - s2
        most = max(most, s1.max(), s2.max())
        out.append(s2)
    return np.stack(out), most


def test_sinabs_file_matches_its_update(tmp_path):
    (w1,), (w2,) = _weights(7, [(12, 6)], k=2.5), _weights(17, [(3, 12)], k=1.0)
    _sinabs_file(tmp_path / "sinabs.nir", w1, w2, tau=5.0)
    x = spikes_in(8, 200, 4, 6, p=0.5)
    ref, most = _sinabs_forward(x, w1, w2, 5.0)
    g, got = run_float(tmp_path / "sinabs.nir", x, convention="sinabs")
    agree = agreement(got, ref)
    record("sinabs", "3.1.3 (file as its exporter writes it)", "Linear, LIF, IAF", "sinabs", agree, int(ref.sum()))
    assert most == 1 and ref.sum() > 10
    assert agree == 1.0
    assert any("several spikes" in a for a in g.assumptions)


def test_sinabs_file_without_convention_warns_silent(tmp_path):
    w1, w2 = _weights(7, [(12, 6), (3, 12)], k=6.0)
    _sinabs_file(tmp_path / "sinabs.nir", w1, w2, tau=20.0)
    g, got = run_float(tmp_path / "sinabs.nir", spikes_in(8, 40, 2, 6))
    warn = [a for a in g.assumptions if a.startswith("WARNING")]
    assert warn and "tau = 20 s" in warn[0] and "--convention" in warn[0] and "node '1'" in warn[0]
    assert got.sum() == 0          # what the warning predicts


# -- spyx -----------------------------------------------------------------------------------
def _spyx_file(path, w1, w2, beta, dt=1.0, cuba=False):
    n1, n2 = w1.shape[0], w2.shape[0]
    b1, b2 = np.full(n1, beta), np.full(n2, beta)
    if cuba:
        lif1 = nir.CubaLIF(tau_mem=dt / (1 - b1), tau_syn=dt / (1 - b1), v_threshold=np.ones(n1),
                           v_leak=np.zeros(n1), r=b1)
    else:
        lif1 = nir.LIF(tau=dt / (1 - b1), v_threshold=np.ones(n1), v_leak=np.zeros(n1), r=b1)
    nodes = {"input": nir.Input(input_type={"input": np.array([w1.shape[1]])}),
             "layer_0": nir.Linear(weight=w1), "layer_1": lif1, "layer_2": nir.Linear(weight=w2),
             "layer_3": nir.LIF(tau=dt / (1 - b2), v_threshold=np.ones(n2), v_leak=np.zeros(n2), r=b2),
             "output": nir.Output(output_type={"output": np.array([n2])})}
    _write(path, nodes, ["input", "layer_0", "layer_1", "layer_2", "layer_3", "output"])


def _spyx_forward(x, w1, w2, beta):
    """spyx.nn.LIF: s = H(V - thr); V = beta*V + x - s*thr (the spike from the previous V)."""
    v1 = np.zeros((x.shape[1], w1.shape[0]))
    v2 = np.zeros((x.shape[1], w2.shape[0]))
    out = []
    for t in range(x.shape[0]):
        s1 = (v1 - 1.0 > 0).astype(float)
        v1 = beta * v1 + x[t] @ w1.T - s1
        s2 = (v2 - 1.0 > 0).astype(float)
        v2 = beta * v2 + s1 @ w2.T - s2
        out.append(s2)
    return np.stack(out)


def test_spyx_file_matches_its_update(tmp_path):
    w1, w2 = _weights(9, [(12, 6), (3, 12)], k=3.0)
    _spyx_file(tmp_path / "spyx.nir", w1, w2, beta=0.8)
    x = spikes_in(10, 80, 4, 6)
    ref = _spyx_forward(x, w1, w2, 0.8)
    g, got = run_float(tmp_path / "spyx.nir", x)            # detected from the 'layer_<i>' names
    assert any("convention 'spyx' detected" in a for a in g.assumptions)
    agree = agreement(got, ref)
    record("spyx", "1.0.0 (file as its exporter writes it)", "Linear, LIF", "spyx", agree, int(ref.sum()))
    assert ref.sum() > 10
    assert agree == 1.0


def test_spyx_cubalif_is_a_named_gap(tmp_path):
    from neurocompile.errors import UnsupportedError
    from neurocompile.frontends.nir import read_nir

    w1, w2 = _weights(9, [(12, 6), (3, 12)])
    _spyx_file(tmp_path / "spyx.nir", w1, w2, beta=0.8, cuba=True)
    with pytest.raises(UnsupportedError, match="beta\\*threshold.*layer_1|layer_1.*beta\\*threshold"):
        read_nir(tmp_path / "spyx.nir", convention="spyx")
