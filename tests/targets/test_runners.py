"""Runners are picked by name: the artifact's default, a runner name, the target name (the chip).

Regression: ``nc.run(art, x, on="emulator")`` on an emulator artifact used to try the Loihi chip
("hardware runtime is not installed"), and so did ``on="lava"`` on a lava artifact.
"""
import json
import os

import numpy as np
import pytest

import neurocompile as nc
from conftest import NIR_PAPER, paper_lif_input
from neurocompile.errors import BackendError, NeuroCompileError
from neurocompile.frontends.nir import read_nir
from neurocompile.targets.registry import get_target, resolve_run

PAPER_SPIKES = [460, 510, 710, 760]   # the NIR paper's single LIF neuron, exact and on Loihi


def spikes(result):
    return np.flatnonzero(result.output[:, 0, 0]).tolist()


@pytest.fixture(scope="module")
def lif():
    return read_nir(NIR_PAPER / "lif_norse.nir")


def test_emulator_artifact_runs_on_emulator_by_name(lif):
    art = nc.compile(lif, target="emulator")
    x = paper_lif_input()
    assert spikes(nc.run(art, x)) == PAPER_SPIKES
    assert spikes(nc.run(art, x, on="emulator")) == PAPER_SPIKES


def test_naming_the_family_means_the_chip(lif, monkeypatch):
    monkeypatch.setenv("NEUROCOMPILE_LAVA_PYTHON", "/nonexistent/python")
    art = nc.compile(lif, target="emulator")
    for on in ("loihi2", "chip", "loihi2-hw"):
        with pytest.raises(BackendError, match="hardware runtime is not installed"):
            nc.run(art, paper_lif_input(), on=on)
    with pytest.raises(NeuroCompileError, match="cannot run on 'spinnaker'"):
        nc.run(art, paper_lif_input(), on="spinnaker")


def test_lava_artifact_runs_on_lava_by_name(lif):
    if not get_target("lava").runners["lava"].available()[0]:
        if os.environ.get("NEUROCOMPILE_REQUIRE_LAVA") == "1":
            pytest.fail("Lava environment missing (NEUROCOMPILE_REQUIRE_LAVA=1)")
        pytest.skip("no Lava environment")
    art = nc.compile(lif, target="lava")
    x = paper_lif_input()
    assert spikes(nc.run(art, x)) == PAPER_SPIKES          # its default runner: Lava
    assert spikes(nc.run(art, x, on="lava")) == PAPER_SPIKES
    assert spikes(nc.run(art, x, on="emulator")) == PAPER_SPIKES


def test_spinnaker_runners(lif):
    art = nc.compile(lif, target="spinnaker")
    assert spikes(nc.run(art, paper_lif_input(), on="emulator")) == PAPER_SPIKES
    with pytest.raises(BackendError, match="machineName"):
        nc.run(art, paper_lif_input(), on="spinnaker")     # the board, none configured here


def test_resolve_run_names():
    assert [(t.name, r.name) for t, r in (resolve_run(n) for n in
            ("emulator", "lava", "loihi2", "loihi2:chip", "spinnaker", "spinnaker:board", "spinnaker-board"))] == [
        ("emulator", "emulator"), ("lava", "lava"), ("loihi2", "emulator"), ("loihi2", "chip"),
        ("spinnaker", "emulator"), ("spinnaker", "board"), ("spinnaker", "board")]
    with pytest.raises(BackendError, match="no runner 'board'"):
        resolve_run("loihi2:board")


def test_dump_ir_shows_the_program_and_placement_levels(lif, tmp_path):
    nc.compile(lif, target="loihi2", dump_ir=tmp_path / "dump")
    levels = sorted(p.name for p in (tmp_path / "dump").iterdir() if p.is_dir())
    assert levels[-2:] == [f"{len(levels) - 2:02d}-quantize-loihi2", f"{len(levels) - 1:02d}-partition-loihi2"]
    program = json.loads((tmp_path / "dump" / levels[-2] / "program" / "program.json").read_text())
    assert [g["name"] for g in program["neurons"]] == ["1"]
    placement = json.loads((tmp_path / "dump" / levels[-1] / "placement.json").read_text())
    assert placement["resources"]["cores"] == 1 and placement["resources"]["neurons"] == 1
    nc.compile(lif, target="spinnaker", dump_ir=tmp_path / "dump-spinnaker")
    last = sorted(p for p in (tmp_path / "dump-spinnaker").iterdir() if p.is_dir())[-1]
    assert last.name.endswith("quantize-spinnaker") and (last / "program.json").is_file()


def test_unknown_option_is_named(lif):
    with pytest.raises(NeuroCompileError, match=r"unknown compile option\(s\) \['chips'\] for target 'float'"):
        nc.compile(lif, target="float", chips=2)
