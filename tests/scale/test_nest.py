"""``spinnaker:nest``: the artifact's PyNN program on NEST 3 (pyNN.nest), a float cross-check
compared through the float graph in validate, and sharded like any runner."""
from __future__ import annotations

import numpy as np
import pytest
from scale_fixtures import *  # noqa: F403 - the fixtures of this folder

import neurocompile as nc
from neurocompile.targets.registry import resolve_run
from neurocompile.validate import validate

pytest.importorskip("nest", reason="pip install 'neurocompile[nest]'")
pytest.importorskip("pyNN")


def test_nest_is_a_spinnaker_runner():
    target, runner = resolve_run("spinnaker:nest")
    assert target.name == "spinnaker" and runner.name == "nest" and runner.exact is False
    assert runner.available()[0]


def test_nest_close_to_the_emulator_and_the_float_graph(spin_artifact, digits_data):
    x, y = digits_data
    x = x[:, :8]
    probes = ["1.v", "3.v"]
    nest = nc.run(spin_artifact, x, on="nest", probes=probes)
    emu = nc.run(spin_artifact, x, probes=probes)
    flt = nc.run(nc.compile("zoo:digits", target="float"), x, probes=probes + ["1", "3"])
    for layer in ("1", "3"):
        a, b = nest.probes[f"{layer}.out"], emu.probes[f"{layer}.out"]
        assert a.shape == b.shape
        assert abs(a.sum() - b.sum()) <= 0.02 * b.sum() + 2           # spike counts within 2 %
        assert (a == b).mean() > 0.97                                  # and mostly the same spikes
        dv_nest = np.abs(nest.probes[f"{layer}.v"] - flt.probes[f"{layer}.v"]).mean()
        dv_emu = np.abs(emu.probes[f"{layer}.v"] - flt.probes[f"{layer}.v"]).mean()
        assert dv_nest < 2 * dv_emu + 0.05                             # float-level, like the emulator
    np.testing.assert_array_equal(nest.output.sum(0).argmax(-1), flt.output.sum(0).argmax(-1))


def test_validate_float_spinnaker_nest(spin_artifact, digits_data, tmp_path):
    x, y = digits_data
    x, y = x[:, :6], y[:6]
    rep = validate(str(spin_artifact), x, ["float", "spinnaker", "spinnaker:nest"], labels=y,
                   report_dir=tmp_path / "rep")
    assert rep["ok"] and rep["exact"] == []                          # nest is not bit-exact: no exact pair
    assert set(rep["float_vs_quantized"]) == {"float vs spinnaker", "float vs spinnaker:nest"}
    assert rep["float_vs_quantized"]["float vs spinnaker:nest"]["class_agreement"] == 1.0
    assert "spinnaker:nest" in (tmp_path / "rep" / "report.md").read_text()


def test_nest_sharded_equals_one_process(spin_artifact, digits_data):
    from neurocompile.parallel import run_sharded

    x = digits_data[0][:, :6]
    one = nc.run(spin_artifact, x, on="nest")
    two = run_sharded(spin_artifact, x, on="nest", workers=2, shard_size=3)
    np.testing.assert_array_equal(one.output, two.output)
