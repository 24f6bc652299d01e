"""Outputs never replace what is not ours: users' directories, the inputs, the current directory, /.

Each case is one of the data-loss reports of issue 16; every refusal is a one-line exit-2 error
that leaves the existing files byte for byte as they were.
"""
import json
import os
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import NIR_PAPER, paper_lif_input
from neurocompile.cli.main import cli
from neurocompile.errors import NeuroCompileError
from neurocompile.utils.outputs import claim_output

LIF = NIR_PAPER / "lif_norse.nir"


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def snapshot(path):
    """Every file under ``path`` with its bytes (to prove nothing changed)."""
    out = {}
    for root, _dirs, files in os.walk(path):
        for f in files:
            p = os.path.join(root, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, path)] = fh.read()
    return out


@pytest.fixture
def user_dir(tmp_path):
    d = tmp_path / "mine"
    d.mkdir()
    (d / "thesis.tex").write_text("years of work")
    (d / "sub").mkdir()
    (d / "sub" / "data.csv").write_text("1,2,3")
    return d


def refused(r, *words):
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1, r.output
    for w in words:
        assert w in r.output, r.output


def test_compile_refuses_a_foreign_directory(user_dir):
    before = snapshot(user_dir)
    refused(invoke("compile", LIF, "-o", user_dir), "mine", "not a neurocompile artifact")
    assert snapshot(user_dir) == before
    refused(invoke("compile", LIF, "-o", user_dir, "--force"), "not a neurocompile artifact")
    assert snapshot(user_dir) == before


