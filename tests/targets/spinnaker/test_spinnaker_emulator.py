"""SpiNNaker profile, part 2: the compiled program on the fixed-point emulator against the float
reference, the NIR paper's LIF, artifacts, errors and the board configuration."""
import numpy as np
import pytest

from conftest import NIR_PAPER, paper_lif_input
from neurocompile.errors import BackendError, NeuroCompileError, UnsupportedError
from neurocompile.frontends.nir import read_nir
from neurocompile.ir import interpreter as reference
from neurocompile.ir import nodes as N
from neurocompile.ir.graph import Graph
from neurocompile.targets import registry
from neurocompile.targets.spinnaker import SpiNNakerBackend


@pytest.fixture(autouse=True)
def _registered(monkeypatch):
    monkeypatch.setitem(registry.BUILTIN, "spinnaker", "neurocompile.targets.spinnaker:SpiNNakerBackend")


def small_net(seed=1):
    """16 inputs -> LIF(24, delta synapse) -> Affine with bias -> recurrent CubaLIF(8)."""
    rng = np.random.default_rng(seed)
    g = Graph(dt=1e-3, discretization="euler")
    g.add("in", N.Input(shape=(16,)))
    g.add("w1", N.Linear(weight=rng.normal(0.5, 0.3, (24, 16))))
    g.add("lif", N.LIF(tau=np.full(24, 5e-3), v_threshold=1.0))
    g.add("w2", N.Affine(weight=rng.normal(0.5, 0.5, (8, 24)), bias=rng.normal(0.05, 0.05, 8)))
    g.add("cuba", N.CubaLIF(tau_syn=np.full(8, 3e-3), tau_mem=np.full(8, 8e-3), v_threshold=1.0,
                            refractory=1))
    g.add("wr", N.Linear(weight=rng.normal(-0.2, 0.2, (8, 8))))
    g.add("out", N.Output())
    g.chain("in", "w1", "lif", "w2", "cuba", "out")
    g.connect("cuba", "wr")
    g.connect("wr", "cuba")
    x = (rng.random((200, 3, 16)) < 0.2).astype(float)
    return g, x


def test_emulator_tracks_the_float_reference():
    """Tolerance: until the first step where any spike differs, the dequantized membrane of every
    neuron is within 0.2% of the threshold of the float64 reference (the error is the 16-bit
    weights' LSB and the 15-bit decay factors); spike counts per neuron within 2 over 200 steps
    and 3 samples, totals within 1%."""
    g, x = small_net()
    b = SpiNNakerBackend()
    art = b.compile(g)
    rep = art.report["spinnaker"]
    assert rep["latency"] == {"lif": 1, "cuba": 2}
    assert rep["groups"]["lif"]["model"] == "IF_curr_delta"
    assert rep["groups"]["cuba"]["model"] == "IF_curr_exp"
    probes = ["lif.v", "cuba.v", "cuba.i"]
    ref = reference.run(art.graph, x, probes=probes, record_spikes=True)
    res = b.run(art, x, probes=probes)
    first = len(x)
    for n in ("lif", "cuba"):
        diff = np.nonzero((res.probes[f"{n}.out"] != ref.probes[f"{n}.out"]).any(axis=(1, 2)))[0]
        first = min([first] + diff[:1].tolist())
    assert first > 20
    for n in ("lif", "cuba"):
        got, want = res.probes[f"{n}.out"], ref.probes[f"{n}.out"]
        assert np.abs(res.probes[f"{n}.v"][:first] - ref.probes[f"{n}.v"][:first]).max() < 2e-3
        assert np.abs(got.sum(0) - want.sum(0)).max() <= 2
        assert abs(got.sum() - want.sum()) <= 0.01 * want.sum()
        assert want.sum() > 100
    np.testing.assert_allclose(res.probes["cuba.i"][:20], ref.probes["cuba.i"][:20], atol=5e-3)
    np.testing.assert_array_equal(res.output, res.probes["cuba.out"])


