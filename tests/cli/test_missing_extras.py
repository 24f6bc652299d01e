"""A missing optional package names the extra that installs it (one line, exit 2)."""
import sys

from click.testing import CliRunner

from conftest import NIR_PAPER
from neurocompile.cli.main import cli


def test_compile_zoo_digits_without_torch_names_the_extra(monkeypatch, tmp_path):
    for mod in [m for m in sys.modules if m == "torch" or m.startswith(("torch.", "snntorch"))]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setitem(sys.modules, "torch", None)      # `import torch` now raises ModuleNotFoundError
    r = CliRunner().invoke(cli, ["compile", "zoo:digits", "-o", str(tmp_path / "a")])
    assert r.exit_code == 2, r.output
    assert "neurocompile[torch]" in r.output and "cpu" in r.output and "Traceback" not in r.output
    assert len([ln for ln in r.output.splitlines() if ln.strip()]) == 1


def test_report_without_matplotlib_is_written_without_plots(monkeypatch, tmp_path):
    import numpy as np

    from conftest import paper_lif_input

    np.save(tmp_path / "x.npy", paper_lif_input())
    for mod in [m for m in sys.modules if m.startswith("matplotlib")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    r = CliRunner().invoke(cli, ["validate", str(NIR_PAPER / "lif_norse.nir"), "-i", str(tmp_path / "x.npy"),
                                 "--targets", "float", "--report", str(tmp_path / "rep")])
    assert r.exit_code == 0, r.output      # plots are optional: the report is written without them
    import json

    rep = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert rep["plots"] == [] and "matplotlib is not installed: no plots" in rep["notes"]
