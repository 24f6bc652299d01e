"""The ``nest`` runner of SpiNNaker artifacts: the artifact's PyNN program on NEST 3 (``pyNN.nest``),
a third-party float simulation of the same ``IF_curr_exp`` / ``IF_curr_delta`` network.

The network is built by the artifact's own ``spinnaker/run_pynn.py`` (its ``build``), in a
subprocess (``nest_driver.py``), with ``spike_precision="on_grid"`` (NEST's ``iaf_psc_delta`` /
``iaf_psc_exp`` on the 1 ms grid, like sPyNNaker). It is not bit-accurate (``exact = False``);
``validate --targets float,spinnaker,spinnaker:nest`` compares it with the float graph and the
emulator. Where the numbers differ and why:

* integration: NEST integrates the membrane exactly (propagators in double precision);
  sPyNNaker (and the emulator) use s16.15 fixed-point decays ``exp(-dt/tau)`` rounded to 2^-15
  every tick, and 16-bit synaptic weights scaled by the ring-buffer shift (saturating);
* ``IF_curr_delta``: sPyNNaker injects a weight as a current for one tick (``v`` moves by
  ``R (1 - exp(-dt/tau_m)) w``), NEST adds it to ``v`` at once: the driver converts the weights
  by that factor per target neuron, and gives inhibitory weights their sign (pyNN 0.13 passes
  them to ``iaf_psc_delta`` unsigned, and names no recordable for its ``v``: both patched there);
* time: NEST cannot send a spike at t = 0 (and pyNN relays sources through parrot neurons, one
  min_delay earlier), so the program runs two ticks later on NEST and is read back two ticks
  earlier; sPyNNaker holds each population with an initial refractory count until its input
  arrives, which NEST's models cannot set, so the driver switches each population's bias current
  on at that point instead (on zoo:digits this gives the emulator's spike count in every layer);
* delays and grid: every projection keeps its delay in ticks (1 ms = NEST's resolution and
  min_delay); spikes are on the 1 ms grid; NEST has no full reset between runs, so each chunk of
  samples is one fresh network with a copy of the program per sample.
"""
from __future__ import annotations

import importlib.util
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from neurocompile.errors import BackendError

DRIVER = Path(__file__).with_name("nest_driver.py")
EXTRA = "pip install 'neurocompile[nest]'"


def nest_status() -> tuple[bool, str]:
    for mod, what in (("nest", "NEST (nest-simulator)"), ("pyNN", "PyNN")):
        if importlib.util.find_spec(mod) is None:
            return False, f"{what} is not installed: {EXTRA}"
    return True, "NEST through pyNN.nest"


def run_on_nest(program_dir: Path, xs: np.ndarray, n_ticks: int, *, record_v: bool,
                timeout: float | None = None) -> dict[str, np.ndarray]:
    """The driver's npz for input spikes ``xs`` (T, batch, n)."""
    ok, why = nest_status()
    if not ok:
        raise BackendError(why)
    if not (Path(program_dir) / "run_pynn.py").is_file():
        raise BackendError(f"{program_dir}/run_pynn.py is missing: save the artifact first")
    with tempfile.TemporaryDirectory(prefix="nc-nest-") as tmp:
        inp, out = Path(tmp) / "x.npy", Path(tmp) / "out.npz"
        np.save(inp, np.asarray(xs, dtype=np.uint8))
        cmd = [sys.executable, str(DRIVER), str(program_dir), "--input", str(inp), "--output", str(out),
               "--ticks", str(n_ticks)] + (["--record-v"] if record_v else [])
        proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
            raise BackendError(f"the NEST run failed (exit {proc.returncode}):\n{tail}")
        with np.load(out, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
