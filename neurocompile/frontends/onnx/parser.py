"""Read an ONNX file into the analog network of :mod:`.ann`.

Steps, each failing with a one-line :class:`NeuroCompileError` that names the file:

1. ``onnx.load`` (a truncated or foreign file fails here), ``onnx.checker.check_model``, opset of
   the default domain >= 13.
2. The batch axis (axis 0 of every input) is fixed to 1 if it is symbolic; any other symbolic or
   missing input dimension is an error unless ``input_shape`` gives it. Shape inference runs with
   data propagation.
3. Constant folding: every node whose inputs are all constants (initializers, ``Constant``, the
   ``Shape`` of a tensor of known shape) is evaluated with ``onnx.reference``. This removes the
   shape arithmetic exporters emit for ``x.view(x.size(0), -1)``.
4. Every remaining node's op type is checked first, and all unsupported ones are listed in one
   error (node names and op types) before anything is converted. Then the nodes are converted;
   problems with attributes (asymmetric padding, a non-channel Concat, ...) are also collected
   and reported together.

Op mapping (the batch axis is dropped everywhere):

* ``Gemm`` (alpha, beta, transB; transA=0) -> ``Affine``; ``MatMul`` with a constant right
  operand -> ``Linear``, and a following ``Add`` of a constant becomes its bias;
* ``Conv`` (1-d/2-d, groups, dilations, symmetric pads or auto_pad with an even total) ->
  ``Conv1d``/``Conv2d``;
* ``BatchNormalization`` (inference) is folded into the Conv/Gemm/MatMul in front of it when that
  node feeds nothing else, otherwise it becomes a depthwise 1x1 convolution (or a diagonal Affine);
* ``Relu`` -> the neuron; ``Add`` of two tensors of the same shape -> two edges into one node;
  ``Add`` of a constant -> a bias (folded, or a per-channel 1x1 convolution);
* ``AveragePool`` (count_include_pad=1 or no padding; floor output size) -> ``AvgPool2d``
  (1-d: a depthwise convolution with weights 1/k); ``GlobalAveragePool`` -> a pool over the whole
  map;
* ``Flatten`` (axis 1), ``Reshape``/``Squeeze`` that merge one run of adjacent axes -> ``Flatten``
  (identity reshapes vanish);
* ``Concat`` along the channel/feature axis: see :func:`lower_concats`;
* ``Identity``, ``Dropout`` removed; ``Softmax``/``LogSoftmax`` removed when they produce a graph
  output (recorded as an assumption), rejected elsewhere;
* ``MaxPool`` and everything else: :class:`UnsupportedError`.
"""
from __future__ import annotations

import dataclasses
import re
from collections import Counter
from pathlib import Path

import numpy as np

from neurocompile.ir import nodes as N
from neurocompile.errors import NeuroCompileError, UnsupportedError
from neurocompile.frontends.onnx.ann import Ann, AnnOp

MIN_OPSET = 13

#: ONNX op types of the data path that the converter handles.
SUPPORTED = ("Gemm", "MatMul", "Add", "Conv", "Relu", "AveragePool", "GlobalAveragePool", "Flatten",
             "Reshape", "Squeeze", "BatchNormalization", "Concat", "Identity", "Dropout", "Softmax",
             "LogSoftmax")

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

_INT_TYPES = {6, 7, 2, 3, 4, 5, 12, 13}          # int32, int64, uint8, int8, uint16, int16, ...
_FLOAT_TYPES = {1, 10, 11, 16}                    # float, float16, double, bfloat16


class _Problem(Exception):
    """An attribute or structure of one node that cannot be converted."""


class _Poisoned(Exception):
    """A node input comes from a node that already failed (reported once, at its source)."""


def _onnx():
    try:
        import onnx
    except ImportError as err:  # pragma: no cover - onnx is a dependency
        raise NeuroCompileError("ONNX models need the onnx package (pip install onnx)") from err
    return onnx


