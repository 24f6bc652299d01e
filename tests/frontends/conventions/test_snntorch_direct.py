"""snnTorch modules read directly: BatchNorm folded, beta >= 1, max pooling and functional ops."""
from __future__ import annotations

import numpy as np
import pytest
from conv_helpers import spikes_in

torch = pytest.importorskip("torch")
snn = pytest.importorskip("snntorch")
sutils = pytest.importorskip("snntorch.utils")
nn = torch.nn


def _snn_forward(net, x):
    sutils.reset(net)
    with torch.no_grad():
        out = [net(torch.tensor(x[t], dtype=torch.float32)) for t in range(x.shape[0])]
    return np.stack([(o[0] if isinstance(o, tuple) else o).numpy() for o in out])


def _graph_forward(net, shape, x, target="float"):
    import neurocompile as nc

    art = nc.compile(net, target, input_shape=shape)
    return nc.run(art, x).output, art


@pytest.mark.parametrize("conv", [False, True])
def test_batchnorm_folded_equals_snntorch_eval(conv):
    torch.manual_seed(0)
    if conv:
        net = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), snn.Leaky(beta=0.9, init_hidden=True),
                            nn.Flatten(), nn.Linear(48, 4), nn.BatchNorm1d(4),
                            snn.Leaky(beta=0.8, init_hidden=True, output=True))
        shape, x = (1, 6, 6), spikes_in(1, 30, 3, 36).reshape(30, 3, 1, 6, 6)
    else:
        net = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), snn.Leaky(beta=0.9, init_hidden=True),
                            nn.Linear(16, 4), snn.Leaky(beta=0.8, init_hidden=True, output=True))
        shape, x = (8,), spikes_in(1, 30, 3, 8)
    for m in net.modules():                       # non-trivial running statistics
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.2, 2.0)
            m.weight.data.uniform_(0.5, 3.0)
            m.bias.data.uniform_(-0.2, 0.6)
    net.eval()
    ref = _snn_forward(net, x)
    got, art = _graph_forward(net, shape, x)
    assert ref.sum() > 5
    np.testing.assert_array_equal(got, ref)
    assert any("BatchNorm" in a and "folded" in a for a in art.graph.assumptions)
    assert not any(n.op == "Affine" and n.weight.shape[0] == n.weight.shape[1] for n in art.graph.nodes.values()
                   if hasattr(n, "weight") and not conv)


def test_synaptic_learned_beta_above_one_matches_snntorch():
    torch.manual_seed(1)
    syn = snn.Synaptic(alpha=0.8, beta=1.014, learn_beta=True, init_hidden=True, output=True)
    net = nn.Sequential(nn.Linear(5, 6), syn)
    x = spikes_in(2, 40, 3, 5)
    ref = _snn_forward(net, x)
    got, art = _graph_forward(net, (5,), x)
    assert ref.sum() > 5
    np.testing.assert_array_equal(got, ref)
    assert any("beta = 1 (no decay" in a for a in art.graph.assumptions)


def test_leaky_beta_mixing_one_and_below_matches_snntorch():
    """beta = 1 for some neurons, < 1 for others: LIF with a 2**40-step tau where beta = 1; Loihi 2
    (one decay per group) refuses by name, it never fails internally."""
    import neurocompile as nc
    from neurocompile.errors import NeuroCompileError

    torch.manual_seed(5)
    net = nn.Sequential(nn.Linear(4, 3), snn.Leaky(beta=torch.tensor([1.0, 0.9, 1.0]), reset_mechanism="zero",
                                                   init_hidden=True, output=True))
    x = spikes_in(4, 40, 3, 4)
    ref = _snn_forward(net, x)
    got, _ = _graph_forward(net, (4,), x)
    assert ref.sum() > 5
    np.testing.assert_array_equal(got, ref)
    with pytest.raises(NeuroCompileError) as exc:
        nc.compile(net, "loihi2", input_shape=(4,))
    assert "per-neuron" in str(exc.value) or "tau" in str(exc.value)


@pytest.mark.parametrize("target", ["loihi2", "spinnaker"])
def test_maxpool_names_the_missing_lowering(target):
    import neurocompile as nc
    from neurocompile.errors import UnsupportedError

    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), snn.Leaky(beta=0.9, reset_mechanism="zero", init_hidden=True),
                        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(32, 3),
                        snn.Leaky(beta=0.9, reset_mechanism="zero", init_hidden=True, output=True))
    with pytest.raises(UnsupportedError) as exc:
        nc.compile(net, target, input_shape=(1, 8, 8))
    msg = str(exc.value)
    assert "max pooling" in msg and "nn.AvgPool2d" in msg and "expects input" not in msg


def test_functional_op_in_forward_is_named():
    from neurocompile.errors import UnsupportedError
    from neurocompile.frontends.snntorch import from_snntorch

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3, padding=1)
            self.lif = snn.Leaky(beta=0.9)
            self.fc = nn.Linear(32, 3)
            self.out = snn.Leaky(beta=0.9)

        def forward(self, x):
            m1, m2 = self.lif.init_leaky(), self.out.init_leaky()
            s1, m1 = self.lif(torch.nn.functional.max_pool2d(self.conv(x), 2), m1)
            s2, m2 = self.out(self.fc(s1.flatten(1)), m2)
            return s2, m2

    with pytest.raises(UnsupportedError) as exc:
        from_snntorch(Net(), input_shape=(1, 8, 8))
    msg = str(exc.value)
    assert "max_pool2d" in msg and "nn.MaxPool2d" in msg


def test_synaptic_alpha_one_float_exact_loihi_clear_error():
    import neurocompile as nc
    from neurocompile.errors import NeuroCompileError

    torch.manual_seed(2)
    net = nn.Sequential(nn.Linear(5, 4), snn.Synaptic(alpha=1.0, beta=0.9, reset_mechanism="none",
                                                      init_hidden=True, output=True))
    x = spikes_in(3, 30, 2, 5)
    ref = _snn_forward(net, x)
    got, _ = _graph_forward(net, (5,), x)
    np.testing.assert_array_equal(got, ref)
    with pytest.raises(NeuroCompileError) as exc:
        nc.compile(net, "loihi2", input_shape=(5,))
    assert "tau_syn" in str(exc.value) and "du" in str(exc.value) and "internal" not in str(exc.value)
