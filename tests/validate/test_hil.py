"""The hardware-in-the-loop scripts, run as a user would, against the stand-ins CI has:
Lava's CPU models for Loihi 2 and sPyNNaker's virtual machine for SpiNNaker."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import NIR_PAPER

REPO = Path(__file__).resolve().parents[2]


def _script(name, *args):
    return subprocess.run([sys.executable, str(REPO / "hil" / name), *map(str, args)], capture_output=True,
                          text=True, timeout=900, env={**os.environ, "PYTHONPATH": str(REPO)})


@pytest.fixture
def braille_x(tmp_path):
    x = (np.random.default_rng(5).random((60, 2, 12)) < 0.15).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    return tmp_path / "x.npy"


def test_loihi2_hil_with_lava_stand_in(tmp_path, braille_x):
    from lava_util import require_lava

    require_lava()
    r = _script("loihi2_hil.py", NIR_PAPER / "braille_noDelay_bias_zero.nir", "--input", braille_x,
                "--report", tmp_path / "rep", "--stand-in")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "emulator vs lava: identical" in r.stdout
    rep = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert rep["ok"] and rep["targets"] == ["float", "emulator", "lava"]


def test_loihi2_hil_without_chip_runtime_fails_clearly(tmp_path, braille_x):
    from lava_util import require_lava

    require_lava()
    r = _script("loihi2_hil.py", NIR_PAPER / "braille_noDelay_bias_zero.nir", "--input", braille_x,
                "--report", tmp_path / "rep", "--no-float")
    assert r.returncode == 2 and "lava-loihi" in r.stderr and "Traceback" not in r.stderr


def test_spinnaker_hil_on_virtual_machine(tmp_path, braille_x):
    pytest.importorskip("spynnaker")
    r = _script("spinnaker_hil.py", NIR_PAPER / "braille_noDelay_bias_zero.nir", "--input", braille_x,
                "--report", tmp_path / "rep", "--virtual")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "predictions vs sPyNNaker: all equal" in r.stdout
    m = json.loads((tmp_path / "rep" / "mapping.json").read_text())
    assert m["prediction_check"]["mismatches"] == [] and m["prediction_check"]["cores"] == 3
