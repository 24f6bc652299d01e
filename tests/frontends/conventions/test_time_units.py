"""Time constants that cannot fit dt: named errors or warnings on every target, never internal."""
from __future__ import annotations

import numpy as np
import pytest

nir = pytest.importorskip("nir")


def _cuba_file(path, tau):
    n = 4
    nodes = {"input": nir.Input(input_type={"input": np.array([3])}),
             "fc": nir.Affine(weight=np.ones((n, 3)), bias=np.zeros(n)),
             "lif": nir.CubaLIF(tau_syn=np.full(n, tau), tau_mem=np.full(n, tau), r=np.ones(n), v_leak=np.zeros(n),
                                v_threshold=np.ones(n), w_in=np.ones(n)),
             "output": nir.Output(output_type={"output": np.array([n])})}
    nir.write(str(path), nir.NIRGraph(nodes=nodes, edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")],
                                      type_check=False))


@pytest.mark.parametrize("target", ["float", "loihi2", "spinnaker"])
def test_time_constants_in_steps_read_as_seconds(tmp_path, target):
    """tau = 20 (steps, as sinabs/spyx write it) at dt = 1e-4 s: a warning everywhere, and a named
    error where the target cannot represent the decay."""
    import neurocompile as nc
    from neurocompile.errors import NeuroCompileError

    _cuba_file(tmp_path / "s.nir", 20.0)
    g = nc.load_model(tmp_path / "s.nir")
    warn = [a for a in g.assumptions if a.startswith("WARNING")]
    assert warn and "node 'lif'" in warn[0] and "tau_syn = 20 s" in warn[0] and "--convention" in warn[0]
    try:
        nc.compile(tmp_path / "s.nir", target)
    except NeuroCompileError as err:
        msg = str(err)
        assert target != "float"
        assert "'lif'" in msg and "20 s" in msg and "dt = 0.0001 s" in msg and "--convention" in msg
        assert "du=-1" not in msg


@pytest.mark.parametrize("target", ["float", "loihi2", "spinnaker"])
def test_dt_longer_than_tau_is_a_named_error(tmp_path, target):
    import neurocompile as nc
    from neurocompile.errors import NeuroCompileError

    _cuba_file(tmp_path / "n.nir", 1e-5)          # norse's dt*tau at dt = 1e-3
    with pytest.raises(NeuroCompileError) as exc:
        nc.compile(tmp_path / "n.nir", target)
    msg = str(exc.value)
    assert "node 'lif'" in msg and "1e-05 s is shorter than dt = 0.0001 s" in msg and "norse" in msg
    art = nc.compile(tmp_path / "n.nir", "float", convention="norse")
    assert art.graph.dt == 1e-3


def test_sinabs_convention_makes_the_file_fire(tmp_path):
    import neurocompile as nc

    _cuba_file(tmp_path / "s.nir", 5.0)
    x = np.ones((40, 1, 3))
    silent = nc.run(nc.compile(tmp_path / "s.nir", "float"), x).output
    fired = nc.run(nc.compile(tmp_path / "s.nir", "float", convention="sinabs"), x).output
    assert silent.sum() == 0 and fired.sum() > 0
