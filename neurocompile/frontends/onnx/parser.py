"""Read an ONNX file into the analog network of :mod:`.ann`.

Steps, each failing with a one-line :class:`NeuroCompileError` that names the file:

1. ``onnx.load`` (a truncated or foreign file fails here), ``onnx.checker.check_model``, opset of
   the default domain >= 13 (:mod:`.loading`).
2. The batch axis (axis 0 of every input) is fixed to 1 if it is symbolic; any other symbolic or
   missing input dimension is an error unless ``input_shape`` gives it (:mod:`.loading`). Shape
   inference runs with data propagation (:mod:`.shapes`).
3. Constant folding (:mod:`.constants`): every node whose inputs are all constants (initializers,
   ``Constant``, the ``Shape`` of a tensor of known shape) is evaluated with ``onnx.reference``.
   This removes the shape arithmetic exporters emit for ``x.view(x.size(0), -1)``.
4. Every remaining node's op type is checked first, and all unsupported ones are listed in one
   error (node names and op types) before anything is converted. Then the nodes are converted
   (:mod:`.convert`, one function per op type in :mod:`.converters`, BatchNormalization and
   constant Adds folded by :mod:`.folding`); problems with attributes (asymmetric padding, a
   non-channel Concat, ...) are also collected and reported together.
5. Concats are lowered to sums of edges (:mod:`.concat`).

``MaxPool`` and every op type not in :data:`SUPPORTED` raise :class:`UnsupportedError`.
"""
from __future__ import annotations

from neurocompile.errors import UnsupportedError
from neurocompile.frontends.onnx.ann import Ann
from neurocompile.frontends.onnx.concat import lower_concats
from neurocompile.frontends.onnx.constants import fold_constants
from neurocompile.frontends.onnx.convert import convert_nodes
from neurocompile.frontends.onnx.converters import SUPPORTED
from neurocompile.frontends.onnx.loading import MIN_OPSET, fix_input_shapes, graph_inputs, load_model
from neurocompile.frontends.onnx.names import sanitize
from neurocompile.frontends.onnx.shapes import infer_shapes, tensor_shapes

__all__ = ["parse", "sanitize", "load_model", "fix_input_shapes", "infer_shapes", "tensor_shapes",
           "fold_constants", "lower_concats", "SUPPORTED", "HINTS", "MIN_OPSET"]

#: advice appended to the error when these op types are found
HINTS = {
    "MaxPool": "max pooling of rate-coded spike trains is not faithful (the max of rates is not "
               "the rate of a max): replace MaxPool by AveragePool (nn.AvgPool2d) and retrain",
    "GlobalMaxPool": "replace GlobalMaxPool by GlobalAveragePool (nn.AdaptiveAvgPool2d(1)) and retrain",
    "Sigmoid": "only ReLU activations become IF neurons",
    "Tanh": "only ReLU activations become IF neurons",
    "LeakyRelu": "only ReLU activations become IF neurons",
    "Clip": "ReLU6/clipped activations are not supported: use plain ReLU",
}


def check_supported(nodes, file: str) -> None:
    """One :class:`UnsupportedError` listing every node of an op type the converter lacks."""
    unknown = [(n, i) for i, n in enumerate(nodes)
               if n.domain not in ("", "ai.onnx") or n.op_type not in SUPPORTED]
    if unknown:
        listing = ", ".join(f"'{n.name or f'#{i} -> {n.output[0]}'}' "
                            f"({(n.domain + '.') if n.domain else ''}{n.op_type})"
                            for n, i in unknown)
        hints = [f"{op}: {HINTS[op]}" for op in dict.fromkeys(n.op_type for n, _ in unknown) if op in HINTS]
        err = UnsupportedError(
            f"{len(unknown)} unsupported ONNX node(s): {listing}. " + ("; ".join(hints) + ". " if hints else "")
            + f"Supported: {', '.join(SUPPORTED)}", file=file)
        err.unsupported = [(n.name, n.op_type) for n, _ in unknown]
        raise err


def parse(path, input_shape=None) -> Ann:
    """The analog network of an ONNX file (see the module docstring)."""
    file = str(path)
    model = load_model(path)
    fixed = fix_input_shapes(model, input_shape, file)
    inferred = infer_shapes(fixed, file)
    shapes = tensor_shapes(inferred)
    nodes, consts = fold_constants(inferred, shapes, file)
    check_supported(nodes, file)
    inputs = graph_inputs(inferred)
    for inp in inputs:
        if shapes.get(inp.name) is None:  # pragma: no cover - fixed above
            raise UnsupportedError(f"input '{inp.name}' has a dynamic shape", file=file)
    ann = convert_nodes(nodes, consts, shapes, [o.name for o in inferred.graph.output], inputs, file)
    lower_concats(ann)
    ann.prune()
    return ann
