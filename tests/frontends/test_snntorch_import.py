"""from_snntorch against snnTorch's own forward pass (the oracle).

Every equivalence test steps snnTorch's layers itself in float64 (``net.double()``), passing each
neuron's state explicitly from zero (what ``snntorch.utils.reset`` leaves), runs the imported
graph through the float64 reference executor on the same input, and asserts identical spikes at
every step for every spiking layer and membranes (``node.v``; ``node.i`` for the synaptic current)
within 1e-5. Each run checks that a fair share of the neurons fired, so a silent network cannot
pass.
"""
from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")
snn = pytest.importorskip("snntorch")
from torch import nn  # noqa: E402

from neurocompile.errors import NeuroCompileError, UnsupportedError  # noqa: E402
from neurocompile.frontends.snntorch import from_snntorch, load_snntorch_reference  # noqa: E402
from neurocompile.ir.interpreter import run  # noqa: E402

T, BATCH = 120, 4


pytestmark = pytest.mark.usefixtures("one_torch_thread")


NEURONS = (snn.Leaky, snn.Synaptic, snn.RLeaky, snn.RSynaptic)
STATES = {snn.Leaky: ("mem",), snn.Synaptic: ("syn", "mem"), snn.RLeaky: ("spk", "mem"),
          snn.RSynaptic: ("spk", "syn", "mem")}


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------
def snntorch_run(layers, x):
    """Step ``layers`` (a chain of modules, neurons with init_hidden=False) over x (T, B, ...).

    Returns {layer index: {"spk": (T,B,...), "mem": ..., ["syn": ...]}} for every neuron.
    """
    rec: dict[int, dict[str, list]] = {}
    state: dict[int, list] = {}
    with torch.no_grad():
        for t in range(x.shape[0]):
            h = x[t]
            for k, layer in enumerate(layers):
                if not isinstance(layer, NEURONS):
                    h = layer(h)
                    continue
                names = STATES[type(layer)]
                if k not in state:  # zero state, as after utils.reset / init_leaky
                    state[k] = [torch.zeros_like(h) for _ in names]
                out = layer(h, *state[k])
                spk = out[0].to(h.dtype)  # snnTorch's spike functions return float32
                returned = dict(zip(names[1:] if names[0] == "spk" else names, out[1:]))
                state[k] = [spk if n == "spk" else returned[n] for n in names]
                r = rec.setdefault(k, {"spk": [], **{n: [] for n in returned}})
                r["spk"].append(spk.numpy().copy())
                for n, v in returned.items():
                    r[n].append(v.numpy().copy())
                h = spk
    return {k: {n: np.stack(v) for n, v in r.items()} for k, r in rec.items()}


def assert_same(net, x, *, input_shape=None, layers=None, min_active=0.2, **kwargs):
    """Import ``net``, run both, compare every neuron layer; returns the graph."""
    net = net.double()
    x = np.asarray(x, dtype=np.float64)
    layers = layers if layers is not None else list(net.named_children())
    ref = snntorch_run([m for _, m in layers], torch.from_numpy(x))
    g = from_snntorch(net, input_shape or x.shape[2:], **kwargs)
    names = g.metadata["snntorch_layers"]
    probes = []
    for k in ref:
        probes += [f"{names[layers[k][0]]}.v"]
        if "syn" in ref[k]:
            probes += [f"{names[layers[k][0]]}.i"]
    res = run(g, x, probes=probes, record_spikes=True)
    assert ref, "no neuron layers"
    for k, r in ref.items():
        node = names[layers[k][0]]
        spikes = res.probes[f"{node}.out"]
        bad = np.argwhere(spikes != r["spk"])
        assert bad.size == 0, f"{node}: {len(bad)} spikes differ, first at (t, b, ...) {tuple(bad[0])}"
        np.testing.assert_allclose(res.probes[f"{node}.v"], r["mem"], atol=1e-5, rtol=0, err_msg=node)
        if "syn" in r:
            np.testing.assert_allclose(res.probes[f"{node}.i"], r["syn"], atol=1e-5, rtol=0, err_msg=node)
        active = r["spk"].reshape(x.shape[0], -1).any(axis=0).mean()
        rate = r["spk"].mean()
        print(f"{node}: {active:.0%} of neurons fired, rate {rate:.3f}")
        assert active >= min_active and 0.01 < rate < 0.9, \
            f"{node}: only {active:.0%} of neurons fired (rate {rate:.3f}); the test would be weak"
    return g


