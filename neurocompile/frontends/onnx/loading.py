"""Reading and checking an ONNX file, and fixing the dimensions of its inputs.

``onnx`` is imported lazily (:func:`import_onnx`), so that importing the frontend does not pull it in.
"""
from __future__ import annotations

from neurocompile.errors import NeuroCompileError, UnsupportedError
from neurocompile.utils.budget import check_alloc
from neurocompile.utils.files import regular_file

MIN_OPSET = 13

FLOAT_TYPES = {1, 10, 11, 16}                    # float, float16, double, bfloat16


def import_onnx():
    """The ``onnx`` module, or a :class:`NeuroCompileError` telling how to install it."""
    try:
        import onnx
    except ImportError as err:  # pragma: no cover - onnx is a dependency
        raise NeuroCompileError("ONNX models need the onnx package (pip install onnx)") from err
    return onnx


def first_line(err: Exception) -> str:
    """The first line of an exception's text, whitespace collapsed, at most 300 characters."""
    text = str(err).strip() or type(err).__name__
    return " ".join(text.split("\n")[0].split())[:300]


def load_model(path):
    """``onnx.load`` + ``onnx.checker.check_model`` + opset of the default domain >= :data:`MIN_OPSET`;
    returns the ``onnx.ModelProto``."""
    onnx = import_onnx()

    p = regular_file(path, "ONNX file")
    check_alloc(2 * p.stat().st_size, "reading the ONNX model", file=str(path))
    try:
        model = onnx.load(str(p), load_external_data=False)   # never read files beside the model
    except Exception as err:  # DecodeError, OSError
        raise NeuroCompileError(
            f"cannot read the ONNX model (truncated or not an ONNX file): {first_line(err)}",
            file=str(path)) from None
    refuse_external_data(onnx, model, str(path))
    try:
        onnx.checker.check_model(model)
    except Exception as err:
        raise NeuroCompileError(f"not a valid ONNX model: {first_line(err)}", file=str(path)) from None
    opsets = {o.domain or "ai.onnx": o.version for o in model.opset_import}
    version = opsets.get("ai.onnx")
    if version is None or version < MIN_OPSET:
        raise UnsupportedError(
            f"the model uses ONNX opset {version}; the importer needs opset >= {MIN_OPSET} "
            f"(re-export, e.g. torch.onnx.export(..., opset_version=17))", file=str(path))
    return model


def _tensors(graph):
    """Every tensor a graph holds: initializers, sparse initializers' values and indices, and the
    tensors in node attributes (Constant values, subgraphs of If/Loop/Scan)."""
    yield from graph.initializer
    for sp in graph.sparse_initializer:
        yield sp.values
        yield sp.indices
    for node in graph.node:
        for a in node.attribute:
            if a.HasField("t"):
                yield a.t
            yield from a.tensors
            if a.HasField("g"):
                yield from _tensors(a.g)
            for g in a.graphs:
                yield from _tensors(g)


def refuse_external_data(onnx, model, file: str) -> None:
    """A tensor whose bytes live in another file (ONNX "external data") is refused: the model
    may name any path, and neurocompile reads nothing outside the file it was given."""
    for t in _tensors(model.graph):
        if t.data_location == onnx.TensorProto.EXTERNAL:
            where = next((e.value for e in t.external_data if e.key == "location"), "?")
            raise NeuroCompileError(
                f"tensor '{t.name}' keeps its data in an external file ('{where}'); neurocompile reads only "
                "what is inside the model: save it with onnx.save_model(model, path, save_as_external_data=False)",
                file=file)


def graph_inputs(model) -> list:
    """The graph inputs that are not initializers."""
    inits = {i.name for i in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in inits]


def fix_input_shapes(model, input_shape, file: str):
    """Copy of ``model`` with every input dimension fixed (batch -> 1 when symbolic).

    ``input_shape``: one shape without batch (single-input models) or ``{name: shape}``.
    """
    onnx = import_onnx()
    model = onnx.ModelProto.FromString(model.SerializeToString())
    inputs = graph_inputs(model)
    if not inputs:
        raise NeuroCompileError("the model has no inputs", file=file)
    given: dict = {}
    if input_shape is not None:
        if isinstance(input_shape, dict):
            given = {k: tuple(int(s) for s in v) for k, v in input_shape.items()}
        elif len(inputs) == 1:
            given = {inputs[0].name: tuple(int(s) for s in input_shape)}
        else:
            raise NeuroCompileError("the model has several inputs: give input_shape as {name: shape}", file=file)
    problems = []
    for inp in inputs:
        tt = inp.type.tensor_type
        if not inp.type.HasField("tensor_type") or tt.elem_type not in FLOAT_TYPES:
            problems.append(f"input '{inp.name}' is not a float tensor")
            continue
        if not tt.HasField("shape") or len(tt.shape.dim) == 0:
            if inp.name not in given:
                problems.append(f"input '{inp.name}' has no shape")
                continue
            tt.shape.dim.add()
            for _ in given[inp.name]:
                tt.shape.dim.add()
        dims = tt.shape.dim
        want = given.get(inp.name)
        if want is not None and len(want) != len(dims) - 1:
            problems.append(f"input_shape {want} for '{inp.name}' does not fit its rank {len(dims)} "
                            f"(give the shape without the batch axis)")
            continue
        dynamic = []
        for axis, d in enumerate(dims):
            if axis == 0:
                if not d.HasField("dim_value") or d.dim_value <= 0:
                    d.Clear()
                    d.dim_value = 1
                continue
            if want is not None:
                if d.HasField("dim_value") and d.dim_value > 0 and d.dim_value != want[axis - 1]:
                    problems.append(f"input '{inp.name}' has size {d.dim_value} at axis {axis}, "
                                    f"input_shape says {want[axis - 1]}")
                d.Clear()
                d.dim_value = want[axis - 1]
            elif not d.HasField("dim_value") or d.dim_value <= 0:
                dynamic.append(f"'{d.dim_param or '?'}' at axis {axis}")
        if dynamic:
            problems.append(
                f"input '{inp.name}' has dynamic dimensions ({', '.join(dynamic)}); only the batch "
                f"axis 0 may be dynamic: re-export with a fixed input size or pass input_shape=(...) "
                f"without the batch axis")
    if problems:
        raise UnsupportedError("; ".join(problems), file=file)
    # stale shapes of intermediate tensors and outputs would contradict the new input shapes
    del model.graph.value_info[:]
    for out in model.graph.output:
        if out.type.HasField("tensor_type"):
            out.type.tensor_type.ClearField("shape")
    return model
