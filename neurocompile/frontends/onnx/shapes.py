"""ONNX shape inference and the static shapes it yields."""
from __future__ import annotations

from neurocompile.errors import NeuroCompileError
from neurocompile.frontends.onnx.loading import first_line, import_onnx


def infer_shapes(model, file: str):
    """``onnx.shape_inference.infer_shapes`` with data propagation; one-line error on failure."""
    onnx = import_onnx()
    try:
        return onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=False, data_prop=True)
    except Exception as err:
        raise NeuroCompileError(f"ONNX shape inference failed: {first_line(err)}", file=file) from None


def tensor_shapes(model) -> dict[str, tuple | None]:
    """name -> full static shape (with batch), or None when some dimension is unknown."""
    out = {}
    for vi in list(model.graph.value_info) + list(model.graph.input) + list(model.graph.output):
        tt = vi.type.tensor_type
        if not vi.type.HasField("tensor_type") or not tt.HasField("shape"):
            out.setdefault(vi.name, None)
            continue
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]
        out[vi.name] = None if any(d is None for d in dims) else tuple(int(d) for d in dims)
    return out
