"""Constant folding: evaluate every node whose inputs are all known constants.

Constants are initializers, ``Constant`` nodes and the ``Shape``/``Size`` of a tensor of known shape;
this removes the shape arithmetic exporters emit for ``x.view(x.size(0), -1)``.
"""
from __future__ import annotations

import numpy as np

from neurocompile.errors import NeuroCompileError
from neurocompile.frontends.onnx.loading import first_line, import_onnx


def fold_constants(model, shapes: dict, file: str) -> tuple[list, dict[str, np.ndarray]]:
    """Evaluate every node whose inputs are all known constants; return (remaining nodes, consts)."""
    onnx = import_onnx()
    from onnx import numpy_helper
    from onnx.reference import ReferenceEvaluator

    consts: dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    rest = []
    for node in model.graph.node:
        if node.domain not in ("", "ai.onnx"):
            rest.append(node)
            continue
        ins = [i for i in node.input if i]
        if node.op_type == "Shape" and shapes.get(node.input[0]) is not None:
            shape = np.array(shapes[node.input[0]], dtype=np.int64)
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            consts[node.output[0]] = shape[attrs.get("start", 0):attrs.get("end", len(shape))]
            continue
        if node.op_type == "Size" and shapes.get(node.input[0]) is not None:
            consts[node.output[0]] = np.array(int(np.prod(shapes[node.input[0]])), dtype=np.int64)
            continue
        foldable = node.op_type == "Constant" or (ins and all(i in consts for i in ins))
        if foldable and not node.op_type.startswith("Random"):
            try:
                values = ReferenceEvaluator(node).run(None, {i: consts[i] for i in ins})
            except Exception as err:
                raise NeuroCompileError(f"cannot evaluate constant node ({node.op_type}): {first_line(err)}",
                                        file=file, node=node.name or node.output[0]) from None
            for name, value in zip(node.output, values):
                if name:
                    consts[name] = np.asarray(value)
            continue
        rest.append(node)
    return rest, consts
