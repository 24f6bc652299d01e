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
from neurocompile.ir import nodes as N
from neurocompile.ir.interpreter import normalize_input
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
    return [n for n in g.order() if isinstance(g.nodes[n], N.NEURON_TYPES + (N.SigmaDelta,))]


def state_var(artifact: Artifact, name: str) -> str:
    return "sigma" if isinstance(artifact.graph.nodes[name], N.SigmaDelta) else "v"


def graph_input(artifact: Artifact, x) -> np.ndarray:
    """The input as (T, B, *shape) of the lowered graph's Input (flat, or (C, H, W) where a
    convolution was kept), accepting the model's original sample shape."""
    graph = artifact.graph
    shapes = graph.infer_shapes()
    (inp,) = graph.inputs
    want = shapes[inp]
    orig = tuple(graph.metadata.get("shapes", {}).get(inp, want))
    x = np.asarray(x, dtype=np.float64)
    if x.shape[1:] == orig:
        x = x[:, None]
    if x.shape[2:] == orig and orig != want:
        x = x.reshape(x.shape[:2] + want)
    return normalize_input(graph, {inp: x}, shapes)[inp]


def flat_input(artifact: Artifact, x) -> np.ndarray:
    """The input as (T, B, n_in)."""
    xg = graph_input(artifact, x)
    return xg.reshape(xg.shape[:2] + (-1,))


def _flat(arr):
    return None if arr is None else arr.reshape(arr.shape[:2] + (-1,))


def run_target(artifact: Artifact, target: str, x: np.ndarray, runner=None) -> Trace:
    """Run ``artifact`` on ``runner`` (or, for ``target == "float"``, the interpreter)."""
    groups = neuron_groups(artifact)
    t0 = time.perf_counter()
    if target == "float":
        graph = artifact.graph
        xf = graph_input(artifact, x)
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
