"""A target from another package, registered through the ``neurocompile.backends`` entry point,
takes part in compile, run, validate and the pytest plugin without any change to neurocompile.

The toy chip rounds every synapse matrix to a grid of ``2**-bits`` and runs the rounded graph in
float; with 16 bits the NIR paper's single LIF neuron must still spike at the steps the paper
published (460, 510, 710, 760), the independent oracle here.
"""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from conftest import NIR_PAPER, paper_lif_input

TOY = '''
"""A toy neuromorphic chip: weights on a 2**-bits grid, run in float."""
import dataclasses
from typing import ClassVar

import numpy as np

from neurocompile.ir import interpreter
from neurocompile.ir import nodes as N
from neurocompile.passes import NORMALIZE, CompileOptions, Lowering
from neurocompile.passes.dense_form import DenseForm
from neurocompile.targets.base import Runner, Target


@dataclasses.dataclass(frozen=True)
class ToyOptions(CompileOptions):
    bits: int = 16


@dataclasses.dataclass(frozen=True)
class ToyProgram:
    graph: object
    grid: float

    def validate(self):
        for name, node in self.graph.nodes.items():
            steps = node.weight / self.grid if isinstance(node, N.Linear) else 0.0
            if not np.allclose(steps, np.round(steps)):
                raise ValueError(f"{name}: weights off the grid")

    def dump(self, directory):
        np.savez(directory / "weights.npz", **{n: node.weight for n, node in self.graph.nodes.items()
                                                if isinstance(node, N.Linear)})


@dataclasses.dataclass(frozen=True)
class QuantizeToy(Lowering):
    name: ClassVar[str] = "quantize-toy"

    def run(self, graph, ctx):
        grid = 2.0 ** -ctx.options.bits
        g = graph.copy()
        for name, node in g.nodes.items():
            if isinstance(node, N.Linear):
                g.nodes[name] = dataclasses.replace(node, weight=np.round(node.weight / grid) * grid)
        ctx.report["summary"] = [f"toy: {len(g.nodes)} nodes on a grid of {grid}"]
        return ToyProgram(graph=g, grid=grid)


class Sim(Runner):
    name = "sim"
    description = "the toy chip's simulator"
    exact = True

    def run(self, artifact, x, *, probes=(), record_spikes=True, progress=None):
        return interpreter.run(artifact.graph, x, probes=probes, record_spikes=record_spikes)


class ToyTarget(Target):
    name = "toy"
    description = "toy chip (third-party plugin)"
    Options = ToyOptions
    runners = {"sim": Sim()}
    default_runner = "sim"

    def passes(self, options):
        return [*NORMALIZE, DenseForm(), QuantizeToy()]

    def compile(self, graph, **kw):
        art = super().compile(graph, **kw)
        return art
'''


@pytest.fixture
def toy_env(tmp_path):
    site = tmp_path / "site"
    (site / "toy_nc").mkdir(parents=True)
    (site / "toy_nc" / "__init__.py").write_text(TOY)
    dist = site / "toy_nc-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-nc\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[neurocompile.backends]\ntoy = toy_nc:ToyTarget\n")
    env = dict(os.environ, PYTHONPATH=str(site))
    np.save(tmp_path / "x.npy", paper_lif_input())
    return tmp_path, env


def nc(env, cwd, *args):
    r = subprocess.run([sys.executable, "-m", "neurocompile", *map(str, args)], cwd=cwd, env=env,
                       capture_output=True, text=True, timeout=300)
    return r


def test_toy_target_compiles_runs_and_validates(toy_env):
    tmp, env = toy_env
    r = nc(env, tmp, "targets")
    assert r.returncode == 0 and any(line.startswith("toy ") for line in r.stdout.splitlines()), r.stdout + r.stderr

    r = nc(env, tmp, "compile", NIR_PAPER / "lif_norse.nir", "-t", "toy", "-o", "art", "--dump-ir", "dump")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp / "art" / "manifest.json").read_text())["target"] == "toy"
    levels = sorted(p.name for p in (tmp / "dump").iterdir() if p.is_dir())
    assert levels[-1].endswith("quantize-toy") and (tmp / "dump" / levels[-1] / "weights.npz").is_file()

    r = nc(env, tmp, "run", "art", "--input", "x.npy", "-o", "out.npz")
    assert r.returncode == 0, r.stderr
    with np.load(tmp / "out.npz", allow_pickle=False) as d:
        assert np.flatnonzero(d["output"][:, 0, 0]).tolist() == [460, 510, 710, 760]

    r = nc(env, tmp, "validate", "art", "--input", "x.npy", "--targets", "float,toy", "--report", "rep")
    assert r.returncode == 0, r.stderr
    rep = json.loads((tmp / "rep" / "report.json").read_text())
    assert rep["targets"] == ["float", "toy"]
    assert rep["float_vs_quantized"]["float vs toy"]["class_agreement"] == 1.0

    r = nc(env, tmp, "compile", NIR_PAPER / "lif_norse.nir", "-t", "toy", "-o", "art2", "--split-weights")
    assert r.returncode == 2 and "unknown compile option" in r.stderr and "split_weights" in r.stderr


def test_toy_target_in_the_pytest_plugin(toy_env):
    tmp, env = toy_env
    (tmp / "test_mine.py").write_text(textwrap.dedent(f'''
        import numpy as np
        from conftest_data import paper_input

        def test_lif(nc_run, neurocompile_target):
            assert neurocompile_target == "toy"
            out = nc_run("{NIR_PAPER / 'lif_norse.nir'}", paper_input()).output
            assert np.flatnonzero(out[:, 0, 0]).tolist() == [460, 510, 710, 760]
    '''))
    (tmp / "conftest_data.py").write_text(textwrap.dedent(f'''
        import numpy as np
        def paper_input():
            return np.load("{tmp / 'x.npy'}")
    '''))
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp),
                        "--neurocompile-target=toy", str(tmp / "test_mine.py")],
                       cwd=tmp, env=dict(env, PYTHONPATH=f"{env['PYTHONPATH']}{os.pathsep}{tmp}"),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "1 passed" in r.stdout, r.stdout + r.stderr
