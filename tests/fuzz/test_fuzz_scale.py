"""Graph algorithms are linear in nodes + edges: a 20,000-node chain loads, validates, infers
shapes and compiles for float in seconds (a guard against quadratic loops, not a benchmark);
and the evaluation order is the one the original (quadratic) algorithm gave."""
from __future__ import annotations

import time

import numpy as np
from fuzzutil import invoke
from hypothesis import given, settings
from hypothesis import strategies as st

from neurocompile.ir import nodes as N
from neurocompile.ir.graph import Graph
from neurocompile.ir.serialize import save_graph


def chain(n: int) -> Graph:
    g = Graph(dt=1e-3)
    names = [g.add("in", N.Input(shape=(2,)))]
    for i in range((n - 2) // 2):
        names.append(g.add(f"fc{i}", N.Linear(weight=np.eye(2))))
        names.append(g.add(f"lif{i}", N.LIF(tau=np.full(2, 1e-2), r=np.ones(2), v_leak=np.zeros(2),
                                            v_threshold=np.ones(2))))
    names.append(g.add("out", N.Output()))
    g.chain(*names)
    return g


def test_chain_of_20000_nodes(tmp_path):
    t0 = time.perf_counter()
    g = chain(20_000)
    assert len(g.nodes) == 20_000
    shapes = g.validate()
    assert g.order() == list(g.nodes) and shapes["out"] == (2,)
    d = tmp_path / "g"
    d.mkdir()
    save_graph(g, d)
    r = invoke("compile", d, "-t", "float", "-o", tmp_path / "art", limit=120)
    assert r.exit_code == 0, r.output
    elapsed = time.perf_counter() - t0
    assert elapsed < 30, f"20,000-node chain took {elapsed:.1f} s"


def _old_order(g: Graph) -> list[str]:
    """The original quadratic algorithm, kept as the reference for the order of nodes."""
    back = g.recurrent_edges()
    indeg = {n: 0 for n in g.nodes}
    for e in g.edges:
        if e not in back:
            indeg[e[1]] += 1
    ready = [n for n in g.nodes if indeg[n] == 0]
    ready.sort(key=lambda n: (not isinstance(g.nodes[n], N.Input), list(g.nodes).index(n)))
    out = []
    while ready:
        n = ready.pop(0)
        out.append(n)
        for s, d in g.edges:
            if s == n and (s, d) not in back:
                indeg[d] -= 1
                if indeg[d] == 0:
                    ready.append(d)
    return out


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(n=st.integers(1, 12), data=st.data())
def test_order_unchanged(n, data):
    g = Graph()
    kinds = data.draw(st.lists(st.booleans(), min_size=n, max_size=n))
    for i, is_input in enumerate(kinds):
        g.add(f"n{i}", N.Input(shape=(1,)) if is_input else N.Identity())
    edges = data.draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=3 * n))
    for s, d in edges:
        g.connect(f"n{s}", f"n{d}")
    assert g.order() == _old_order(g)
    for name in g.nodes:
        assert g.predecessors(name) == [s for s, d in g.edges if d == name]
        assert g.successors(name) == [d for s, d in g.edges if s == name]
    g.edges = list(reversed(g.edges))  # a replaced edge list is seen
    assert g.order() == _old_order(g)
    for name in g.nodes:
        assert g.predecessors(name) == [s for s, d in g.edges if d == name]
