"""Million-neuron conv nets on Loihi 2 (issue 14): structure kept from the NIR file to the chip.

* a scaled-down event-camera net (strided conv chain, a conv followed by pooling, Flatten, dense
  readout) read from NIR: every conv stays a ``LoihiConv``, the readout is the Linear's own
  matrix, and the emulator (numpy reference and numba kernel) equals Lava on every spike, u and
  v of every group;
* the 983k-neuron net: its lowering stores kernels and the readout, never a dense matrix between
  conv layers or a Flatten identity, within a 1 GiB memory budget; the partition tiles the conv
  layers by rows and reports per core and per chip; a budget too small is refused with the
  figures before anything is allocated (no MemoryError).

Speed goals are in ``benchmarks/bench_scale.py``, not here.
"""
import numpy as np
import pytest

from convnets import write_conv_net
from lava_util import require_lava
from neurocompile import api
from neurocompile.errors import NeuroCompileError
from neurocompile.targets.loihi2 import emulator as reference
from neurocompile.targets.loihi2 import emulator_fast as fast
from neurocompile.targets.loihi2.program import LoihiConv, LoihiDense
from neurocompile.targets.loihi2.target import spikes_in


def compile_nir(path, **kw):
    return api.compile(path, target="loihi2", dt=1e-3, reset="zero", **kw)


def chip_input(art, T, B, rate, seed=1):
    x = (np.random.default_rng(seed).random((T, B, 2) + tuple(art.graph.metadata["shapes"]["input"][1:])) < rate)
    xs = spikes_in(art, x.astype(float))
    return xs.astype(bool)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    path = write_conv_net(tmp_path_factory.mktemp("nir") / "small.nir", 16, channels=(4, 8, 8), pool_after=(2,))
    return compile_nir(path)


def test_small_net_keeps_every_conv(small):
    prog = small.payload["program"]
    convs = {s.name: s for s in prog.synapses if isinstance(s, LoihiConv)}
    assert sorted(convs) == ["conv0", "conv1", "conv2"]
    assert convs["conv1"].stride == (2, 2) and convs["conv0"].stride == (1, 1)
    # conv2 (stride 2) then a 2x2 sum pool: one conv, kernel 5x5, stride 4
    assert convs["conv2"].weights.shape[2:] == (5, 5) and convs["conv2"].stride == (4, 4)
    assert small.graph.metadata["folded"]["conv2"] == ["conv2", "pool2"]
    dense = [s for s in prog.synapses if isinstance(s, LoihiDense) and s.src == "lif2"]
    assert len(dense) == 1 and dense[0].weights.shape == (10, 8 * 2 * 2)   # the readout, no identity


def test_small_net_emulator_equals_lava_on_every_spike_and_state(small):
    py = require_lava()
    from neurocompile.targets.loihi2.lava.host import run_in_lava

    prog = small.payload["program"]
    x = chip_input(small, 24, 1, 0.3)
    want = reference.run(prog, x)
    got_lava = run_in_lava(prog, x, python=py)
    for n in prog.neurons:
        assert want[n.name]["spikes"].sum() > 0, n.name
        assert set(want[n.name]) == ({"spikes", "u", "v"} if n.probe else {"spikes"}) == set(got_lava[n.name])
        for key in want[n.name]:
            np.testing.assert_array_equal(got_lava[n.name][key], want[n.name][key], err_msg=f"{n.name}.{key}")
    if fast.available():
        got = fast.run(prog, x)
        for n in prog.neurons:
            for key in want[n.name]:
                np.testing.assert_array_equal(got[n.name][key], want[n.name][key], err_msg=f"fast {n.name}.{key}")


# ------------------------------------------------------------------------ the 983k network
@pytest.fixture(scope="module")
def big_path(tmp_path_factory):
    return write_conv_net(tmp_path_factory.mktemp("nir") / "big.nir", 256)


