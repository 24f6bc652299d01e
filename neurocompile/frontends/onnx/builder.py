"""The state shared by the per-op converters while an ONNX graph becomes an :class:`Ann`.

A converter raises :class:`Problem` for an attribute or structure it cannot convert (collected and
reported together) and lets :class:`Poisoned` through when an input comes from a node that
already failed (reported once, at its source).
"""
from __future__ import annotations

from collections import Counter

import numpy as np

from neurocompile.errors import NeuroCompileError
from neurocompile.frontends.onnx.ann import Ann, AnnOp
from neurocompile.frontends.onnx.loading import import_onnx
from neurocompile.frontends.onnx.names import sanitize


class Problem(Exception):
    """An attribute or structure of one node that cannot be converted."""


class Poisoned(Exception):
    """A node input comes from a node that already failed (reported once, at its source)."""


def attrs(node) -> dict:
    """The attributes of an ONNX node as Python values (strings decoded)."""
    helper = import_onnx().helper
    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else v
    return out


class GraphBuilder:
    """The :class:`Ann` under construction and the ONNX tensors mapped into it so far."""

    def __init__(self, nodes, consts, shapes, outputs, file):
        self.nodes = nodes
        self.consts = consts
        self.shapes = shapes
        self.file = file
        self.ann = Ann()
        self.tensor: dict[str, str] = {}        # ONNX tensor -> AnnOp name
        self.poisoned: set[str] = set()
        self.problems: list[str] = []
        self.uses = Counter(i for n in nodes for i in n.input if i)
        self.graph_outputs = list(outputs)
        self.uses.update(self.graph_outputs)

    def label(self, node, index: int) -> str:
        return node.name or f"{node.op_type}#{index}({node.output[0]})"

    def data(self, node, i: int) -> str:
        """The AnnOp that produces data input ``i`` of ``node``."""
        name = node.input[i] if i < len(node.input) else ""
        if name in self.poisoned:
            raise Poisoned
        if name in self.tensor:
            return self.tensor[name]
        if name in self.consts:
            raise Problem(f"input {i} ('{name}') is a constant where the converter expects the data path")
        raise Problem(f"input {i} ('{name}') is produced by nothing the converter knows")

    def const(self, node, i: int, what: str) -> np.ndarray | None:
        """Constant input ``i`` of ``node`` as float64 (None when the input is absent)."""
        name = node.input[i] if i < len(node.input) else ""
        if not name:
            return None
        if name in self.consts:
            return np.asarray(self.consts[name], dtype=np.float64)
        raise Problem(f"{what} ('{name}') must be a constant (initializer), not computed at run time")

    def is_const(self, node, i: int) -> bool:
        return i < len(node.input) and node.input[i] in self.consts

    def out_shape(self, tensor: str) -> tuple:
        """The static shape of ``tensor`` without the batch axis."""
        s = self.shapes.get(tensor)
        if s is None:
            raise Problem(f"the shape of tensor '{tensor}' is dynamic or unknown after shape inference "
                          f"(only the batch axis may be dynamic)")
        return s[1:]

    def check_shape(self, node, op) -> None:
        """The shape computed for ``op`` must be the one ONNX inferred for the node's output."""
        want = self.out_shape(node.output[0])
        if tuple(want) != op.shape:
            raise Problem(f"output shape {want} (ONNX) differs from {op.shape} computed with floor "
                          f"rounding and symmetric padding (ceil_mode?)")

    def new_op(self, base: str, kind: str, inputs: list[str], shape: tuple, node=None, source="") -> AnnOp:
        name = self.ann.unique(sanitize(base, kind))
        return self.ann.add(AnnOp(name, kind, list(inputs), tuple(int(s) for s in shape), node, source))

    def linear(self, onnx_node, index, ir_node, src: str, suffix: str = "") -> AnnOp:
        """Add a linear op with ``ir_node`` on ``src``; shape from the IR node's own inference."""
        in_shape = self.ann.ops[src].shape
        try:
            shape = ir_node.infer_shape(in_shape)
        except NeuroCompileError as err:
            raise Problem(err.reason) from None
        return self.new_op(self.label(onnx_node, index) + suffix, "linear", [src], shape, ir_node,
                           self.label(onnx_node, index))

    def single_use(self, tensor: str) -> bool:
        return self.uses[tensor] == 1 and tensor not in self.graph_outputs