def linear(n_in, n_out, gain=2.0, shift=0.3, seed=0, bias=True):
    """An nn.Linear with weights strong enough to make the next layer fire."""
    gen = torch.Generator().manual_seed(seed)
    lin = nn.Linear(n_in, n_out, bias=bias)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(n_out, n_in, generator=gen) * gain / n_in ** 0.5 + shift / n_in ** 0.5)
        if bias:
            lin.bias.copy_(torch.randn(n_out, generator=gen) * 0.1)
    return lin


def inputs(shape, seed=0, mean=0.3, std=1.0):
    return np.random.default_rng(seed).normal(mean, std, (T, BATCH) + tuple(shape))


# ------------------------------------------------------------------------------------------
# Leaky
# ------------------------------------------------------------------------------------------
EXACT_RESETS = [("subtract", True), ("zero", True), ("zero", False), ("none", True), ("none", False)]


@pytest.mark.parametrize("reset,delay", EXACT_RESETS)
def test_leaky_two_layers(reset, delay):
    gen = torch.Generator().manual_seed(1)
    beta2 = torch.rand(12, generator=gen) * 0.5 + 0.45          # per neuron, learnable
    thr2 = torch.rand(12, generator=gen) * 1.0 + 0.5            # per neuron, learnable
    net = nn.Sequential(
        linear(20, 30),
        snn.Leaky(beta=0.8, threshold=1.2, reset_mechanism=reset, reset_delay=delay),
        linear(30, 12, gain=2.5, shift=0.3, seed=1),
        snn.Leaky(beta=beta2, threshold=thr2, learn_beta=True, learn_threshold=True,
                  reset_mechanism=reset, reset_delay=delay),
    )
    g = assert_same(net, inputs((20,)))
    lif = g.nodes[g.metadata["snntorch_layers"]["3"]]
    assert lif.reset == reset and lif.reset_delay == delay and lif.compare == "gt"
    np.testing.assert_allclose((1 - (1 - g.dt / lif.tau)) * lif.r, 1.0, rtol=1e-12)


def test_leaky_beta_one_is_if_and_clamped_beta():
    net = nn.Sequential(linear(10, 16), snn.Leaky(beta=1.0, reset_mechanism="subtract"),
                        linear(16, 8, gain=2.5, shift=1.0, seed=2),
                        snn.Leaky(beta=torch.tensor([0.99, 0.9, -0.2, 0.5, 0.7, 0.3, 0.95, 0.6]),
                                  reset_mechanism="zero"))
    g = assert_same(net, inputs((10,), seed=3, mean=0.0))
    assert type(g.nodes["1"]).__name__ == "IF"
    assert any("clamped" in a for a in g.assumptions)


def test_leaky_subtract_without_delay_is_rejected_and_really_differs():
    net = nn.Sequential(nn.Linear(1, 1, bias=False),
                        snn.Leaky(beta=1.0, reset_mechanism="subtract", reset_delay=False))
    with pytest.raises(UnsupportedError, match="reset_delay=False") as err:
        from_snntorch(net, (1,))
    assert err.value.node == "1"
    # the difference: one step pushes the membrane to 2.5; snnTorch fires, subtracts 1 and then
    # sits at 1.5 > threshold without firing again; the graph's neuron fires again at once
    with torch.no_grad():
        net[0].weight.fill_(1.0)
    x = np.zeros((4, 1, 1))
    x[0] = 2.5
    ref = snntorch_run(list(net.double()), torch.from_numpy(x))[1]
    assert ref["spk"].ravel().tolist() == [1, 0, 0, 0]
    assert ref["mem"].ravel().tolist() == [1.5, 1.5, 1.5, 1.5]
    g = from_snntorch(net, (1,), strict=False)
    assert any("approximated" in a for a in g.assumptions)
    assert run(g, x, record_spikes=True).probes["1.out"].ravel().tolist() == [1, 1, 0, 0]


# ------------------------------------------------------------------------------------------
# Synaptic
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("reset,delay", EXACT_RESETS)
def test_synaptic_two_layers(reset, delay):
    gen = torch.Generator().manual_seed(4)
    net = nn.Sequential(
        linear(16, 24, gain=1.5, seed=4),
        snn.Synaptic(alpha=0.6, beta=0.85, reset_mechanism=reset, reset_delay=delay),
        linear(24, 10, gain=1.5, shift=0.1, seed=5),
        snn.Synaptic(alpha=torch.rand(10, generator=gen) * 0.8, beta=torch.rand(10, generator=gen) * 0.9,
                     threshold=torch.rand(10, generator=gen) + 0.5, learn_alpha=True, learn_beta=True,
                     reset_mechanism=reset, reset_delay=delay),
    )
    g = assert_same(net, inputs((16,), seed=4, mean=0.0))
    node = g.nodes["3"]
    # zero reset with reset_delay=True clears the whole step after a spike: refractory 1
    assert node.refractory == (1 if (reset, delay) == ("zero", True) else 0)


