"""The float64 reference executor: runs a Graph step by step with the functions in ``ops``."""
from __future__ import annotations

import dataclasses
from typing import Callable, Iterable

import numpy as np

from neurocompile.errors import NeuroCompileError
from neurocompile.ir.batch import batched_inputs
from neurocompile.ir.graph import Graph
from neurocompile.ir.nodes import Flatten, Input
from neurocompile.ir.semantics import OPS, Context


@dataclasses.dataclass
class RunResult:
    """``outputs[name]``: (T, batch, *shape) per Output node; ``probes['node.var']`` likewise
    (``var`` is ``out`` for a node's output, or a state name such as ``v`` or ``i``)."""

    outputs: dict[str, np.ndarray]
    probes: dict[str, np.ndarray]

    @property
    def output(self) -> np.ndarray:
        """The only output (error when there are several)."""
        if len(self.outputs) != 1:
            raise NeuroCompileError(f"the graph has {len(self.outputs)} outputs: pick one of {list(self.outputs)}")
        return next(iter(self.outputs.values()))


def split_probe(probe: str, names) -> tuple[str, str]:
    """``"lif1.lif.v"`` -> ``("lif1.lif", "v")``; a bare node name -> ``(name, "out")``."""
    if probe in names:
        return probe, "out"
    node, _, var = probe.rpartition(".")
    return node, var


def run(graph: Graph, x, *, probes: Iterable[str] = (), record_spikes: bool = False,
        progress: Callable[[int, int], None] | None = None) -> RunResult:
    """Run ``graph`` on input ``x`` for all its time steps in float64.

    ``x`` is one array per Input (a dict by name when there are several), as
    :mod:`neurocompile.ir.batch` accepts it: (T, batch, *shape) or (T, *shape).

    ``probes`` names ``node`` (its output) or ``node.v``/``node.i`` (a state variable).
    ``record_spikes`` also records the output of every spiking (or graded-message) node as
    ``node.out``.
    """
    shapes = graph.validate()
    xs = batched_inputs(graph, x, shapes=shapes)
    T = next(iter(xs.values())).shape[0]
    batch = next(iter(xs.values())).shape[1]
    order = graph.order()
    back = graph.recurrent_edges()
    incoming = {n: [(s, (s, n) in back) for s, d in graph.edges if d == n] for n in order}
    rec_sources = {s for s, _ in back}
    ctx = Context(graph.dt, graph.discretization)
    states: dict[str, dict] = {n: {} for n in order}
    for n in order:
        if isinstance(graph.nodes[n], Input):
            states[n]["name"] = n
        if isinstance(graph.nodes[n], Flatten):
            states[n]["out_shape"] = shapes[n]
    wanted = {}
    for p in probes:
        node, var = split_probe(p, graph.nodes)
        if node not in graph.nodes:
            raise NeuroCompileError("probe names a node that does not exist", node=node)
        wanted[p] = (node, var or "out")
    if record_spikes:
        for n in order:
            if graph.nodes[n].spiking or graph.nodes[n].graded:
                wanted.setdefault(f"{n}.out", (n, "out"))
    outputs = {n: np.zeros((T, batch) + shapes[n]) for n in graph.outputs}
    recorded = {p: None for p in wanted}
    prev: dict[str, np.ndarray] = {s: np.zeros((batch,) + shapes[s]) for s in rec_sources}
    for t in range(T):
        ctx.step = t
        ctx.external = {n: xs[n][t] for n in xs}
        values: dict[str, np.ndarray] = {}
        for n in order:
            node = graph.nodes[n]
            ins = incoming[n]
            if ins:
                acc = None
                for s, is_rec in ins:
                    v = prev[s] if is_rec else values[s]
                    acc = v if acc is None else acc + v
                xin = acc
            else:
                xin = None
            try:
                values[n] = OPS[type(node)](node, xin, states[n], ctx)
            except NeuroCompileError as err:
                raise err.with_context(node=n)
        for s in rec_sources:
            prev[s] = values[s]
        for n in outputs:
            outputs[n][t] = values[n]
        for p, (n, var) in wanted.items():
            val = values[n] if var == "out" else states[n].get(var)
            if val is None:
                raise NeuroCompileError(f"node has no state variable '{var}'", node=n)
            if recorded[p] is None:
                recorded[p] = np.zeros((T,) + np.shape(val))
            recorded[p][t] = val
        if progress:
            progress(t + 1, T)
    return RunResult(outputs=outputs, probes=recorded)
