"""Direct (analog) input on Loihi 2: the host sends graded spikes (``num_message_bits``).

Oracles: Lava's fixed_pt models (every spike and u/v equal to the emulator's, dense and
convolutional first layers), snnTorch's forward pass of the same network (spike counts close),
and hand-derived payloads.
"""
import numpy as np
import pytest
import snntorch as snn
import torch
from torch import nn

from neurocompile import api
from neurocompile.errors import NeuroCompileError
from neurocompile.frontends.snntorch import from_snntorch
from tests.lava_util import require_lava

T = 12


def _net(conv: bool):
    torch.manual_seed(1)
    leaky = dict(beta=0.9, reset_mechanism="zero", init_hidden=True)
    if conv:
        net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), snn.Leaky(**leaky), nn.Conv2d(4, 4, 3, stride=2, padding=1),
                            snn.Leaky(**leaky), nn.Flatten(), nn.Linear(4 * 3 * 3, 5), snn.Leaky(**leaky))
        shape = (1, 6, 6)
    else:
        net = nn.Sequential(nn.Linear(20, 16), snn.Leaky(**leaky), nn.Linear(16, 5), snn.Leaky(**leaky))
        shape = (20,)
    with torch.no_grad():
        for m in net:
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                m.weight.mul_(3.0)
    return net, shape


def _samples(shape, n, seed):
    rng = np.random.default_rng(seed)
    return np.repeat(rng.uniform(0, 1, (1, n) + shape), T, axis=0)


def _snntorch_counts(net, x):
    for m in net:
        if isinstance(m, snn.SpikingNeuron):
            m.mem = torch.zeros(0)
    with torch.no_grad():
        out = [net(torch.as_tensor(x[t], dtype=torch.float32)) for t in range(x.shape[0])]
    return torch.stack(out).sum(0).numpy()


@pytest.mark.parametrize("conv", [False, True], ids=["dense", "conv"])
def test_direct_input_emulator_equals_lava_and_tracks_snntorch(conv):
    net, shape = _net(conv)
    graph = from_snntorch(net, shape, dt=1.0)
    art = api.compile(graph, "loihi2", calibration=_samples(shape, 16, 0))
    program = art.payload["program"]
    assert art.report["input"]["encoding"] == "current"
    assert program.input_message_bits == 8
    first = [s for s in program.synapses if s.src == "input"]
    assert first and all(s.num_message_bits == 8 for s in first)
    x = _samples(shape, 16, 1)
    groups = [n.name for n in program.neurons if not n.name.startswith("_")]
    probes = [f"{g}.{v}" for g in groups for v in ("u", "v")]
    emu = api.run(art, x[:, :2], probes=probes)
    require_lava()
    lava = api.run(art, x[:, :2], probes=probes, on="lava")
    for p in probes:
        assert np.array_equal(emu.probes[p + ":raw"], lava.probes[p + ":raw"]), p
    for o in emu.outputs:
        assert np.array_equal(emu.outputs[o], lava.outputs[o])
    # the quantized network tracks the float graph (which equals snnTorch's forward pass of the
    # module spike for spike: checked first). Measured over 32 samples: per-neuron spike counts
    # of the first layer differ by 0.6 % (dense) / 2 % (conv) of its spikes, every layer's total
    # by < 8 % (7 % for the conv readout: single flips spread through the layers above).
    x = _samples(shape, 32, 1)
    ref = api.run(api.compile(graph, "float"), x)
    (o,) = ref.outputs
    assert np.array_equal(ref.outputs[o].sum(0).reshape(-1), _snntorch_counts(net, x).reshape(-1))
    emu = api.run(art, x)
    first = groups[0] + ".out"
    a, b = emu.probes[first].sum(0), ref.probes[first].sum(0)
    assert b.sum() > 1000 and np.abs(a - b).sum() <= 0.03 * b.sum()
    for g in groups:
        a, b = emu.probes[g + ".out"].sum(), ref.probes[g + ".out"].sum()
        assert b > 50 and abs(a - b) <= 0.08 * b, g


def test_direct_input_payloads_are_the_rounded_scaled_values():
    net, shape = _net(False)
    graph = from_snntorch(net, shape, dt=1.0)
    calib = _samples(shape, 8, 0)  # values in [0, 1): largest power of two with 1 * s <= 127 is 64
    art = api.compile(graph, "emulator", calibration=calib, input_bits=8)
    rep = art.report["input"]
    assert rep["scale"] == 64.0 and rep["range"] == 127 / 64
    assert rep["max_abs_error"] <= 0.5 / 64
    from neurocompile.targets.loihi2.target import spikes_in
    x = np.zeros((1, 1, 20))
    x[0, 0, :4] = [0.5, 0.25, 1 / 128, 3 / 128]   # 32, 16, 0.5 -> 0 (half to even), 1.5 -> 2
    assert spikes_in(art, x)[0, 0, :4].tolist() == [32, 16, 0, 2]
    with pytest.raises(NeuroCompileError, match="--input-bits"):
        spikes_in(art, np.full((1, 1, 20), 2.5))


def test_spike_artifact_refuses_analog_input_with_the_way_out():
    net, shape = _net(False)
    graph = from_snntorch(net, shape, dt=1.0)
    spikes = (np.random.default_rng(0).uniform(size=(T, 4) + shape) < 0.3).astype(float)
    art = api.compile(graph, "emulator", calibration=spikes)
    assert art.report["input"]["encoding"] == "spikes"
    with pytest.raises(NeuroCompileError, match="neurocompile encode .*--input-encoding current"):
        api.run(art, _samples(shape, 1, 2))
    forced = api.compile(graph, "emulator", calibration=_samples(shape, 4, 0), input_encoding="spikes")
    assert forced.payload["program"].input_message_bits == 0


def test_current_input_without_calibration_names_the_option():
    net, shape = _net(False)
    graph = from_snntorch(net, shape, dt=1.0)
    with pytest.raises(NeuroCompileError, match="--calibration"):
        api.compile(graph, "emulator", input_encoding="current")