def test_compile_refuses_the_models_own_directory(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(LIF, models / "net.nir")
    before = snapshot(models)
    refused(invoke("compile", models / "net.nir", "-o", models), "input")
    assert snapshot(models) == before


@pytest.mark.parametrize("out", [".", "./", "", "..", "/"])
def test_compile_refuses_cwd_parents_root_and_empty(tmp_path, monkeypatch, out):
    work = tmp_path / "work"
    (work / "inner").mkdir(parents=True)
    (work / "inner" / "keep.txt").write_text("keep")
    (work / "keep.txt").write_text("keep")
    monkeypatch.chdir(work / "inner")
    before = snapshot(work)
    refused(invoke("compile", LIF, "-o", out))
    assert snapshot(work) == before


def test_claim_output_refuses_root_and_home_and_symlinks(tmp_path, user_dir):
    with pytest.raises(NeuroCompileError, match="root"):
        claim_output("/", "artifact")
    with pytest.raises(NeuroCompileError, match="home"):
        claim_output(os.path.expanduser("~"), "artifact")
    link = tmp_path / "link"
    link.symlink_to(user_dir)
    with pytest.raises(NeuroCompileError, match="symbolic link"):
        claim_output(link, "artifact")


def test_compile_replaces_its_own_artifact_and_fills_an_empty_directory(tmp_path):
    out = tmp_path / "art"
    out.mkdir()
    assert invoke("compile", LIF, "-o", out).exit_code == 0
    assert json.loads((out / "manifest.json").read_text())["format"] == "neurocompile.artifact"
    (out / "stale.txt").write_text("from an old artifact")   # ours: the whole artifact is replaced
    assert invoke("compile", LIF, "-t", "float", "-o", out).exit_code == 0
    assert json.loads((out / "manifest.json").read_text())["target"] == "float"
    assert not (out / "stale.txt").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left behind


def test_compile_refuses_an_existing_file(tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("mine")
    refused(invoke("compile", LIF, "-o", f), "not a directory")
    assert f.read_text() == "mine"


def test_other_kind_needs_force(tmp_path):
    x = tmp_path / "x.npy"
    np.save(x, paper_lif_input())
    art = tmp_path / "art"
    assert invoke("compile", LIF, "-o", art).exit_code == 0
    rep = tmp_path / "rep"
    r = invoke("validate", art, "--input", x, "--targets", "float", "--report", rep)
    assert r.exit_code == 0, r.output
    assert json.loads((rep / "report.json").read_text())["format"] == "neurocompile.report"
    refused(invoke("compile", LIF, "-o", rep), "holds a neurocompile report", "--force")
    assert (rep / "report.json").exists()
    assert invoke("compile", LIF, "-o", rep, "--force").exit_code == 0
    assert (rep / "manifest.json").exists() and not (rep / "report.json").exists()


def test_validate_report_refuses_a_foreign_directory_before_running(tmp_path, user_dir):
    x = tmp_path / "x.npy"
    np.save(x, paper_lif_input())
    before = snapshot(user_dir)
    r = invoke("validate", LIF, "--input", x, "--targets", "float,emulator", "--report", user_dir)
    refused(r, "not a neurocompile report")
    assert "running" not in r.output
    assert snapshot(user_dir) == before


def test_zoo_data_refuses_a_foreign_directory(user_dir):
    before = snapshot(user_dir)
    refused(invoke("zoo-data", "digits", "-o", user_dir), "not a neurocompile data")
    assert snapshot(user_dir) == before


def test_run_output_replaces_only_its_own_npz(tmp_path):
    x = tmp_path / "x.npy"
    np.save(x, paper_lif_input())
    art = tmp_path / "art"
    assert invoke("compile", LIF, "-o", art).exit_code == 0
    mine = tmp_path / "mine.npz"
    np.savez(mine, weights=np.arange(3))
    refused(invoke("run", art, "--input", x, "-o", mine), "not a neurocompile output")
    with np.load(mine) as d:
        assert d["weights"].tolist() == [0, 1, 2]
    refused(invoke("run", art, "--input", x, "-o", x), "input")
    assert np.array_equal(np.load(x), paper_lif_input())
    out = tmp_path / "out.npz"
    for _ in range(2):   # a rerun replaces its own earlier output
        r = invoke("run", art, "--input", x, "-o", out)
        assert r.exit_code == 0, r.output
    with np.load(out, allow_pickle=False) as d:
        assert np.flatnonzero(d["output"][:, 0, 0]).tolist() == [460, 510, 710, 760]


def test_dump_ir_refuses_a_foreign_directory(tmp_path, user_dir):
    before = snapshot(user_dir)
    refused(invoke("compile", LIF, "-o", tmp_path / "art", "--dump-ir", user_dir), "not a neurocompile ir-dump")
    assert snapshot(user_dir) == before
    assert not (tmp_path / "art").exists()
    dump = tmp_path / "dump"
    for _ in range(2):
        assert invoke("compile", LIF, "-o", tmp_path / "art", "--dump-ir", dump).exit_code == 0
    assert (dump / "00-input" / "graph.json").exists()


def test_api_save_and_write_nir_check_too(tmp_path, user_dir):
    import neurocompile as nc
    from neurocompile.frontends.nir import write_nir

    graph = nc.load_model(str(LIF))
    art = nc.compile(graph, target="float")
    before = snapshot(user_dir)
    with pytest.raises(NeuroCompileError, match="not a neurocompile artifact"):
        art.save(user_dir)
    f = user_dir / "thesis.tex"
    with pytest.raises(NeuroCompileError, match="not a neurocompile output"):
        write_nir(graph, f)
    assert snapshot(user_dir) == before
    write_nir(graph, tmp_path / "new.nir")
    assert nc.load_model(str(tmp_path / "new.nir")).nodes.keys() == graph.nodes.keys()
    write_nir(graph, tmp_path / "new.nir")  # its own earlier file (root attribute marker) is replaced
    foreign = tmp_path / "paper.nir"
    foreign.write_bytes(LIF.read_bytes())   # a NIR file we did not write is not
    with pytest.raises(NeuroCompileError, match="not a neurocompile output"):
        write_nir(graph, foreign)
    assert foreign.read_bytes() == LIF.read_bytes()
