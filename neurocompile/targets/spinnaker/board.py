"""Running a program on a real SpiNNaker machine through sPyNNaker.

sPyNNaker finds its machine in ``~/.spynnaker.cfg`` (section ``[Machine]``): either
``machineName = <board address>`` (with ``version = 5`` for a 48-chip board, 3 for a 4-chip one)
or ``spalloc_server = <url>`` for a shared machine. ``virtual_board = True`` maps and generates
data without running, which the tests use to check the compiler's predictions. The board run
executes the artifact's ``run_pynn.py`` in a child Python process, so sPyNNaker's global state never
mixes with the caller's.
"""
from __future__ import annotations

import configparser
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from neurocompile.errors import BackendError

CFG_NAME = ".spynnaker.cfg"


def config_path() -> Path:
    return Path(os.path.expanduser("~")) / CFG_NAME


def machine_config() -> dict:
    """The ``[Machine]`` options of ``~/.spynnaker.cfg`` (empty when there is none)."""
    path = config_path()
    if not path.is_file():
        return {}
    cp = configparser.ConfigParser(inline_comment_prefixes=("#",))
    try:
        cp.read(path)
    except configparser.Error as err:
        raise BackendError(f"cannot parse {path}: {err}") from None
    if not cp.has_section("Machine"):
        return {}
    return {k.lower(): v.strip() for k, v in cp.items("Machine")}


def _set(value: str | None) -> bool:
    return bool(value) and value.lower() not in ("none", "")


def board_status() -> tuple[bool, str]:
    """(True, description) when a real machine is configured and sPyNNaker is installed."""
    cfg = machine_config()
    if importlib.util.find_spec("spynnaker") is None:
        return False, "sPyNNaker is not installed (pip install sPyNNaker pyNN); the emulator runs"
    if _set(cfg.get("virtual_board")) and cfg["virtual_board"].lower() == "true":
        return False, f"{config_path()} selects a virtual board (maps only); the emulator runs"
    if _set(cfg.get("machinename")):
        return True, f"board {cfg['machinename']} from {config_path()}"
    if _set(cfg.get("spalloc_server")):
        return True, f"spalloc server {cfg['spalloc_server']} from {config_path()}"
    return False, (f"no SpiNNaker machine configured: put [Machine] machineName = <address> (and "
                   f"version = 5) or spalloc_server = <url> in {config_path()}; the emulator runs")


def run_on_board(program_dir: Path, x: np.ndarray, n_ticks: int, *, record_v: bool = False,
                 simulator: str = "spiNNaker", timeout: float | None = None) -> dict[str, np.ndarray]:
    """Run ``run_pynn.py`` of ``program_dir`` on input ``x`` (T, batch, n): 0/1 spikes, or the float
    input of a direct-input program (written as float64); return its npz."""
    if simulator.lower() == "spinnaker":
        ok, why = board_status()
        if not ok:
            raise BackendError(f"cannot run on SpiNNaker hardware: {why}")
    script = Path(program_dir) / "run_pynn.py"
    if not script.is_file():
        raise BackendError(f"{script} is missing: save the artifact first (neurocompile compile -o DIR)")
    with tempfile.TemporaryDirectory(prefix="nc-spinnaker-") as tmp:
        inp = Path(tmp) / "x.npy"
        out = Path(tmp) / "out.npz"
        np.save(inp, _as_saved(x))
        cmd = [sys.executable, str(script), "--input", str(inp), "--output", str(out),
               "--simulator", simulator, "--ticks", str(n_ticks)] + (["--record-v"] if record_v else [])
        proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
            raise BackendError(f"the PyNN run failed (exit {proc.returncode}):\n{tail}")
        with np.load(out, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}


def _as_saved(x) -> np.ndarray:
    """0/1 spikes as uint8; anything else (a direct input) as float64, bit for bit."""
    x = np.asarray(x)
    return x.astype(np.uint8) if np.all((x == 0) | (x == 1)) else x.astype(np.float64)


def mapping_report(program_dir: Path, n_inputs: int, n_ticks: int, *,
                   timeout: float | None = None, x: np.ndarray | None = None) -> dict:
    """Map the program with sPyNNaker (on whatever ``~/.spynnaker.cfg`` selects; a virtual board
    maps and generates data without running) and return what it chose: ring-buffer shifts, weight
    scales, neuron parameter words, 16-bit synaptic words, the current-source data, placements,
    SDRAM and mapping time. ``x`` (T, batch, n) is the input the network is built with (its first
    sample; default no spikes)."""
    if importlib.util.find_spec("spynnaker") is None:
        raise BackendError("sPyNNaker is not installed (pip install sPyNNaker pyNN)")
    script = Path(program_dir) / "run_pynn.py"
    with tempfile.TemporaryDirectory(prefix="nc-spinnaker-map-") as tmp:
        inp = Path(tmp) / "x.npy"
        out = Path(tmp) / "map.json"
        np.save(inp, np.zeros((1, 1, n_inputs), dtype=np.uint8) if x is None else _as_saved(x))
        cmd = [sys.executable, str(script), "--input", str(inp), "--output", str(out),
               "--ticks", str(n_ticks), "--mapping-report"]
        proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-20:])
            raise BackendError(f"sPyNNaker mapping failed (exit {proc.returncode}):\n{tail}")
        return json.loads(out.read_text())