def test_nir_paper_lif_spike_times():
    """One graph step = one 1 ms tick. The population runs one tick behind the graph (the
    SpikeSourceArray -> neuron hop needs a delay of >= 1 tick), so the chip fires at ticks
    461, 511, 711, 761 (the same +1 as Loihi's Dense hop); aligned back to graph steps that is the
    paper's 460, 510, 710, 760 exactly."""
    b = SpiNNakerBackend()
    art = b.compile(read_nir(NIR_PAPER / "lif_norse.nir"))
    x = paper_lif_input()
    res = b.run(art, x)
    assert np.nonzero(res.output[:, 0, 0])[0].tolist() == [460, 510, 710, 760]
    assert art.report["spinnaker"]["output_shift_ticks"] == {"output": 1}
    from neurocompile.targets.spinnaker.emulator import run_program

    chip = run_program(art.payload, x[:, None, :])
    assert np.nonzero(chip.spikes["1"][:, 0, 0])[0].tolist() == [461, 511, 711, 761]
    # tau = 25 steps: exp_TC is the accum closest to beta = 1 - 1/25 = 0.96
    assert abs(art.report["spinnaker"]["groups"]["1"]["beta_chip"] - 0.96) < 2 ** -15


def test_artifact_round_trip_and_script(tmp_path):
    g, x = small_net()
    b = SpiNNakerBackend()
    art = b.compile(g)
    path = art.save(tmp_path / "art")
    files = sorted(p.name for p in (path / "spinnaker").iterdir())
    assert files == ["program.json", "program.npz", "run_pynn.py"]
    with np.load(path / "spinnaker" / "program.npz", allow_pickle=False) as z:
        assert all(z[k].dtype != object for k in z.files)
    from neurocompile.targets.artifact import load_artifact

    art2 = load_artifact(path)
    a = b.run(art, x[:50])
    c = b.run(art2, x[:50])
    np.testing.assert_array_equal(a.output, c.output)
    compile(open(path / "spinnaker" / "run_pynn.py").read(), "run_pynn.py", "exec")


def test_inputs_must_be_spikes():
    b = SpiNNakerBackend()
    art = b.compile(read_nir(NIR_PAPER / "lif_norse.nir"))
    with pytest.raises(NeuroCompileError, match="takes 0/1 spikes"):
        b.run(art, np.full((10, 1), 0.5))


def test_unsupported_semantics_name_the_node():
    g = read_nir(NIR_PAPER / "braille_noDelay_noBias_subtract.nir", reset="subtract")
    with pytest.raises(UnsupportedError, match="subtraction") as err:
        SpiNNakerBackend().compile(g)
    assert err.value.node == "lif1.lif"
    h = Graph(dt=1e-3)
    h.add("in", N.Input(shape=(2,)))
    h.add("w", N.Linear(weight=np.eye(2)))
    h.add("li", N.LI(tau=np.full(2, 5e-3)))
    h.add("out", N.Output())
    h.chain("in", "w", "li", "out")
    with pytest.raises(UnsupportedError) as err:
        SpiNNakerBackend().compile(h)
    assert err.value.node == "li"


def test_board_configuration(tmp_path):
    import os
    from pathlib import Path

    b = SpiNNakerBackend()
    assert b.available()[0]  # the emulator profile always runs
    ok, why = b.chip_status()
    assert not ok and "machineName" in why
    with pytest.raises(BackendError, match="machineName"):
        b.run(b.compile(read_nir(NIR_PAPER / "lif_norse.nir")), paper_lif_input()[:20], on="spinnaker")
    home = Path(os.path.expanduser("~"))
    (home / ".spynnaker.cfg").write_text("[Machine]\nvirtual_board = True\nversion = 5\n")
    ok, why = b.chip_status()
    assert not ok and "virtual" in why
    art = b.compile(read_nir(NIR_PAPER / "lif_norse.nir"))
    with pytest.raises(BackendError, match="virtual"):
        b.run(art, paper_lif_input()[:20], on="board")
    (home / ".spynnaker.cfg").write_text("[Machine]\nmachineName = 192.0.2.1\nversion = 5\n")
    ok, why = b.chip_status()
    import importlib.util

    assert ok == (importlib.util.find_spec("spynnaker") is not None)
