"""The analog network between ONNX and the spiking graph.

After parsing, an ONNX model is a small DAG of :class:`AnnOp` in topological order. Every op is
one of four kinds:

* ``input``  a graph input, ``shape`` without the batch axis;
* ``linear`` a stateless linear map held as an IR node (``Affine``, ``Linear``, ``Conv1d``,
  ``Conv2d``, ``Scale``, ``AvgPool2d``, ``Flatten``) -- the very node that the spiking graph will
  use, so the analog forward pass below and the spiking graph share the synapse code;
* ``relu``   ``max(x, 0)``, the only nonlinearity; it becomes a neuron;
* ``add``    the elementwise sum of its inputs (residual connections, and the pieces of a split
  Concat). In the graph it becomes edges that meet at one node, whose inputs are summed.

``forward`` runs it in float64 with the reference executor's op functions.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from neurocompile.ir import nodes as N
from neurocompile.ir.semantics import OPS, Context

#: IR nodes that multiply by parameters and so can absorb a change of scale of their input/output.
WEIGHTED = (N.Affine, N.Linear, N.Conv1d, N.Conv2d, N.Scale)
#: IR nodes that are positively homogeneous and parameter-free: ``f(c*x) = c*f(x)`` for c > 0.
PASS_THROUGH = (N.AvgPool2d, N.SumPool2d, N.Flatten)


@dataclasses.dataclass
class AnnOp:
    name: str
    kind: str                      # "input" | "linear" | "relu" | "add"
    inputs: list[str]
    shape: tuple = ()              # output shape, no batch axis
    node: N.Node | None = None     # the IR node of a "linear" op
    source: str = ""               # the ONNX node(s) it came from, for messages

    @property
    def weighted(self) -> bool:
        return self.kind == "linear" and isinstance(self.node, WEIGHTED)

    @property
    def pass_through(self) -> bool:
        return self.kind == "linear" and isinstance(self.node, PASS_THROUGH)


@dataclasses.dataclass
class Ann:
    ops: dict[str, AnnOp] = dataclasses.field(default_factory=dict)
    #: ONNX output name -> op whose value it is
    outputs: dict[str, str] = dataclasses.field(default_factory=dict)
    #: what the parser chose where the model was silent (becomes Graph.assumptions)
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def inputs(self) -> list[str]:
        return [n for n, op in self.ops.items() if op.kind == "input"]

    def consumers(self, name: str) -> list[str]:
        return [n for n, op in self.ops.items() if name in op.inputs]

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def unique(self, base: str) -> str:
        name, i = base, 1
        while name in self.ops:
            i += 1
            name = f"{base}_{i}"
        return name

    def add(self, op: AnnOp) -> AnnOp:
        self.ops[op.name] = op
        return op

    def sort(self) -> None:
        """Put ``ops`` back into topological order (after rewrites); keeps the order otherwise."""
        done: dict[str, AnnOp] = {}
        pending = list(self.ops)
        while pending:
            progressed = False
            for n in list(pending):
                if all(i in done for i in self.ops[n].inputs):
                    done[n] = self.ops[n]
                    pending.remove(n)
                    progressed = True
            if not progressed:  # pragma: no cover - parser output is acyclic
                raise RuntimeError(f"cycle among {pending}")
        self.ops = done

    def prune(self) -> None:
        """Drop ops that no output depends on."""
        live, stack = set(), list(self.outputs.values())
        while stack:
            n = stack.pop()
            if n not in live:
                live.add(n)
                stack.extend(self.ops[n].inputs)
        self.ops = {n: op for n, op in self.ops.items() if n in live or op.kind == "input"}


def apply_linear(node: N.Node, x: np.ndarray, out_shape: tuple) -> np.ndarray:
    """One stateless IR node on a batch ``x`` (batch, *in_shape)."""
    state = {"out_shape": tuple(out_shape)} if isinstance(node, N.Flatten) else {}
    return OPS[type(node)](node, x, state, Context(None, "euler"))


def forward(ann: Ann, x, *, keep: str = "all") -> dict[str, np.ndarray]:
    """Run the analog network on ``x`` ((batch, *shape), or a dict per input); return every
    op's value (``keep="all"``) or only the outputs' (``keep="outputs"``), float64."""
    if not isinstance(x, dict):
        x = {ann.inputs[0]: x}
    values: dict[str, np.ndarray] = {}
    for name, op in ann.ops.items():
        if op.kind == "input":
            v = np.asarray(x[name], dtype=np.float64).reshape((-1,) + op.shape)
        elif op.kind == "linear":
            v = apply_linear(op.node, values[op.inputs[0]], op.shape)
        elif op.kind == "relu":
            v = np.maximum(values[op.inputs[0]], 0.0)
        elif op.kind == "add":
            v = sum(values[i] for i in op.inputs)
        else:  # pragma: no cover
            raise ValueError(op.kind)
        values[name] = v
    if keep == "outputs":
        return {k: values[v] for k, v in ann.outputs.items()}
    return values
