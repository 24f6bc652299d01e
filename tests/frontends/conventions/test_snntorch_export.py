"""snnTorch's own export_to_nir, read with --convention snntorch, against snnTorch's forward."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from conv_helpers import agreement, record, run_float, spikes_in

torch = pytest.importorskip("torch")
snn = pytest.importorskip("snntorch")
sutils = pytest.importorskip("snntorch.utils")
pytest.importorskip("nirtorch")
nir = pytest.importorskip("nir")


def _export(net, sample, path):
    from snntorch.export_nir import export_to_nir

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g = export_to_nir(net, sample)
    nir.write(str(path), g)


def _forward(net, x):
    sutils.reset(net)
    out = []
    with torch.no_grad():
        for t in range(x.shape[0]):
            out.append(net(torch.tensor(x[t], dtype=torch.float32))[0].numpy())
    return np.stack(out)


def _mlp():
    torch.manual_seed(0)
    lif = lambda n, b: snn.Leaky(beta=torch.full((n,), b), threshold=torch.ones(n), init_hidden=True)  # noqa: E731
    net = torch.nn.Sequential(torch.nn.Linear(8, 16), lif(16, 0.9), torch.nn.Linear(16, 4), lif(4, 0.8))
    net[-1].output = True
    with torch.no_grad():
        net[0].weight.mul_(3)
        net[2].weight.mul_(3)
    return net


def test_snntorch_mlp_matches_its_forward(tmp_path):
    net = _mlp()
    path = tmp_path / "snn.nir"
    _export(net, torch.randn(8), path)
    x = spikes_in(0, 60, 5, 8)
    ref = _forward(net, x)
    g, out = run_float(path, x, convention="snntorch")
    assert any("convention 'snntorch'" in a for a in g.assumptions)
    agree = agreement(out, ref)
    _, plain = run_float(path, x)          # NIR's own reading (zero reset): not snnTorch's update
    record("snnTorch", snn.__version__, "Linear, Leaky", "snntorch", agree, int(ref.sum()))
    record("snnTorch", snn.__version__, "Linear, Leaky", "nir (default)", agreement(plain, ref), int(ref.sum()))
    assert ref.sum() > 20
    assert agree == 1.0
    assert agreement(plain, ref) < 1.0


def test_snntorch_recurrent_matches_its_forward(tmp_path):
    torch.manual_seed(1)
    rl = snn.RLeaky(beta=torch.full((10,), 0.85), threshold=torch.ones(10), linear_features=10,
                    init_hidden=True)
    out = snn.Leaky(beta=torch.full((3,), 0.9), threshold=torch.ones(3), init_hidden=True, output=True)
    net = torch.nn.Sequential(torch.nn.Linear(6, 10), rl, torch.nn.Linear(10, 3), out)
    with torch.no_grad():
        net[0].weight.mul_(3)
        net[2].weight.mul_(3)
    path = tmp_path / "rsnn.nir"
    _export(net, torch.randn(6), path)
    x = spikes_in(5, 60, 4, 6)
    ref = _forward(net, x)
    _, got = run_float(path, x, convention="snntorch")
    agree = agreement(got, ref)
    record("snnTorch", snn.__version__, "Linear, RLeaky, Leaky", "snntorch", agree, int(ref.sum()))
    assert ref.sum() > 10
    assert agree == 1.0


def test_snntorch_conv_matches_its_forward(tmp_path):
    """Conv layers only: snnTorch 1.0's exporter with nir 1.0.8 fails its own type inference on a
    batched sample and an unbatched one breaks nn.Flatten, so no Flatten/Linear head here."""
    torch.manual_seed(2)
    lif = lambda shape, b: snn.Leaky(beta=torch.full(shape, b), threshold=torch.ones(shape),  # noqa: E731
                                     init_hidden=True)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), lif((2, 4, 4), 0.9), torch.nn.Conv2d(2, 2, 3),
                              lif((2, 2, 2), 0.8))
    net[-1].output = True
    with torch.no_grad():
        net[0].weight.mul_(3)
        net[2].weight.mul_(3)
    path = tmp_path / "csnn.nir"
    _export(net, torch.randn(1, 6, 6), path)
    x = spikes_in(6, 40, 3, 36).reshape(40, 3, 1, 6, 6)
    ref = _forward(net, x)
    _, got = run_float(path, x, convention="snntorch")
    agree = agreement(got, ref)
    record("snnTorch", snn.__version__, "Conv2d, Leaky", "snntorch", agree, int(ref.sum()))
    assert ref.sum() > 10
    assert agree == 1.0


def test_snntorch_synaptic_matches_its_forward(tmp_path):
    torch.manual_seed(4)
    syn = lambda n, a, b: snn.Synaptic(alpha=torch.full((n,), a), beta=torch.full((n,), b),  # noqa: E731
                                       threshold=torch.ones(n), init_hidden=True)
    net = torch.nn.Sequential(torch.nn.Linear(6, 10), syn(10, 0.7, 0.85), torch.nn.Linear(10, 3), syn(3, 0.6, 0.9))
    net[-1].output = True
    with torch.no_grad():
        net[0].weight.mul_(2)
        net[2].weight.mul_(2)
    path = tmp_path / "syn.nir"
    _export(net, torch.randn(6), path)
    x = spikes_in(7, 60, 4, 6)
    ref = _forward(net, x)
    _, got = run_float(path, x, convention="snntorch")
    agree = agreement(got, ref)
    record("snnTorch", snn.__version__, "Linear, Synaptic", "snntorch", agree, int(ref.sum()))
    assert ref.sum() > 10
    assert agree == 1.0
