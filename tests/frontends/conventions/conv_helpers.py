"""Shared by the convention tests: run a NIR file on the float reference, record agreement."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

#: set by scripts/exporter_table.py; without it the tests record nothing
RESULTS = os.environ.get("NEUROCOMPILE_EXPORTER_RESULTS")


def run_float(path, x_tbn: np.ndarray, **opts):
    """Output spikes (T, batch, n) of ``path`` read with ``opts``, on the float reference."""
    from neurocompile.frontends.nir import read_nir
    from neurocompile.ir.interpreter import run

    g = read_nir(path, **opts)
    return g, run(g, x_tbn).output


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of (step, sample, neuron) entries where the spike trains agree."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float((a == b).mean())


def record(framework: str, version: str, layers: str, convention: str, agree: float,
           spikes: int) -> None:
    """Append one row for scripts/exporter_table.py."""
    if not RESULTS:
        return
    Path(RESULTS).parent.mkdir(parents=True, exist_ok=True)
    with open(RESULTS, "a") as fh:
        fh.write(json.dumps(dict(framework=framework, version=version, layers=layers,
                                 convention=convention, agreement=agree, spikes=spikes)) + "\n")


def spikes_in(seed: int, T: int, B: int, n: int, p: float = 0.3) -> np.ndarray:
    return (np.random.default_rng(seed).random((T, B, n)) < p).astype(np.float64)