def sanitize(name: str, fallback: str) -> str:
    """A graph node name from an ONNX name: ``/layer1/conv/Conv`` -> ``layer1_conv_Conv``."""
    s = re.sub(r"[^0-9A-Za-z_]+", "_", name or "").strip("_")
    return s or fallback


# ------------------------------------------------------------------------------------------
# loading, checking, shapes, constants
# ------------------------------------------------------------------------------------------
def load_model(path) -> "onnx.ModelProto":
    onnx = _onnx()
    p = Path(path)
    if not p.is_file():
        raise NeuroCompileError("no such file", file=str(path))
    try:
        model = onnx.load(str(p))
    except Exception as err:  # DecodeError, OSError, external-data errors
        raise NeuroCompileError(
            f"cannot read the ONNX model (truncated or not an ONNX file): {_first_line(err)}",
            file=str(path)) from None
    try:
        onnx.checker.check_model(model)
    except Exception as err:
        raise NeuroCompileError(f"not a valid ONNX model: {_first_line(err)}", file=str(path)) from None
    opsets = {o.domain or "ai.onnx": o.version for o in model.opset_import}
    version = opsets.get("ai.onnx")
    if version is None or version < MIN_OPSET:
        raise UnsupportedError(
            f"the model uses ONNX opset {version}; the importer needs opset >= {MIN_OPSET} "
            f"(re-export, e.g. torch.onnx.export(..., opset_version=17))", file=str(path))
    return model


def _first_line(err: Exception) -> str:
    text = str(err).strip() or type(err).__name__
    return " ".join(text.split("\n")[0].split())[:300]


def _graph_inputs(model) -> list:
    inits = {i.name for i in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in inits]


def fix_input_shapes(model, input_shape, file: str):
    """Copy of ``model`` with every input dimension fixed (batch -> 1 when symbolic).

    ``input_shape``: one shape without batch (single-input models) or ``{name: shape}``.
    """
    onnx = _onnx()
    model = onnx.ModelProto.FromString(model.SerializeToString())
    inputs = _graph_inputs(model)
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
        if not inp.type.HasField("tensor_type") or tt.elem_type not in _FLOAT_TYPES:
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


def infer_shapes(model, file: str):
    onnx = _onnx()
    try:
        return onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=False, data_prop=True)
    except Exception as err:
        raise NeuroCompileError(f"ONNX shape inference failed: {_first_line(err)}", file=file) from None


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


def fold_constants(model, shapes: dict, file: str) -> tuple[list, dict[str, np.ndarray]]:
    """Evaluate every node whose inputs are all known constants; return (remaining nodes, consts)."""
    onnx = _onnx()
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
                raise NeuroCompileError(f"cannot evaluate constant node ({node.op_type}): {_first_line(err)}",
                                        file=file, node=node.name or node.output[0]) from None
            for name, value in zip(node.output, values):
                if name:
                    consts[name] = np.asarray(value)
            continue
        rest.append(node)
    return rest, consts


# ------------------------------------------------------------------------------------------
# the converter proper
# ------------------------------------------------------------------------------------------
def _attrs(node) -> dict:
    from onnx import helper

    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else v
    return out


