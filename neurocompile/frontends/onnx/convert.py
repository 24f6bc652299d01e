"""Converting the (constant-folded) ONNX nodes one by one into an :class:`Ann`.

Problems with attributes or structure are collected over all nodes and reported in one
:class:`UnsupportedError`; a node fed by a failed node is skipped without a second report.
"""
from __future__ import annotations

from neurocompile.errors import NeuroCompileError, UnsupportedError
from neurocompile.frontends.onnx.ann import Ann
from neurocompile.frontends.onnx.builder import GraphBuilder, Poisoned, Problem
from neurocompile.frontends.onnx.converters import CONVERTERS


def convert_nodes(nodes, consts: dict, shapes: dict, outputs: list[str], inputs, file: str) -> Ann:
    """The analog network of ``nodes`` (all of a supported op type) fed by the graph ``inputs``."""
    b = GraphBuilder(nodes, consts, shapes, outputs, file)
    for inp in inputs:
        shape = b.shapes[inp.name][1:]
        op = b.new_op(inp.name, "input", [], shape, source=inp.name)
        b.tensor[inp.name] = op.name
    for index, node in enumerate(b.nodes):
        label = b.label(node, index)
        try:
            result = CONVERTERS[node.op_type](b, node, index)
        except Poisoned:
            result = None
        except Problem as p:
            b.problems.append(f"'{label}' ({node.op_type}): {p}")
            result = None
        except NeuroCompileError as err:
            b.problems.append(f"'{label}' ({node.op_type}): {err.reason}")
            result = None
        if result is None:
            b.poisoned.update(o for o in node.output if o)
        else:
            b.tensor[node.output[0]] = result
    for name in b.graph_outputs:
        if name in b.poisoned:
            continue
        if name not in b.tensor:
            b.problems.append(f"output '{name}' is a constant or not computed from an input")
            continue
        b.ann.outputs[name] = b.tensor[name]
    if b.problems:
        raise UnsupportedError(
            f"cannot convert {len(b.problems)} node(s): " + "; ".join(b.problems), file=b.file)
    return b.ann
