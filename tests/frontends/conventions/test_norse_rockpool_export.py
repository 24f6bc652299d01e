"""norse's and rockpool's own NIR exporters, read with their conventions, against their forward."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from conv_helpers import agreement, record, run_float, spikes_in

torch = pytest.importorskip("torch")
nir = pytest.importorskip("nir")
pytest.importorskip("nirtorch")


def _scale(lin, k):
    with torch.no_grad():
        lin.weight.mul_(k)


def _norse_cell(nt, cell, n):
    """Per-neuron parameter tensors (nir.write cannot store the 0-d defaults)."""
    full = lambda v: torch.full((n,), float(v))  # noqa: E731
    if cell == "LIFBoxCell":
        return nt.LIFBoxCell(nt.LIFBoxParameters(tau_mem_inv=full(100), v_leak=full(0), v_th=full(1),
                                                 v_reset=full(0)))
    return nt.LIFCell(nt.LIFParameters(tau_syn_inv=full(200), tau_mem_inv=full(100), v_leak=full(0),
                                       v_th=full(1), v_reset=full(0)))


@pytest.mark.parametrize("cell", ["LIFBoxCell", "LIFCell"])
def test_norse_matches_its_forward(tmp_path, cell):
    nt = pytest.importorskip("norse.torch")
    from norse.torch.utils.export_nir import to_nir

    torch.manual_seed(1)
    net = nt.SequentialState(torch.nn.Linear(6, 12), _norse_cell(nt, cell, 12), torch.nn.Linear(12, 3),
                             _norse_cell(nt, cell, 3))
    _scale(net[0], 40)
    _scale(net[2], 40)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ng = to_nir(net, torch.randn(1, 6))          # batched sample data: (1, 6) Input type
    path = tmp_path / "norse.nir"
    nir.write(str(path), ng)
    x = spikes_in(2, 80, 4, 6)
    with torch.no_grad():
        ref, state = [], None
        for t in range(x.shape[0]):
            y, state = net(torch.tensor(x[t], dtype=torch.float32), state)
            ref.append(y.numpy())
    ref = np.stack(ref)
    g, out = run_float(path, x, convention="norse")
    assert any("leading 1 taken as a batch dimension" in a for a in g.assumptions)
    agree = agreement(out, ref)
    import norse

    record("norse", getattr(norse, "__version__", "1.1.0").replace("0.0.0", "1.1.0"),
           f"Linear, {cell}", "norse", agree, int(ref.sum()))
    assert ref.sum() > 10
    assert agree == 1.0


def test_norse_without_its_convention_is_a_clear_error(tmp_path):
    nt = pytest.importorskip("norse.torch")
    from norse.torch.utils.export_nir import to_nir

    from neurocompile.errors import NeuroCompileError
    from neurocompile.frontends.nir import read_nir

    net = nt.SequentialState(torch.nn.Linear(6, 12), _norse_cell(nt, "LIFBoxCell", 12))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nir.write(str(tmp_path / "n.nir"), to_nir(net, torch.randn(1, 6)))
    with pytest.raises(NeuroCompileError) as exc:
        read_nir(tmp_path / "n.nir")
    msg = str(exc.value)
    assert "tau = 1e-05 s is shorter than dt = 0.0001 s" in msg and "--convention" in msg and "node '1'" in msg


def _rockpool_net(rec: bool):
    from rockpool.nn.combinators import Sequential
    from rockpool.nn.modules import LIFTorch, LinearTorch

    torch.manual_seed(3)
    net = Sequential(LinearTorch((6, 10)), LIFTorch(10, has_rec=rec, max_spikes_per_dt=1),
                     LinearTorch((10, 3)), LIFTorch(3, max_spikes_per_dt=1))
    with torch.no_grad():
        net[0].weight.mul_(4)
        net[2].weight.mul_(4)
    return net


def test_rockpool_matches_its_forward(tmp_path):
    pytest.importorskip("rockpool")
    import rockpool
    from rockpool.nn.modules.torch.nir import to_nir

    net = _rockpool_net(rec=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ng = to_nir(net)                             # default sample data: batch dimension 1
    path = tmp_path / "rockpool.nir"
    nir.write(str(path), ng)
    x = spikes_in(4, 80, 4, 6)
    with torch.no_grad():
        ref, _, _ = net(torch.tensor(np.swapaxes(x, 0, 1), dtype=torch.float32))   # (B, T, N)
    ref = np.swapaxes(ref.numpy(), 0, 1)
    g, out = run_float(path, x)                      # detected from the node names
    assert any("convention 'rockpool' detected" in a for a in g.assumptions)
    agree = agreement(out, ref)
    record("rockpool", rockpool.__version__, "LinearTorch, LIFTorch", "rockpool", agree, int(ref.sum()))
    assert ref.sum() > 10
    assert agree == 1.0