class _Parser:
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
        self.labels = {}

    # -- helpers -----------------------------------------------------------------------------
    def label(self, node, index: int) -> str:
        return node.name or f"{node.op_type}#{index}({node.output[0]})"

    def data(self, node, i: int) -> str:
        name = node.input[i] if i < len(node.input) else ""
        if name in self.poisoned:
            raise _Poisoned
        if name in self.tensor:
            return self.tensor[name]
        if name in self.consts:
            raise _Problem(f"input {i} ('{name}') is a constant where the converter expects the data path")
        raise _Problem(f"input {i} ('{name}') is produced by nothing the converter knows")

    def const(self, node, i: int, what: str) -> np.ndarray | None:
        name = node.input[i] if i < len(node.input) else ""
        if not name:
            return None
        if name in self.consts:
            return np.asarray(self.consts[name], dtype=np.float64)
        raise _Problem(f"{what} ('{name}') must be a constant (initializer), not computed at run time")

    def is_const(self, node, i: int) -> bool:
        return i < len(node.input) and node.input[i] in self.consts

    def out_shape(self, tensor: str) -> tuple:
        s = self.shapes.get(tensor)
        if s is None:
            raise _Problem(f"the shape of tensor '{tensor}' is dynamic or unknown after shape inference "
                           f"(only the batch axis may be dynamic)")
        return s[1:]

    def new_op(self, base: str, kind: str, inputs: list[str], shape: tuple, node=None, source="") -> AnnOp:
        name = self.ann.unique(sanitize(base, kind))
        return self.ann.add(AnnOp(name, kind, list(inputs), tuple(int(s) for s in shape), node, source))

    def linear(self, onnx_node, index, ir_node, src: str, suffix: str = "") -> AnnOp:
        """Add a linear op with ``ir_node`` on ``src``; shape from the IR node's own inference."""
        in_shape = self.ann.ops[src].shape
        try:
            shape = ir_node.infer_shape(in_shape)
        except NeuroCompileError as err:
            raise _Problem(err.reason) from None
        return self.new_op(self.label(onnx_node, index) + suffix, "linear", [src], shape, ir_node,
                           self.label(onnx_node, index))

    def single_use(self, tensor: str) -> bool:
        return self.uses[tensor] == 1 and tensor not in self.graph_outputs

    # -- main loop ---------------------------------------------------------------------------
    def run(self, inputs) -> Ann:
        for inp in inputs:
            shape = self.shapes[inp.name][1:]
            op = self.new_op(inp.name, "input", [], shape, source=inp.name)
            self.tensor[inp.name] = op.name
        for index, node in enumerate(self.nodes):
            label = self.label(node, index)
            try:
                result = getattr(self, f"_op_{node.op_type}")(node, index)
            except _Poisoned:
                result = None
            except _Problem as p:
                self.problems.append(f"'{label}' ({node.op_type}): {p}")
                result = None
            except NeuroCompileError as err:
                self.problems.append(f"'{label}' ({node.op_type}): {err.reason}")
                result = None
            if result is None:
                self.poisoned.update(o for o in node.output if o)
            else:
                self.tensor[node.output[0]] = result
        for name in self.graph_outputs:
            if name in self.poisoned:
                continue
            if name not in self.tensor:
                self.problems.append(f"output '{name}' is a constant or not computed from an input")
                continue
            self.ann.outputs[name] = self.tensor[name]
        if self.problems:
            raise UnsupportedError(
                f"cannot convert {len(self.problems)} node(s): " + "; ".join(self.problems), file=self.file)
        return self.ann

    # -- ops ---------------------------------------------------------------------------------
    def _op_Identity(self, node, index):
        return self.data(node, 0)

    def _op_Dropout(self, node, index):
        if len(node.output) > 1 and node.output[1] and self.uses[node.output[1]]:
            raise _Problem("its mask output is used")
        return self.data(node, 0)

    def _op_Softmax(self, node, index):
        src = self.data(node, 0)
        out = node.output[0]
        if out not in self.graph_outputs or self.uses[out] != 1:
            raise _Problem("a Softmax is only removable where it produces a graph output")
        self.ann.note(f"the final {node.op_type} '{self.label(node, index)}' is dropped: the spiking network "
                      f"reads out its input (the logits), and argmax is unchanged")
        return src

    _op_LogSoftmax = _op_Softmax

    def _op_Relu(self, node, index):
        src = self.data(node, 0)
        return self.new_op(self.label(node, index), "relu", [src], self.ann.ops[src].shape,
                           source=self.label(node, index)).name

    def _op_Gemm(self, node, index):
        a = _attrs(node)
        if a.get("transA", 0):
            raise _Problem("transA=1 (a transposed data operand) is not supported")
        src = self.data(node, 0)
        if len(self.ann.ops[src].shape) != 1:
            raise _Problem(f"the data operand must be (batch, features), got {(None,) + self.ann.ops[src].shape}")
        b = self.const(node, 1, "B")
        if b.ndim != 2:
            raise _Problem(f"B must be 2-d, got shape {b.shape}")
        weight = (b if a.get("transB", 0) else b.T) * float(a.get("alpha", 1.0))
        c = self.const(node, 2, "C") if len(node.input) > 2 else None
        if c is None:
            ir = N.Linear(weight=weight)
        else:
            ir = N.Affine(weight=weight, bias=self._row_bias(c * float(a.get("beta", 1.0)), weight.shape[0]))
        return self.linear(node, index, ir, src).name

    @staticmethod
    def _row_bias(c: np.ndarray, m: int) -> np.ndarray:
        try:
            row = np.broadcast_to(c, (1, m)) if c.ndim <= 2 else None
        except ValueError:
            row = None
        if row is None or (c.ndim == 2 and c.shape[0] != 1):
            raise _Problem(f"the bias C of shape {c.shape} depends on the batch row; expected (M,) or (1, M)")
        return np.array(row[0], dtype=np.float64)

    def _op_MatMul(self, node, index):
        if self.is_const(node, 0):
            raise _Problem("a constant left operand (W @ x) is not supported; export x @ W")
        src = self.data(node, 0)
        if len(self.ann.ops[src].shape) != 1:
            raise _Problem(f"the data operand must be (batch, features), got {(None,) + self.ann.ops[src].shape}")
        b = self.const(node, 1, "the weight operand")
        if b.ndim != 2:
            raise _Problem(f"the weight operand must be 2-d, got shape {b.shape}")
        return self.linear(node, index, N.Linear(weight=b.T.copy()), src).name

    def _op_Add(self, node, index):
        c0, c1 = self.is_const(node, 0), self.is_const(node, 1)
        if c0 and c1:  # pragma: no cover - folded
            raise _Problem("both operands are constants")
        if not c0 and not c1:
            a, b = self.data(node, 0), self.data(node, 1)
            sa, sb = self.ann.ops[a].shape, self.ann.ops[b].shape
            if sa != sb:
                raise _Problem(f"broadcasting Add of tensors {sa} and {sb} is not supported (shapes must match)")
            return self.new_op(self.label(node, index), "add", [a, b], sa, source=self.label(node, index)).name
        src_i = 1 if c0 else 0
        src = self.data(node, src_i)
        shape = self.ann.ops[src].shape
        c = self.const(node, 1 - src_i, "the constant operand")
        try:
            full = np.broadcast_to(c, (1,) + shape)[0]
        except ValueError:
            raise _Problem(f"the constant of shape {c.shape} does not broadcast to {shape}") from None
        if np.broadcast_shapes(c.shape, (1,) + shape) != (1,) + shape:
            raise _Problem(f"the constant of shape {c.shape} broadcasts over the batch axis")
        per_channel = full.reshape(shape[0], -1)
        if len(shape) > 1 and not np.all(per_channel == per_channel[:, :1]):
            raise _Problem("adding a constant that varies along the spatial axes is not supported")
        bias = per_channel[:, 0] if len(shape) > 1 else full
        op = self.ann.ops[src]
        if op.kind == "linear" and isinstance(op.node, (N.Linear, N.Conv1d, N.Conv2d)) \
                and self.single_use(node.input[src_i]):
            old = op.node
            if isinstance(old, (N.Conv1d, N.Conv2d)):
                op.node = dataclasses.replace(old, bias=old.bias + bias)
            else:
                op.node = N.Affine(weight=old.weight, bias=getattr(old, "bias", 0.0) + bias)
            op.source += f" + {self.label(node, index)}"
            return op.name
        return self.linear(node, index, _channel_affine(np.ones(shape[0]), bias, len(shape) - 1), src).name

    def _op_Conv(self, node, index):
        a = _attrs(node)
        src = self.data(node, 0)
        w = self.const(node, 1, "the weight")
        nd = w.ndim - 2
        if nd not in (1, 2):
            raise _Problem(f"{nd}-d convolution is not supported (1-d and 2-d are)")
        in_shape = self.ann.ops[src].shape
        if len(in_shape) != nd + 1:
            raise _Problem(f"input shape {in_shape} does not fit a {nd}-d convolution")
        b = self.const(node, 2, "the bias") if len(node.input) > 2 and node.input[2] else None
        if "kernel_shape" in a and tuple(a["kernel_shape"]) != w.shape[2:]:
            raise _Problem(f"kernel_shape {a['kernel_shape']} disagrees with the weight {w.shape}")
        stride = tuple(a.get("strides", [1] * nd))
        dilation = tuple(a.get("dilations", [1] * nd))
        pads = _pads(a, in_shape[1:], w.shape[2:], stride, dilation)
        cls = N.Conv2d if nd == 2 else N.Conv1d
        ir = cls(weight=w, bias=0.0 if b is None else b, stride=stride, padding=pads, dilation=dilation,
                 groups=int(a.get("group", 1)))
        op = self.linear(node, index, ir, src)
        self._check_shape(node, op)
        return op.name

    def _check_shape(self, node, op):
        want = self.out_shape(node.output[0])
        if tuple(want) != op.shape:
            raise _Problem(f"output shape {want} (ONNX) differs from {op.shape} computed with floor "
                           f"rounding and symmetric padding (ceil_mode?)")

    def _op_AveragePool(self, node, index):
        a = _attrs(node)
        src = self.data(node, 0)
        in_shape = self.ann.ops[src].shape
        kernel = tuple(a["kernel_shape"])
        nd = len(kernel)
        if nd not in (1, 2) or len(in_shape) != nd + 1:
            raise _Problem(f"{nd}-d pooling of input {in_shape} is not supported (1-d and 2-d are)")
        if any(d != 1 for d in a.get("dilations", [1] * nd)):
            raise _Problem("dilated pooling is not supported")
        stride = tuple(a.get("strides", [1] * nd))
        pads = _pads(a, in_shape[1:], kernel, stride, (1,) * nd)
        if any(pads) and not a.get("count_include_pad", 0):
            raise _Problem("padding with count_include_pad=0 (border windows divide by fewer "
                           "elements) is not supported; use count_include_pad=1 or no padding")
        if nd == 2:
            ir = N.AvgPool2d(kernel_size=kernel, stride=stride, padding=pads)
        else:
            c = in_shape[0]
            ir = N.Conv1d(weight=np.full((c, 1, kernel[0]), 1.0 / kernel[0]), stride=stride, padding=pads,
                          groups=c)
        op = self.linear(node, index, ir, src)
        self._check_shape(node, op)
        return op.name

    def _op_GlobalAveragePool(self, node, index):
        src = self.data(node, 0)
        in_shape = self.ann.ops[src].shape
        if len(in_shape) == 3:
            ir = N.AvgPool2d(kernel_size=in_shape[1:], stride=in_shape[1:])
        elif len(in_shape) == 2:
            c, n = in_shape
            ir = N.Conv1d(weight=np.full((c, 1, n), 1.0 / n), groups=c)
        else:
            raise _Problem(f"input shape {in_shape} is not (C, H, W) or (C, L)")
        return self.linear(node, index, ir, src).name

    def _op_Flatten(self, node, index):
        src = self.data(node, 0)
        in_shape = self.ann.ops[src].shape
        axis = int(_attrs(node).get("axis", 1))
        if axis < 0:
            axis += len(in_shape) + 1
        if axis != 1:
            raise _Problem(f"axis={axis} merges the batch axis with others; only axis=1 is supported")
        if len(in_shape) <= 1:
            return src
        return self.linear(node, index, N.Flatten(start_dim=0, end_dim=-1), src).name

    def _op_Reshape(self, node, index):
        src = self.data(node, 0)
        in_shape = self.ann.ops[src].shape
        full_out = self.shapes.get(node.output[0])
        if full_out is None:
            raise _Problem("the target shape is not known at conversion time (dynamic shape)")
        full_in = self.shapes.get(node.input[0]) or (1,)
        if full_out[0] != full_in[0]:
            raise _Problem(f"the reshape to {full_out} moves the batch axis")
        out = tuple(full_out[1:])
        if out == in_shape:
            return src
        k = len(in_shape) - len(out)
        if k > 0:
            for start in range(len(out)):
                end = start + k
                if in_shape[:start] == out[:start] and in_shape[end + 1:] == out[start + 1:] \
                        and int(np.prod(in_shape[start:end + 1])) == out[start]:
                    return self.linear(node, index, N.Flatten(start_dim=start, end_dim=end), src).name
        raise _Problem(f"reshape {in_shape} -> {out} is not a merge of adjacent axes (only flattening "
                       f"reshapes are supported)")

    _op_Squeeze = _op_Reshape

    def _op_BatchNormalization(self, node, index):
        a = _attrs(node)
        if a.get("training_mode", 0):
            raise _Problem("training_mode=1; export the model in eval mode")
        if any(o and self.uses[o] for o in node.output[1:]):
            raise _Problem("its running-statistics outputs are used")
        src = self.data(node, 0)
        scale, bias = self.const(node, 1, "scale"), self.const(node, 2, "B")
        mean, var = self.const(node, 3, "input_mean"), self.const(node, 4, "input_var")
        eps = float(a.get("epsilon", 1e-5))
        gain = scale / np.sqrt(var + eps)
        shift = bias - mean * gain
        op = self.ann.ops[src]
        if op.kind == "linear" and isinstance(op.node, (N.Linear, N.Conv1d, N.Conv2d)) \
                and self.single_use(node.input[0]):
            old = op.node
            w = old.weight * gain.reshape((-1,) + (1,) * (old.weight.ndim - 1))
            b = np.asarray(getattr(old, "bias", 0.0)) * gain + shift
            if isinstance(old, (N.Conv1d, N.Conv2d)):
                op.node = dataclasses.replace(old, weight=w, bias=b)
            else:
                op.node = N.Affine(weight=w, bias=b)
            op.source += f" + {self.label(node, index)} (folded)"
            return op.name
        return self.linear(node, index, _channel_affine(gain, shift, len(op.shape) - 1), src).name

    def _op_Concat(self, node, index):
        srcs = [self.data(node, i) for i in range(len(node.input))]
        shapes = [self.ann.ops[s].shape for s in srcs]
        rank = len(shapes[0]) + 1
        axis = int(_attrs(node)["axis"])
        if axis < 0:
            axis += rank
        if axis != 1:
            raise _Problem(f"only a concat along the channel/feature axis 1 is supported, not axis {axis}")
        if any(s[1:] != shapes[0][1:] for s in shapes):
            raise _Problem(f"inputs {shapes} differ in more than the channel axis")
        shape = (sum(s[0] for s in shapes),) + shapes[0][1:]
        return self.new_op(self.label(node, index), "concat", srcs, shape, source=self.label(node, index)).name