# ------------------------------------------------------------------------------------------
# RLeaky / RSynaptic
# ------------------------------------------------------------------------------------------
def recurrent_kwargs(all_to_all, n, seed):
    if all_to_all:
        return {"linear_features": n}
    gen = torch.Generator().manual_seed(seed)
    return {"all_to_all": False, "V": torch.randn(n, generator=gen) * 0.5}


def init_recurrent(layer, seed, gain=1.5):
    if isinstance(layer.recurrent, nn.Linear):
        gen = torch.Generator().manual_seed(seed)
        n = layer.recurrent.in_features
        with torch.no_grad():
            layer.recurrent.weight.copy_(torch.randn(n, n, generator=gen) * gain / n ** 0.5)
            layer.recurrent.bias.copy_(torch.randn(n, generator=gen) * 0.3)
    return layer


@pytest.mark.parametrize("all_to_all", [True, False])
@pytest.mark.parametrize("reset,delay", [("subtract", True), ("zero", True), ("zero", False), ("none", True)])
def test_rleaky(all_to_all, reset, delay):
    net = nn.Sequential(
        linear(12, 20, gain=1.5, seed=6),
        init_recurrent(snn.RLeaky(beta=0.8, reset_mechanism=reset, reset_delay=delay,
                                  **recurrent_kwargs(all_to_all, 20, 6)), 6),
        linear(20, 8, gain=2.0, shift=0.3, seed=7),
        init_recurrent(snn.RLeaky(beta=torch.linspace(0.5, 0.95, 8), threshold=0.8, reset_mechanism=reset,
                                  reset_delay=delay, **recurrent_kwargs(all_to_all, 8, 7)), 7),
    )
    g = assert_same(net, inputs((12,), seed=6, mean=0.0))
    assert ("1_rec", "1") in g.recurrent_edges() and ("3_rec", "3") in g.recurrent_edges()
    assert type(g.nodes["1_rec"]).__name__ == ("Linear" if all_to_all else "Scale")


@pytest.mark.parametrize("all_to_all", [True, False])
@pytest.mark.parametrize("reset,delay", [("subtract", True), ("zero", True), ("none", True), ("zero", False)])
def test_rsynaptic(all_to_all, reset, delay):
    # the neurons follow an Input directly and a Flatten, so the recurrent bias cannot be folded
    # into a synaptic layer: an identity node carries it
    net = nn.Sequential(
        init_recurrent(snn.RSynaptic(alpha=0.5, beta=0.8, reset_mechanism=reset, reset_delay=delay,
                                     **recurrent_kwargs(all_to_all, 12, 8)), 8),
        linear(12, 10, gain=1.5, shift=0.1, seed=9),
        init_recurrent(snn.RSynaptic(alpha=torch.linspace(0.1, 0.7, 10), beta=0.9, reset_mechanism=reset,
                                     reset_delay=delay, **recurrent_kwargs(all_to_all, 10, 9)), 9),
    )
    g = assert_same(net, inputs((12,), seed=8, mean=0.0))
    if not delay:  # snnTorch 1.0's RSynaptic ignores reset_delay=False; the import says so
        assert any("ignores reset_delay=False" in a for a in g.assumptions)
        assert g.nodes["0"].reset_delay is True


# ------------------------------------------------------------------------------------------
# convolutions and pooling
# ------------------------------------------------------------------------------------------
def conv(c_in, c_out, k, seed, gain=2.0, shift=0.5, **kw):
    gen = torch.Generator().manual_seed(seed)
    layer = nn.Conv2d(c_in, c_out, k, **kw)
    fan = c_in * k * k
    with torch.no_grad():
        layer.weight.copy_(torch.randn(layer.weight.shape, generator=gen) * gain / fan ** 0.5 + shift / fan ** 0.5)
        layer.bias.copy_(torch.randn(c_out, generator=gen) * 0.1)
    return layer


