"""Run one target on an input and collect what the comparisons need, in one layout.

A :class:`Trace` holds, per neuron group, spikes and membrane on the float graph's time base and
units (``aligned``), and for chip targets the integer state on the chip's own time base (``raw``).
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np

from neurocompile.errors import BackendError
from neurocompile.ir import interpreter
from neurocompile.ir.batch import batched_input
from neurocompile.targets.artifact import Artifact


@dataclasses.dataclass
class Trace:
    target: str
    exact: bool                      # True for bit-accurate targets (emulator, lava, chips)
    aligned: dict[str, dict[str, np.ndarray]]
    outputs: dict[str, np.ndarray]
    raw: dict | None = None
    steps: int = 0
    wall_s: float = 0.0


def neuron_groups(artifact: Artifact) -> list[str]:
    """Neuron groups compared by validate: spiking/integrating neurons and sigma-delta neurons
    (whose activity is their nonzero graded messages and whose state is ``sigma``)."""
    g = artifact.graph
    return [n for n in g.order() if g.nodes[n].is_neuron]


def state_var(artifact: Artifact, name: str) -> str:
    return artifact.graph.nodes[name].membrane


def _flat(arr):
    return None if arr is None else arr.reshape(arr.shape[:2] + (-1,))


def run_target(artifact: Artifact, target: str, x: np.ndarray, runner=None) -> Trace:
    """Run ``artifact`` on ``runner`` (or, for ``target == "float"``, the interpreter)."""
    groups = neuron_groups(artifact)
    t0 = time.perf_counter()
    if target == "float":
        graph = artifact.graph
        xf = batched_input(graph, x)
        probes = [f"{n}.{state_var(artifact, n)}" for n in groups] + \
            [f"{n}.out" for n in groups if graph.nodes[n].spiking or graph.nodes[n].graded]
        res = interpreter.run(graph, xf, probes=probes)
        aligned = {n: {"spikes": _flat(res.probes.get(f"{n}.out")),
                       "v": _flat(res.probes[f"{n}.{state_var(artifact, n)}"])} for n in groups}
        return Trace("float", False, aligned, res.outputs, steps=xf.shape[0], wall_s=time.perf_counter() - t0)
    ok, why = runner.available()
    if not ok:
        raise BackendError(f"{target}: {why}")
    probes = [f"{n}.{state_var(artifact, n)}" for n in groups]
    if hasattr(runner, "run_raw"):        # the chip's own time base and integers (Loihi 2)
        raw, T = runner.run_raw(artifact, x)
        res = runner.aligned(artifact, raw, T, probes=probes, record_spikes=True)
    else:
        res = runner.run(artifact, x, probes=probes, record_spikes=True)
        T, raw = int(np.shape(x)[0]), None
    aligned = {n: {"spikes": _flat(res.probes.get(f"{n}.out")),
                   "v": _flat(res.probes[f"{n}.{state_var(artifact, n)}"])} for n in groups}
    if raw is None and runner.exact:
        raw = {n: {"spikes": aligned[n]["spikes"].astype(np.int64)} for n in groups}
    return Trace(target, runner.exact, aligned, res.outputs, raw=raw, steps=T, wall_s=time.perf_counter() - t0)