def _channel_affine(gain: np.ndarray, shift: np.ndarray, spatial: int) -> N.Node:
    """``y[c] = gain[c] * x[c] + shift[c]`` as a diagonal Affine or a depthwise 1x1 convolution."""
    c = gain.shape[0]
    if spatial == 0:
        return N.Affine(weight=np.diag(gain), bias=shift)
    cls = N.Conv2d if spatial == 2 else N.Conv1d
    return cls(weight=gain.reshape((c, 1) + (1,) * spatial), bias=shift, groups=c)


def _pads(a: dict, spatial: tuple, kernel: tuple, stride: tuple, dilation: tuple) -> tuple:
    """Symmetric padding per spatial axis from ``pads``/``auto_pad``; _Problem when asymmetric."""
    nd = len(kernel)
    auto = a.get("auto_pad", "NOTSET")
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        out = []
        for n, k, s, d in zip(spatial, kernel, stride, dilation):
            total = max((-(-n // s) - 1) * s + (k - 1) * d + 1 - n, 0)
            if total % 2:
                raise _Problem(f"auto_pad={auto} needs asymmetric padding ({total} in total) here")
            out.append(total // 2)
        return tuple(out)
    if auto == "VALID":
        return (0,) * nd
    pads = list(a.get("pads", [0] * (2 * nd)))
    begin, end = pads[:nd], pads[nd:]
    if begin != end:
        raise _Problem(f"asymmetric padding {pads} is not supported (begin and end must be equal)")
    return tuple(begin)


# ------------------------------------------------------------------------------------------
# Concat
# ------------------------------------------------------------------------------------------
def lower_concats(ann: Ann) -> None:
    """Remove every ``concat`` op; the graph has no concat node, only sums of edges.

    1. A ReLU, average pool, depthwise convolution (a BatchNormalization after the Concat) or full
       Flatten (all per-channel, and a flatten of a channel-major concat is the concat of the
       flattened parts) that alone consumes a Concat is moved in front of it, one copy (or
       channel slice) per input.
    2. A Concat consumed only by a Conv (groups=1) or Gemm/MatMul is absorbed into that layer: its
       weight is split along the input axis into one layer per Concat input (block-structured
       weights), the bias stays with the first, and the parts meet at one node (a sum).
    3. Otherwise each input is embedded into the full channel range with a 0/1 1x1 convolution (or
       a 0/1 Linear for feature vectors), and the embeddings are summed.
    """
    while True:
        concat = next((op for op in ann.ops.values() if op.kind == "concat"), None)
        if concat is None:
            return
        users = ann.consumers(concat.name)
        is_output = concat.name in ann.outputs.values()
        user = ann.ops[users[0]] if len(users) == 1 and not is_output else None
        sizes = [ann.ops[i].shape[0] for i in concat.inputs]
        if user is not None and (user.kind == "relu" or (
                user.kind == "linear" and _channelwise(user.node, concat.shape))):
            parts, offset = [], 0
            for i, (src, size) in enumerate(zip(concat.inputs, sizes)):
                node = _channel_slice(user.node, offset, size) if user.node is not None else None
                offset += size
                shape = node.infer_shape(ann.ops[src].shape) if node is not None else ann.ops[src].shape
                parts.append(ann.add(AnnOp(ann.unique(f"{user.name}_{i}"), user.kind, [src], tuple(shape),
                                           node, user.source)).name)
            del ann.ops[concat.name]
            ann.ops[user.name] = AnnOp(user.name, "concat", parts, user.shape, None, concat.source)
        elif user is not None and user.kind == "linear" and isinstance(user.node, (N.Linear, N.Conv1d, N.Conv2d)) \
                and getattr(user.node, "groups", 1) == 1:
            parts, offset = [], 0
            for i, (src, size) in enumerate(zip(concat.inputs, sizes)):
                w = user.node.weight[:, offset:offset + size]
                offset += size
                bias = getattr(user.node, "bias", np.float64(0.0)) if i == 0 else np.float64(0.0)
                if isinstance(user.node, N.Linear):
                    node = N.Affine(weight=w, bias=bias) if i == 0 and isinstance(user.node, N.Affine) \
                        else N.Linear(weight=w)
                else:
                    node = dataclasses.replace(user.node, weight=w, bias=bias)
                parts.append(ann.add(AnnOp(ann.unique(f"{user.name}_{i}"), "linear", [src], user.shape, node,
                                           user.source)).name)
            del ann.ops[concat.name]
            ann.ops[user.name] = AnnOp(user.name, "add", parts, user.shape, None, user.source)
        else:
            total = concat.shape[0]
            spatial = len(concat.shape) - 1
            parts, offset = [], 0
            for i, (src, size) in enumerate(zip(concat.inputs, sizes)):
                w = np.zeros((total, size))
                w[offset:offset + size] = np.eye(size)
                offset += size
                if spatial == 0:
                    node = N.Linear(weight=w)
                else:
                    node = (N.Conv2d if spatial == 2 else N.Conv1d)(weight=w.reshape((total, size) + (1,) * spatial))
                parts.append(ann.add(AnnOp(ann.unique(f"{concat.name}_embed{i}"), "linear", [src], concat.shape,
                                           node, concat.source)).name)
            concat.kind, concat.inputs = "add", parts
        ann.sort()


def _depthwise(node, channels: int) -> bool:
    return isinstance(node, (N.Conv1d, N.Conv2d)) and node.groups == channels \
        and node.weight.shape[:2] == (channels, 1)


def _channelwise(node, shape: tuple) -> bool:
    """True when ``node`` acts on each channel of a ``shape`` tensor separately (so it commutes
    with a channel concat); a flatten of all axes counts (the channel axis is outermost)."""
    if isinstance(node, N.AvgPool2d):
        return True
    if isinstance(node, N.Flatten):
        return node.start_dim % len(shape) == 0 and node.end_dim % len(shape) == len(shape) - 1
    return _depthwise(node, shape[0])


def _channel_slice(node, offset: int, size: int):
    """The part of a channelwise node that acts on channels ``offset .. offset+size-1``."""
    if isinstance(node, (N.Conv1d, N.Conv2d)):
        bias = node.bias[offset:offset + size] if node.bias.ndim else node.bias
        return dataclasses.replace(node, weight=node.weight[offset:offset + size], bias=bias, groups=size)
    return dataclasses.replace(node)


# ------------------------------------------------------------------------------------------
# entry point
# ------------------------------------------------------------------------------------------
def parse(path, input_shape=None) -> Ann:
    """The analog network of an ONNX file (see the module docstring)."""
    file = str(path)
    model = load_model(path)
    fixed = fix_input_shapes(model, input_shape, file)
    inferred = infer_shapes(fixed, file)
    shapes = tensor_shapes(inferred)
    nodes, consts = fold_constants(inferred, shapes, file)
    unknown = [(n, i) for i, n in enumerate(nodes)
               if n.domain not in ("", "ai.onnx") or n.op_type not in SUPPORTED]
    if unknown:
        listing = ", ".join(f"'{n.name or f'#{i} -> {n.output[0]}'}' ({(n.domain + '.') if n.domain else ''}{n.op_type})"
                            for n, i in unknown)
        hints = [f"{op}: {HINTS[op]}" for op in dict.fromkeys(n.op_type for n, _ in unknown) if op in HINTS]
        err = UnsupportedError(
            f"{len(unknown)} unsupported ONNX node(s): {listing}. " + ("; ".join(hints) + ". " if hints else "")
            + f"Supported: {', '.join(SUPPORTED)}", file=file)
        err.unsupported = [(n.name, n.op_type) for n, _ in unknown]
        raise err
    inputs = _graph_inputs(inferred)
    for inp in inputs:
        if shapes.get(inp.name) is None:  # pragma: no cover - fixed above
            raise UnsupportedError(f"input '{inp.name}' has a dynamic shape", file=file)
    parser = _Parser(nodes, consts, shapes, [o.name for o in inferred.graph.output], file)
    ann = parser.run(inputs)
    lower_concats(ann)
    ann.prune()
    return ann