def test_conv_pool_net():
    net = nn.Sequential(
        conv(2, 6, 3, seed=10, padding=1),
        snn.Leaky(beta=0.7, reset_mechanism="subtract"),
        nn.AvgPool2d(2),
        conv(6, 8, 3, seed=11, gain=1.5, shift=0.2),
        snn.Leaky(beta=torch.full((8, 1, 1), 0.8), threshold=torch.linspace(0.5, 1.5, 8).reshape(8, 1, 1),
                  reset_mechanism="zero"),
        nn.MaxPool2d(2, stride=2),
        nn.Flatten(),
        nn.Dropout(0.3),
        linear(8 * 2 * 2, 10, gain=2.0, shift=0.3, seed=12),
        snn.Leaky(beta=0.9, reset_mechanism="zero", reset_delay=False),
    ).eval()
    g = assert_same(net, inputs((2, 12, 12), seed=10), min_active=0.15)
    ops = [type(g.nodes[n]).__name__ for n in g.order()]
    assert ops == ["Input", "Conv2d", "LIF", "AvgPool2d", "Conv2d", "LIF", "MaxPool2d", "Flatten",
                   "Affine", "LIF", "Output"]


def test_recurrent_conv_with_bias_after_pool():
    # RLeaky's recurrent Conv2d has a bias; after a pool there is no conv to fold it into
    lif = snn.RLeaky(beta=0.8, conv2d_channels=4, kernel_size=3)
    with torch.no_grad():
        lif.recurrent.bias.copy_(torch.tensor([0.3, -0.2, 0.1, 0.25]))
    net = nn.Sequential(conv(2, 4, 3, seed=13, gain=1.5, shift=0.0, padding=1), nn.MaxPool2d(2, padding=1), lif,
                        nn.Flatten(), linear(4 * 7 * 7, 6, gain=1.5, shift=0.0, seed=14),
                        snn.Leaky(beta=0.8))
    g = assert_same(net, inputs((2, 12, 12), seed=13), min_active=0.15)
    assert "2_bias" in g.nodes and ("2_rec", "2") in g.recurrent_edges()


# ------------------------------------------------------------------------------------------
# class-based networks
# ------------------------------------------------------------------------------------------
class TutorialNet(nn.Module):
    """snnTorch tutorial style: same input at every one of num_steps steps, explicit states."""

    def __init__(self, num_steps=T):
        super().__init__()
        self.num_steps = num_steps
        self.fc1 = linear(10, 16, seed=15)
        self.lif1 = snn.Leaky(beta=0.9, reset_mechanism="zero")
        self.fc2 = linear(16, 5, gain=2.0, shift=0.3, seed=16)
        self.lif2 = snn.Synaptic(alpha=0.5, beta=0.9)

    def forward(self, x):
        mem1 = self.lif1.init_leaky()
        syn2, mem2 = self.lif2.init_synaptic()
        spk_rec, mem_rec = [], []
        for _ in range(self.num_steps):
            spk1, mem1 = self.lif1(self.fc1(x), mem1)
            spk2, syn2, mem2 = self.lif2(self.fc2(spk1.to(x.dtype)), syn2, mem2)
            spk_rec.append(spk2)
            mem_rec.append(mem2)
        return torch.stack(spk_rec), torch.stack(mem_rec)


class SkipNet(TutorialNet):
    def forward(self, x):
        mem1 = self.lif1.init_leaky()
        syn2, mem2 = self.lif2.init_synaptic()
        for _ in range(3):
            cur1 = self.fc1(x)
            spk1, mem1 = self.lif1(cur1, mem1)
            spk2, syn2, mem2 = self.lif2(self.fc2(spk1 + cur1), syn2, mem2)
        return spk2


def test_class_based_net_matches_its_own_forward():
    net = TutorialNet().double()
    x = np.random.default_rng(15).normal(0.5, 1.0, (BATCH, 10))
    with torch.no_grad():
        spk, mem = net(torch.from_numpy(x))
    g = from_snntorch(net, (10,))
    assert any("same input" in a for a in g.assumptions)
    res = run(g, np.broadcast_to(x, (T,) + x.shape), probes=["lif2.v"], record_spikes=True)
    assert 0.05 < spk.numpy().mean() < 0.95
    np.testing.assert_array_equal(res.probes["lif2.out"], spk.numpy())
    np.testing.assert_array_equal(res.outputs["output"], spk.numpy())
    np.testing.assert_allclose(res.probes["lif2.v"], mem.numpy(), atol=1e-5, rtol=0)


def test_class_based_net_not_a_chain_is_rejected():
    with pytest.raises(UnsupportedError, match="not a plain chain") as err:
        from_snntorch(SkipNet(), (10,))
    assert err.value.node == "fc2"


