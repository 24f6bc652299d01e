"""The intermediate graph: named nodes, directed edges, and the time base they run on.

Execution order and recurrence
------------------------------
Edges are classified once by a depth-first walk from the inputs (then from any node not reached):
an edge that points back to a node still on the walk's stack closes a loop and is *recurrent*.
A recurrent edge delivers its source's value of the previous step; all other edges deliver the
value of the same step, so one step evaluates the nodes in the topological order of the
feed-forward edges. Every loop must contain a stateful node (a neuron or a Delay), otherwise the
graph is rejected.
"""
from __future__ import annotations

import collections
import dataclasses
from typing import Iterable

from neurocompile.errors import GraphError, NeuroCompileError
from neurocompile.ir.nodes import DISCRETIZATIONS, NODE_TYPES, Input, Node, Output, Shape


@dataclasses.dataclass
class Graph:
    """A network. ``dt`` is the time step in seconds (``None`` when the source gave none and
    nothing needs it yet); ``discretization`` is ``"euler"`` or ``"exact"``; ``assumptions`` lists,
    in words, every default the frontends chose where the source was silent."""

    nodes: dict[str, Node] = dataclasses.field(default_factory=dict)
    edges: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    dt: float | None = None
    discretization: str = "euler"
    assumptions: list[str] = dataclasses.field(default_factory=list)
    metadata: dict = dataclasses.field(default_factory=dict)

    # -- building ---------------------------------------------------------------------------
    def add(self, name: str, node: Node) -> str:
        if name in self.nodes:
            raise GraphError("a node of this name already exists", node=name)
        self.nodes[name] = node
        return name

    def connect(self, src: str, dst: str) -> None:
        self.edges.append((src, dst))

    def chain(self, *names: str) -> None:
        for a, b in zip(names, names[1:]):
            self.connect(a, b)

    def assume(self, text: str) -> None:
        """Record a default chosen where the source said nothing (shown by `inspect`)."""
        if text not in self.assumptions:
            self.assumptions.append(text)

    # -- queries ----------------------------------------------------------------------------
    @property
    def inputs(self) -> list[str]:
        return [n for n, node in self.nodes.items() if isinstance(node, Input)]

    @property
    def outputs(self) -> list[str]:
        return [n for n, node in self.nodes.items() if isinstance(node, Output)]

    def predecessors(self, name: str) -> list[str]:
        """Sources of the edges into ``name``, in edge order (duplicates kept)."""
        return list(self._adjacency()[0].get(name, ()))

    def successors(self, name: str) -> list[str]:
        """Destinations of the edges out of ``name``, in edge order (duplicates kept)."""
        return list(self._adjacency()[1].get(name, ()))

    def _adjacency(self) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
        """(predecessors, successors) of every node, built once per edge list.

        The cache is rebuilt when ``edges`` is replaced or grows or shrinks (``connect``, list
        operations); assigning a new list is the way to change edges in place.
        """
        edges = self.edges
        cache = self.__dict__.get("_adj_cache")
        if cache is not None and cache[0] is edges and cache[1] == len(edges) and \
                (not edges or cache[2] is edges[-1]):
            return cache[3], cache[4]
        pred: dict[str, list[str]] = {}
        succ: dict[str, list[str]] = {}
        for s, d in edges:
            succ.setdefault(s, []).append(d)
            pred.setdefault(d, []).append(s)
        self.__dict__["_adj_cache"] = (edges, len(edges), edges[-1] if edges else None, pred, succ)
        return pred, succ

    # -- structure --------------------------------------------------------------------------
    def recurrent_edges(self) -> set[tuple[str, str]]:
        """Edges that close a loop (see the module docstring)."""
        succ: dict[str, list[str]] = {n: [] for n in self.nodes}
        for s, d in self.edges:
            succ[s].append(d)
        state: dict[str, int] = {}  # 1 = on stack, 2 = done
        back: set[tuple[str, str]] = set()
        inputs = self.inputs
        input_set = set(inputs)
        roots = inputs + [n for n in self.nodes if n not in input_set]
        for root in roots:
            if root in state:
                continue
            stack = [(root, iter(succ[root]))]
            state[root] = 1
            while stack:
                node, it = stack[-1]
                nxt = next(it, None)
                if nxt is None:
                    state[node] = 2
                    stack.pop()
                elif state.get(nxt) == 1:
                    back.add((node, nxt))
                elif nxt not in state:
                    state[nxt] = 1
                    stack.append((nxt, iter(succ[nxt])))
        return back

    def order(self) -> list[str]:
        """Nodes in evaluation order: topological over the feed-forward edges."""
        back = self.recurrent_edges()
        indeg = {n: 0 for n in self.nodes}
        fwd_succ: dict[str, list[str]] = {}
        for e in self.edges:
            if e not in back:
                indeg[e[1]] += 1
                fwd_succ.setdefault(e[0], []).append(e[1])
        position = {n: i for i, n in enumerate(self.nodes)}
        ready = [n for n in self.nodes if indeg[n] == 0]
        ready.sort(key=lambda n: (not isinstance(self.nodes[n], Input), position[n]))
        queue = collections.deque(ready)
        out = []
        while queue:
            n = queue.popleft()
            out.append(n)
            for d in fwd_succ.get(n, ()):
                indeg[d] -= 1
                if indeg[d] == 0:
                    queue.append(d)
        return out

    def infer_shapes(self) -> dict[str, Shape]:
        """Output shape of every node, computed by each node's ``infer_shape``.

        The input shape of a node is the common shape of all its incoming edges.
        """
        back = self.recurrent_edges()
        fwd_pred: dict[str, list[str]] = {}
        for e in self.edges:
            if e not in back:
                fwd_pred.setdefault(e[1], []).append(e[0])
        back_pred: dict[str, list[str]] = {}
        for s, d in back:  # in the set's order, as before
            back_pred.setdefault(d, []).append(s)
        shapes: dict[str, Shape] = {}
        for name in self.order():
            node = self.nodes[name]
            incoming = fwd_pred.get(name, ())
            in_shapes = {shapes[s] for s in incoming}
            if len(in_shapes) > 1:
                raise GraphError(f"incoming edges disagree on shape: {sorted(in_shapes)}", node=name)
            in_shape = next(iter(in_shapes)) if in_shapes else None
            if in_shape is None and not isinstance(node, Input):
                in_shape = next((shapes[s] for s in back_pred.get(name, ()) if s in shapes), None)
            try:
                shapes[name] = tuple(int(s) for s in node.infer_shape(in_shape))
            except NeuroCompileError as err:
                raise err.with_context(node=name)
        for s, d in back:
            if s in shapes and d in shapes:
                src_shape = shapes[s]
                # the value arriving on a recurrent edge must fit the destination's input
                ins = [shapes[p] for p in fwd_pred.get(d, ()) if p in shapes]
                dst_in = ins[0] if ins else None
                if dst_in is not None and src_shape != dst_in:
                    raise GraphError(
                        f"recurrent edge from '{s}' carries shape {src_shape}, expected {dst_in}", node=d)
        return shapes

    def _input_shape(self, name, shapes, back):
        ins = [shapes[s] for s, d in self.edges if d == name and (s, d) not in back and s in shapes]
        return ins[0] if ins else None

    def _shape_from_recurrent(self, name, shapes, back):
        for s, d in back:
            if d == name and s in shapes:
                return shapes[s]
        return None

    def validate(self) -> dict[str, Shape]:
        """Check ops, parameters, edges, loops and shapes; return the shapes. Raises GraphError."""
        if not self.nodes:
            raise GraphError("the graph has no nodes")
        for name, node in self.nodes.items():
            if type(node).op not in NODE_TYPES:
                raise GraphError(f"unknown op {type(node).__name__}", node=name)
            try:
                node.check()
            except NeuroCompileError as err:
                raise err.with_context(node=name)
        for s, d in self.edges:
            for end in (s, d):
                if end not in self.nodes:
                    raise GraphError(f"edge ({s} -> {d}) refers to a node that does not exist", node=end)
        if not self.inputs:
            raise GraphError("the graph has no Input node")
        if not self.outputs:
            raise GraphError("the graph has no Output node")
        pred, succ = self._adjacency()
        for name in self.nodes:
            if not isinstance(self.nodes[name], Input) and not pred.get(name):
                raise GraphError("node has no incoming edge (dangling)", node=name)
            if isinstance(self.nodes[name], Output) and succ.get(name):
                raise GraphError("an Output node cannot feed other nodes", node=name)
        self._check_loops()
        if self.discretization not in DISCRETIZATIONS:
            raise GraphError(f"discretization must be one of {DISCRETIZATIONS}, got '{self.discretization}'")
        if self.dt is not None and not self.dt > 0:
            raise GraphError(f"dt must be > 0, got {self.dt}")
        return self.infer_shapes()

    def _check_loops(self) -> None:
        """Every recurrent edge closes a loop; that loop must pass through a stateful node."""
        succ: dict[str, list[str]] = {n: [] for n in self.nodes}
        for s, d in self.edges:
            succ[s].append(d)
        for s, d in self.recurrent_edges():
            # find a path d -> ... -> s; the loop is that path plus the edge s -> d
            path = _find_path(succ, d, s)
            loop = path if path else [s, d]
            if not any(self.nodes[n].stateful for n in loop):
                raise GraphError(
                    "loop " + " -> ".join(loop + [loop[0]]) + " has no stateful node (neuron or Delay)",
                    node=d)

    def needs_dt(self) -> bool:
        return any(node.needs_dt for node in self.nodes.values())

    def copy(self) -> "Graph":
        """A copy sharing no mutable containers (arrays are shared; passes must not mutate them)."""
        return Graph(
            nodes={n: dataclasses.replace(node) for n, node in self.nodes.items()},
            edges=list(self.edges), dt=self.dt, discretization=self.discretization,
            assumptions=list(self.assumptions), metadata=dict(self.metadata))

    def summary(self) -> str:
        """Human-readable listing: one line a node, then edges and assumptions."""
        shapes = self.infer_shapes()
        back = self.recurrent_edges()
        lines = [f"dt: {self.dt if self.dt is not None else 'not set'}  discretization: {self.discretization}"]
        for name in self.order():
            node = self.nodes[name]
            lines.append(f"  {name:<16} {type(node).op:<10} {str(shapes[name]):<14} {node.describe()}")
        lines.append("edges: " + ", ".join(
            f"{s}->{d}" + (" (recurrent)" if (s, d) in back else "") for s, d in self.edges))
        for a in self.assumptions:
            lines.append(f"assumed: {a}")
        return "\n".join(lines)


def _find_path(succ: dict[str, list[str]], start: str, goal: str) -> list[str] | None:
    prev = {start: None}
    queue = collections.deque([start])
    while queue:
        n = queue.popleft()
        if n == goal:
            path = [n]
            while prev[path[-1]] is not None:
                path.append(prev[path[-1]])
            return path[::-1]
        for m in succ[n]:
            if m not in prev:
                prev[m] = n
                queue.append(m)
    return None


def sequential(names_nodes: Iterable[tuple[str, Node]], **kwargs) -> Graph:
    """Build a chain graph from (name, node) pairs in order."""
    g = Graph(**kwargs)
    names = [g.add(n, node) for n, node in names_nodes]
    g.chain(*names)
    return g
