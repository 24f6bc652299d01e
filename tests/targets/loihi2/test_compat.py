"""The runtime parts import and compute the same on other Pythons and on numpy 1.x."""
import glob
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]

SCRIPT = r'''
import numpy as np
from neurocompile.ir import sequential
from neurocompile.ir import nodes as N
from neurocompile.ir.interpreter import run
from neurocompile.targets.loihi2 import emulator as loihi
from neurocompile.targets.loihi2.program import LoihiDense, LoihiLIF, LoihiProgram
g = sequential([("in", N.Input(shape=(3,))),
                ("fc", N.Affine(weight=[[0.5, -0.2, 0.9], [0.3, 0.3, -0.4]], bias=[0.1, 0.0])),
                ("l", N.LIF(tau=4.0, v_threshold=0.6)), ("o", N.Output())], dt=1.0)
x = (np.arange(60).reshape(20, 3) % 7 < 3).astype(float)
print(run(g, x, probes=["l.v"]).probes["l.v"][:, 0].round(12).tolist())
p = LoihiProgram(3, [LoihiLIF("a", 2, 100, 300, 40, np.array([3, -5]), 2)],
                 [LoihiDense("d", "input", "a", np.array([[200, -100, 6], [-64, 254, 0]]), -1)])
print(loihi.run(p, x.astype(bool))["a"]["v"][:, 0].tolist())
'''


def _run(python, env=None):
    out = subprocess.run([python, "-c", SCRIPT], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})}, cwd="/")
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


@pytest.fixture(scope="module")
def here():
    return _run(sys.executable)


def test_lava_env_python310_numpy1(here):
    from lava_util import require_lava

    assert _run(require_lava()) == here


def _pythons():
    import shutil

    roots = []
    if shutil.which("pyenv"):
        r = subprocess.run(["pyenv", "root"], capture_output=True, text=True)
        roots.append(os.path.join(r.stdout.strip(), "versions"))
    found = {}
    for root in roots:
        for v in ("3.12", "3.13"):
            for exe in sorted(glob.glob(f"{root}/{v}*/bin/python")):
                found.setdefault(v, exe)
    return found


@pytest.mark.parametrize("version", ["3.12", "3.13"])
def test_newer_pythons(version, here, tmp_path):
    exe = _pythons().get(version)
    if exe is None:
        pytest.skip(f"no Python {version} on this machine")
    env_dir = tmp_path / "venv"
    subprocess.run([exe, "-m", "venv", str(env_dir)], check=True)
    py = str(env_dir / "bin" / "python")
    r = subprocess.run([py, "-m", "pip", "install", "-q", "numpy"], capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        pytest.skip(f"numpy does not install for Python {version} here: {r.stderr[-300:]}")
    assert _run(py) == here