def test_983k_net_lowers_without_dense_matrices(big_path, monkeypatch):
    monkeypatch.setenv("NEUROCOMPILE_MEMORY_BUDGET", "1G")   # a dense fold or identity would be refused
    art = compile_nir(big_path)
    prog = art.payload["program"]
    sizes = {n.name: n.size for n in prog.neurons}
    assert sum(sizes.values()) - sizes["_clock"] == 983_050
    convs = [s for s in prog.synapses if isinstance(s, LoihiConv)]
    assert [c.name for c in convs] == ["conv0", "conv1", "conv2", "conv3"]
    for c, (co, ci) in zip(convs, [(8, 2), (16, 8), (32, 16), (64, 32)]):
        assert c.weights.shape == (co, ci, 3, 3)                       # the kernel, nothing else
    dense = [s for s in prog.synapses if isinstance(s, LoihiDense)]
    n_clock = sizes["_clock"]
    for d in dense:                                     # the readout, and bias-clock columns
        if d.src == "_clock":
            assert d.weights.shape == (sizes[d.dst], n_clock)
        else:
            assert d.name == "flat" and d.weights.shape == (10, 65536)    # flat -> fc, folded
    stored = sum(np.size(s.weights) for s in prog.synapses)
    res = art.report["resources"]
    assert res["connections"] > 66_000_000 and stored < 12 * 983_050   # stored: linear in the neurons
    # cores: conv layers tiled by rows (all channels), one chip, per-core and per-chip figures
    assert res["chips"] == 1 and res["cores"] == 121 and res["inter_chip_routes"] == 0
    tiles = [g for c in res["per_core"] for g in c["groups"] if g["group"] == "lif0"]
    assert len(tiles) == 64 and all(t["channels"] == [0, 8] and t["rows"][1] - t["rows"][0] == 4 for t in tiles)
    assert all(c["n_neurons"] <= 8192 and c["synapses"] <= 937_500 for c in res["per_core"])
    assert res["per_chip"][0]["neurons"] == sum(sizes.values())


def test_983k_net_over_budget_is_refused_with_figures(big_path, monkeypatch):
    monkeypatch.setenv("NEUROCOMPILE_MEMORY_BUDGET", "64M")
    with pytest.raises(NeuroCompileError, match=r"needs .* for lowering to Loihi 2 .* budget 64\.0 MiB"):
        compile_nir(big_path)


def test_emulator_run_over_budget_is_refused_before_allocating(small, monkeypatch):
    prog = small.payload["program"]
    x = np.zeros((5000, 64, prog.n_inputs), bool)
    monkeypatch.setenv("NEUROCOMPILE_MEMORY_BUDGET", "32M")
    with pytest.raises(NeuroCompileError, match=r"emulating the Loihi 2 program .* 5000 steps x batch 64"):
        reference.run(prog, x)
    if fast.available():
        with pytest.raises(NeuroCompileError, match="recorded outputs"):
            fast.run(prog, x)


def test_partition_over_chips_keeps_routes_low(big_path):
    from neurocompile.passes.base import PassContext
    from neurocompile.targets.loihi2.partition import PartitionLoihi2
    from neurocompile.targets.registry import get_target

    tgt = get_target("loihi2")
    opts = tgt.Options.from_dict({"chips": 8}, "loihi2")
    ctx = PassContext(options=opts)
    v = api.load_model(big_path, dt=1e-3, reset="zero")
    for p in tgt.passes(opts)[:-1]:
        v = p.run(v, ctx)
    rates = {g: 0.05 for g in ("lif0", "lif1", "lif2", "lif3")}
    PartitionLoihi2(cores_per_chip=32, rates=rates).run(v, ctx)
    res = ctx.report["resources"]
    assert res["chips"] == 4 and sum(c["cores"] for c in res["per_chip"]) == 121
    assert all(c["cores"] <= 32 for c in res["per_chip"])
    crossing = res["spikes_crossing_chips_per_step"]
    # program order (layers chip after chip) would send every spike of a layer cut by a chip
    # boundary across; the spatial split sends the halos and the readout only
    assert crossing["upper_bound"] == res["inter_chip_routes"] < 0.1 * res["spike_routes"]
    assert 0 < crossing["expected"] <= 0.05 * crossing["upper_bound"] + 1e-9


def test_spikes_crossing_chips_from_calibration(small):
    from neurocompile.passes.base import PassContext
    from neurocompile.targets.loihi2.partition import PartitionLoihi2
    from neurocompile.targets.registry import get_target

    tgt = get_target("loihi2")
    calib = (np.random.default_rng(2).random((12, 2, 2, 16, 16)) < 0.3).astype(float)
    opts = tgt.Options.from_dict({"chips": 4, "calibration": calib}, "loihi2")
    ctx = PassContext(options=opts)
    v = small.graph
    lowered = tgt.passes(opts)[-2].run(v, ctx)
    PartitionLoihi2(cores_per_chip=1, neurons_per_core=512).run(lowered, ctx)
    res = ctx.report["resources"]
    crossing = res["spikes_crossing_chips_per_step"]
    assert res["chips"] > 1 and crossing["upper_bound"] > 0 and crossing["rates_from"] == "calibration"
    assert 0 < crossing["expected"] < crossing["upper_bound"]
