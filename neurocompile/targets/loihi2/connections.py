"""The synapse connections into a Loihi 2 group, read off a dense-form graph.

A connection is one synapse node -- a ``Linear``/``Affine`` (a Dense on the chip) or a ``Conv2d``
that dense form kept (a Conv) -- from a source to a group, together with the ``Delay`` nodes next
to it::

    src -> [Delay d_src] -> Linear -> [Delay d_dst] -> group

The delays become ``LoihiDense.delays[i, j] = d_src[j] + d_dst[i]`` (whole steps). In the float
graph a Delay of ``d`` moves a value ``d`` steps later; on the chip a spike of step ``t`` through a
synapse of delay ``d`` arrives at ``t + 1 + d``, i.e. ``d`` steps after a plain Dense would deliver
it, and a plain Dense hop is the one step that latency alignment already accounts for. So the
aligned chip output keeps the float timing exactly. A ``d_dst`` also delays the Affine's bias.

Sources: a group, the Input (program source ``"input"``), a host-side ``Delta`` encoder on the
Input (also ``"input"``: the host sends its messages), or a ``Flatten`` of a shaped group (see
dense form), which is looked through.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from neurocompile.errors import UnsupportedError
from neurocompile.ir import nodes as N
from neurocompile.ir.graph import Graph

#: the largest total delay (steps) of one synapse we lower (the compiler's limit; Lava's DelayDense
#: and the program format take 0..63, Loihi 2's 6-bit delay field).
MAX_DELAY = 62
INPUT = "input"


@dataclasses.dataclass
class Connection:
    name: str                       # the synapse node = the program connection's name
    node: N.Node                    # Linear / Affine / Conv2d
    src: str                        # program source: a group name or "input"
    src_node: str                   # graph node of the source (group, Input or Delta)
    dst: str
    recurrent: bool                 # the synapse's output reaches dst one step late (back edge)
    delays: np.ndarray | None       # (n_dst, n_src) int steps, None when all are 0
    row_delay: np.ndarray | None    # (n_dst,) delay after the synapse (delays its bias too)

    @property
    def is_conv(self) -> bool:
        return isinstance(self.node, N.Conv2d)


def look_through(graph: Graph, name: str) -> str:
    """The node behind Flatten nodes (dense form's ``<group>.flat``)."""
    while isinstance(graph.nodes[name], N.Flatten):
        (name,) = graph.predecessors(name)
    return name


def program_source(graph: Graph, name: str) -> str:
    """``"input"`` for the Input or a Delta encoder on it (run on the host), else the group."""
    node = graph.nodes[name]
    if isinstance(node, N.Input):
        return INPUT
    if isinstance(node, N.Delta):
        preds = graph.predecessors(name)
        if len(preds) != 1 or not isinstance(graph.nodes[preds[0]], N.Input):
            raise UnsupportedError("a Delta encoder runs on the host: it must read an Input directly", node=name)
        return INPUT
    return name


def _steps(graph: Graph, name: str, size: int) -> np.ndarray:
    d = np.broadcast_to(graph.nodes[name].delay, (size,)).astype(np.int64)
    return d


def _only(items: list[str], what: str, node: str) -> str:
    if len(items) != 1:
        raise UnsupportedError(f"{what} (found {len(items)})", node=node)
    return items[0]


def incoming(graph: Graph, group: str, shapes: dict) -> list[Connection]:
    """Every connection into ``group`` (see the module docstring). Raises UnsupportedError,
    naming the node, for structures the chip cannot express."""
    back = graph.recurrent_edges()
    size = int(np.prod(shapes[group]))
    out = []
    for p in graph.predecessors(group):
        node = graph.nodes[p]
        row_delay, rec = None, (p, group) in back
        if isinstance(node, N.Delay):
            syn = _only(graph.predecessors(p), "a Delay into a group must follow one synapse matrix", p)
            if not isinstance(graph.nodes[syn], N.Linear) or graph.successors(syn) != [p] \
                    or graph.successors(p) != [group]:
                raise UnsupportedError("a Delay must sit between a synapse matrix (its only reader) and one "
                                       "neuron group, or between a group and synapse matrices", node=p)
            row_delay = _steps(graph, p, size)
            rec = rec or (syn, p) in back
            delay_node_dst = p
        elif isinstance(node, (N.Linear, N.Conv2d)):
            syn, delay_node_dst = p, None
        else:
            raise UnsupportedError(f"a {node.op} cannot feed a Loihi 2 group: groups are connected by synapse "
                                   f"matrices (Linear/Affine/Conv2d)", node=group)
        syn_node = graph.nodes[syn]
        s = _only(graph.predecessors(syn), "a synapse matrix must have exactly one source group", syn)
        col_delay, delay_node_src = None, None
        if isinstance(graph.nodes[s], N.Delay):
            if isinstance(syn_node, N.Conv2d):
                raise UnsupportedError("delays on convolution synapses are not supported", node=s)
            delay_node_src = s
            s = _only(graph.predecessors(s), "a Delay must read one source group", s)
            col_delay = _steps(graph, delay_node_src, syn_node.weight.shape[1])
        s = look_through(graph, s)
        if isinstance(graph.nodes[s], (N.Delay, N.Linear, N.Conv2d)):
            raise UnsupportedError(f"synapses must start at an Input or a neuron group, not {graph.nodes[s].op}",
                                   node=syn)
        delays = None
        if row_delay is not None or col_delay is not None:
            n_src = syn_node.weight.shape[1]
            delays = np.zeros((size, n_src), np.int64)
            if row_delay is not None:
                delays += row_delay[:, None]
            if col_delay is not None:
                delays += col_delay[None, :]
            if delays.size and delays.max() > MAX_DELAY:
                worst = delay_node_dst if (row_delay is not None and (col_delay is None or
                                           row_delay.max() >= col_delay.max())) else delay_node_src
                raise UnsupportedError(f"delay of {int(delays.max())} steps: Loihi 2 synapses delay by at most "
                                       f"{MAX_DELAY} steps here", node=worst)
            if not delays.any():
                delays = None
            if row_delay is not None and not row_delay.any():
                row_delay = None
        out.append(Connection(name=syn, node=syn_node, src=program_source(graph, s), src_node=s, dst=group,
                              recurrent=rec, delays=delays, row_delay=row_delay))
    return out


def check_delays(graph: Graph) -> None:
    """Every Delay must be next to a synapse matrix (group -> Delay -> synapses, or
    synapse -> Delay -> group); anything else has no chip counterpart."""
    for name, node in graph.nodes.items():
        if not isinstance(node, N.Delay):
            continue
        preds, succs = graph.predecessors(name), graph.successors(name)
        before = len(preds) == 1 and succs and all(isinstance(graph.nodes[d], N.Linear) for d in succs)
        after = len(preds) == 1 and isinstance(graph.nodes[preds[0]], N.Linear) and len(succs) == 1
        if not (before or after):
            raise UnsupportedError("a Delay must sit next to a synapse matrix: group -> Delay -> Linear or "
                                   "Linear -> Delay -> group", node=name)