# ------------------------------------------------------------------------------------------
# what is rejected
# ------------------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:Inhibition is an unstable feature")
@pytest.mark.parametrize("layer,match", [
    (lambda: snn.Leaky(beta=0.9, graded_spikes_factor=2.0), "graded_spikes_factor"),
    (lambda: snn.Leaky(beta=0.9, inhibition=True), "inhibition"),
    (lambda: snn.Leaky(beta=0.9, state_quant=lambda m: m), "state_quant"),
    (lambda: snn.Leaky(beta=0.9, threshold=-0.5), "negative threshold"),
    (lambda: snn.Alpha(alpha=0.9, beta=0.8), "not supported"),
    (lambda: nn.ReLU(), "not supported"),
])
def test_rejected_layers_name_the_module(layer, match):
    net = nn.Sequential(nn.Linear(4, 6), layer())
    with pytest.raises(UnsupportedError, match=match) as err:
        from_snntorch(net, (4,))
    assert err.value.node == "1"


def test_shared_layer_is_rejected():
    lin = nn.Linear(4, 4)
    with pytest.raises(UnsupportedError, match="used twice") as err:
        from_snntorch(nn.Sequential(lin, snn.Leaky(beta=0.5), lin), (4,))
    assert err.value.node == "2"


def test_linear_on_image_needs_flatten():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Linear(6, 4))
    with pytest.raises(UnsupportedError, match="Flatten") as err:
        from_snntorch(net, (1, 8, 8))
    assert err.value.node == "1"


def test_recorded_assumptions_and_bias_free_linear():
    g = from_snntorch(nn.Sequential(nn.Linear(3, 2, bias=False), snn.Leaky(beta=0.5)), (3,), dt=1e-3)
    assert type(g.nodes["0"]).__name__ == "Linear"
    assert g.dt == 1e-3 and g.discretization == "euler"
    np.testing.assert_allclose(g.nodes["1"].tau, 2e-3)
    assert any("dt=0.001" in a for a in g.assumptions)


# ------------------------------------------------------------------------------------------
# load_snntorch_reference
# ------------------------------------------------------------------------------------------
FACTORY = textwrap.dedent("""
    import torch.nn as nn
    import snntorch as snn

    def make():
        return nn.Sequential(nn.Linear(3, 4), snn.Leaky(beta=0.5, init_hidden=True))

    ready = make()
    number = 3

    def not_a_module():
        return 42
""")


def test_load_reference_from_file_and_module(tmp_path, monkeypatch):
    src = tmp_path / "mynet.py"
    src.write_text(FACTORY)
    net = load_snntorch_reference(f"{src}:make")
    assert isinstance(net, nn.Sequential) and not net.training
    assert isinstance(load_snntorch_reference(f"{src}:ready"), nn.Sequential)
    weights = tmp_path / "w.pt"
    state = net.state_dict()
    state["0.weight"] = torch.full((4, 3), 0.25)
    torch.save(state, weights)
    loaded = load_snntorch_reference(f"{src}:make", str(weights))
    assert torch.equal(loaded[0].weight, torch.full((4, 3), 0.25))
    monkeypatch.syspath_prepend(str(tmp_path))
    assert isinstance(load_snntorch_reference("mynet:make"), nn.Sequential)


def test_load_reference_errors_name_the_file(tmp_path):
    src = tmp_path / "mynet.py"
    src.write_text(FACTORY)
    cases = [
        (f"{tmp_path / 'missing.py'}:make", None, "missing.py", "no such file"),
        (f"{src}:nope", None, "mynet.py", "no attribute 'nope'"),
        (f"{src}:number", None, "mynet.py", "neither an nn.Module"),
        (f"{src}:not_a_module", None, "mynet.py", "not a torch.nn.Module"),
        ("no_such_package_xyz.mod:make", None, "no_such_package_xyz", "cannot import"),
        (f"{src}", None, "mynet.py", "expected"),
        (f"{src}:make", str(tmp_path / "nothere.pt"), "nothere.pt", "no such weights file"),
    ]
    bad = tmp_path / "bad.pt"
    torch.save({"0.weight": torch.zeros(2, 2)}, bad)
    cases.append((f"{src}:make", str(bad), "bad.pt", "does not fit"))
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a pickle")
    cases.append((f"{src}:make", str(junk), "junk.pt", "cannot read"))
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('boom')\n")
    cases.append((f"{broken}:make", None, "broken.py", "boom"))
    for spec, weights, name, words in cases:
        with pytest.raises(NeuroCompileError) as err:
            load_snntorch_reference(spec, weights)
        assert name in str(err.value) and words in str(err.value), (spec, str(err.value))


def test_module_imports_without_torch():
    code = textwrap.dedent("""
        import sys
        sys.modules['torch'] = None
        sys.modules['snntorch'] = None
        import neurocompile.frontends.snntorch as m
        from neurocompile.errors import NeuroCompileError
        try:
            m.from_snntorch(object(), (3,))
        except NeuroCompileError as err:
            print('ok', err)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("ok") and "torch" in out.stdout
