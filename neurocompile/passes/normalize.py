"""Target-independent clean-up passes."""
from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

from neurocompile.errors import NeuroCompileError
from neurocompile.ir.graph import Graph
from neurocompile.ir.nodes import Identity
from neurocompile.passes.base import Pass, PassContext


@dataclasses.dataclass(frozen=True)
class RemoveIdentity(Pass):
    """Drop Identity nodes, connecting each of their sources to each of their destinations."""

    name: ClassVar[str] = "remove-identity"

    def run(self, graph: Graph, ctx: PassContext) -> Graph:
        ids = [n for n, node in graph.nodes.items() if isinstance(node, Identity)]
        if not ids:
            return graph
        g = graph.copy()
        for n in ids:
            srcs = g.predecessors(n)
            dsts = g.successors(n)
            g.edges = [e for e in g.edges if n not in e] + [(s, d) for s in srcs for d in dsts]
            del g.nodes[n]
        return g


@dataclasses.dataclass(frozen=True)
class SetTimeStep(Pass):
    """Fix ``dt`` and the discretisation rule: from the options, else the graph's, else an error
    when time constants need one. A value chosen here is recorded as an assumption."""

    name: ClassVar[str] = "set-time-step"

    def run(self, graph: Graph, ctx: PassContext) -> Graph:
        dt = ctx.options.dt
        rule = ctx.options.discretization
        if dt is None and rule is None:
            if graph.dt is None and graph.needs_dt():
                raise NeuroCompileError(
                    "the graph has time constants but no time step: pass --dt (seconds)")
            return graph
        if dt is not None and not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0):
            raise NeuroCompileError(f"dt must be a finite time step in seconds > 0, got {dt!r}")
        g = graph.copy()
        if dt is not None and dt != graph.dt:
            if graph.dt is not None:
                g.assume(f"dt changed from {graph.dt} to {dt} by the user")
            g.dt = float(dt)
        if rule is not None:
            g.discretization = rule
        return g


NORMALIZE = (RemoveIdentity(), SetTimeStep())
