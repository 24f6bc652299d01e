"""One converter per supported ONNX op type, found through :data:`CONVERTERS`.

A converter is ``convert(builder, node, index) -> str``: it adds what ``node`` becomes to
``builder.ann`` and returns the name of the AnnOp that produces the node's (first) output. It raises
:class:`Problem` for what it cannot convert. The batch axis is dropped everywhere.

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
* ``Concat`` along the channel/feature axis -> a ``concat`` op, removed later by
  :func:`neurocompile.frontends.onnx.concat.lower_concats`;
* ``Identity``, ``Dropout`` removed; ``Softmax``/``LogSoftmax`` removed when they produce a graph
  output (recorded as an assumption), rejected elsewhere.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from neurocompile.frontends.onnx.builder import GraphBuilder, Problem, attrs
from neurocompile.frontends.onnx.folding import can_fold_into, channel_affine, fold_bias, fold_scale_shift
from neurocompile.ir import nodes as N


def convert_gemm(b: GraphBuilder, node, index) -> str:
    a = attrs(node)
    if a.get("transA", 0):
        raise Problem("transA=1 (a transposed data operand) is not supported")
    src = b.data(node, 0)
    if len(b.ann.ops[src].shape) != 1:
        raise Problem(f"the data operand must be (batch, features), got {(None,) + b.ann.ops[src].shape}")
    w = b.const(node, 1, "B")
    if w.ndim != 2:
        raise Problem(f"B must be 2-d, got shape {w.shape}")
    weight = (w if a.get("transB", 0) else w.T) * float(a.get("alpha", 1.0))
    c = b.const(node, 2, "C") if len(node.input) > 2 else None
    if c is None:
        ir = N.Linear(weight=weight)
    else:
        ir = N.Affine(weight=weight, bias=_row_bias(c * float(a.get("beta", 1.0)), weight.shape[0]))
    return b.linear(node, index, ir, src).name


def _row_bias(c: np.ndarray, m: int) -> np.ndarray:
    try:
        row = np.broadcast_to(c, (1, m)) if c.ndim <= 2 else None
    except ValueError:
        row = None
    if row is None or (c.ndim == 2 and c.shape[0] != 1):
        raise Problem(f"the bias C of shape {c.shape} depends on the batch row; expected (M,) or (1, M)")
    return np.array(row[0], dtype=np.float64)


def convert_matmul(b: GraphBuilder, node, index) -> str:
    if b.is_const(node, 0):
        raise Problem("a constant left operand (W @ x) is not supported; export x @ W")
    src = b.data(node, 0)
    if len(b.ann.ops[src].shape) != 1:
        raise Problem(f"the data operand must be (batch, features), got {(None,) + b.ann.ops[src].shape}")
    w = b.const(node, 1, "the weight operand")
    if w.ndim != 2:
        raise Problem(f"the weight operand must be 2-d, got shape {w.shape}")
    return b.linear(node, index, N.Linear(weight=w.T.copy()), src).name


def convert_add(b: GraphBuilder, node, index) -> str:
    c0, c1 = b.is_const(node, 0), b.is_const(node, 1)
    if c0 and c1:  # pragma: no cover - folded
        raise Problem("both operands are constants")
    if not c0 and not c1:
        x, y = b.data(node, 0), b.data(node, 1)
        sx, sy = b.ann.ops[x].shape, b.ann.ops[y].shape
        if sx != sy:
            raise Problem(f"broadcasting Add of tensors {sx} and {sy} is not supported (shapes must match)")
        return b.new_op(b.label(node, index), "add", [x, y], sx, source=b.label(node, index)).name
    src_i = 1 if c0 else 0
    src = b.data(node, src_i)
    shape = b.ann.ops[src].shape
    c = b.const(node, 1 - src_i, "the constant operand")
    try:
        full = np.broadcast_to(c, (1,) + shape)[0]
    except ValueError:
        raise Problem(f"the constant of shape {c.shape} does not broadcast to {shape}") from None
    if np.broadcast_shapes(c.shape, (1,) + shape) != (1,) + shape:
        raise Problem(f"the constant of shape {c.shape} broadcasts over the batch axis")
    per_channel = full.reshape(shape[0], -1)
    if len(shape) > 1 and not np.all(per_channel == per_channel[:, :1]):
        raise Problem("adding a constant that varies along the spatial axes is not supported")
    bias = per_channel[:, 0] if len(shape) > 1 else full
    op = b.ann.ops[src]
    if can_fold_into(op) and b.single_use(node.input[src_i]):
        fold_bias(op, bias, b.label(node, index))
        return op.name
    return b.linear(node, index, channel_affine(np.ones(shape[0]), bias, len(shape) - 1), src).name


def convert_conv(b: GraphBuilder, node, index) -> str:
    a = attrs(node)
    src = b.data(node, 0)
    w = b.const(node, 1, "the weight")
    nd = w.ndim - 2
    if nd not in (1, 2):
        raise Problem(f"{nd}-d convolution is not supported (1-d and 2-d are)")
    in_shape = b.ann.ops[src].shape
    if len(in_shape) != nd + 1:
        raise Problem(f"input shape {in_shape} does not fit a {nd}-d convolution")
    bias = b.const(node, 2, "the bias") if len(node.input) > 2 and node.input[2] else None
    if "kernel_shape" in a and tuple(a["kernel_shape"]) != w.shape[2:]:
        raise Problem(f"kernel_shape {a['kernel_shape']} disagrees with the weight {w.shape}")
    stride = tuple(a.get("strides", [1] * nd))
    dilation = tuple(a.get("dilations", [1] * nd))
    pads = _pads(a, in_shape[1:], w.shape[2:], stride, dilation)
    cls = N.Conv2d if nd == 2 else N.Conv1d
    ir = cls(weight=w, bias=0.0 if bias is None else bias, stride=stride, padding=pads, dilation=dilation,
             groups=int(a.get("group", 1)))
    op = b.linear(node, index, ir, src)
    b.check_shape(node, op)
    return op.name


def _pads(a: dict, spatial: tuple, kernel: tuple, stride: tuple, dilation: tuple) -> tuple:
    """Symmetric padding per spatial axis from ``pads``/``auto_pad``; Problem when asymmetric."""
    nd = len(kernel)
    auto = a.get("auto_pad", "NOTSET")
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        out = []
        for n, k, s, d in zip(spatial, kernel, stride, dilation):
            total = max((-(-n // s) - 1) * s + (k - 1) * d + 1 - n, 0)
            if total % 2:
                raise Problem(f"auto_pad={auto} needs asymmetric padding ({total} in total) here")
            out.append(total // 2)
        return tuple(out)
    if auto == "VALID":
        return (0,) * nd
    pads = list(a.get("pads", [0] * (2 * nd)))
    begin, end = pads[:nd], pads[nd:]
    if begin != end:
        raise Problem(f"asymmetric padding {pads} is not supported (begin and end must be equal)")
    return tuple(begin)


def convert_relu(b: GraphBuilder, node, index) -> str:
    src = b.data(node, 0)
    return b.new_op(b.label(node, index), "relu", [src], b.ann.ops[src].shape,
                    source=b.label(node, index)).name


def convert_average_pool(b: GraphBuilder, node, index) -> str:
    a = attrs(node)
    src = b.data(node, 0)
    in_shape = b.ann.ops[src].shape
    kernel = tuple(a["kernel_shape"])
    nd = len(kernel)
    if nd not in (1, 2) or len(in_shape) != nd + 1:
        raise Problem(f"{nd}-d pooling of input {in_shape} is not supported (1-d and 2-d are)")
    if any(d != 1 for d in a.get("dilations", [1] * nd)):
        raise Problem("dilated pooling is not supported")
    stride = tuple(a.get("strides", [1] * nd))
    pads = _pads(a, in_shape[1:], kernel, stride, (1,) * nd)
    if any(pads) and not a.get("count_include_pad", 0):
        raise Problem("padding with count_include_pad=0 (border windows divide by fewer "
                      "elements) is not supported; use count_include_pad=1 or no padding")
    if nd == 2:
        ir = N.AvgPool2d(kernel_size=kernel, stride=stride, padding=pads)
    else:
        c = in_shape[0]
        ir = N.Conv1d(weight=np.full((c, 1, kernel[0]), 1.0 / kernel[0]), stride=stride, padding=pads,
                      groups=c)
    op = b.linear(node, index, ir, src)
    b.check_shape(node, op)
    return op.name


def convert_global_average_pool(b: GraphBuilder, node, index) -> str:
    src = b.data(node, 0)
    in_shape = b.ann.ops[src].shape
    if len(in_shape) == 3:
        ir = N.AvgPool2d(kernel_size=in_shape[1:], stride=in_shape[1:])
    elif len(in_shape) == 2:
        c, n = in_shape
        ir = N.Conv1d(weight=np.full((c, 1, n), 1.0 / n), groups=c)
    else:
        raise Problem(f"input shape {in_shape} is not (C, H, W) or (C, L)")
    return b.linear(node, index, ir, src).name


def convert_flatten(b: GraphBuilder, node, index) -> str:
    src = b.data(node, 0)
    in_shape = b.ann.ops[src].shape
    axis = int(attrs(node).get("axis", 1))
    if axis < 0:
        axis += len(in_shape) + 1
    if axis != 1:
        raise Problem(f"axis={axis} merges the batch axis with others; only axis=1 is supported")
    if len(in_shape) <= 1:
        return src
    return b.linear(node, index, N.Flatten(start_dim=0, end_dim=-1), src).name


def convert_reshape(b: GraphBuilder, node, index) -> str:
    """``Reshape`` and ``Squeeze``: identity, or a merge of one run of adjacent axes."""
    src = b.data(node, 0)
    in_shape = b.ann.ops[src].shape
    full_out = b.shapes.get(node.output[0])
    if full_out is None:
        raise Problem("the target shape is not known at conversion time (dynamic shape)")
    full_in = b.shapes.get(node.input[0]) or (1,)
    if full_out[0] != full_in[0]:
        raise Problem(f"the reshape to {full_out} moves the batch axis")
    out = tuple(full_out[1:])
    if out == in_shape:
        return src
    k = len(in_shape) - len(out)
    if k > 0:
        for start in range(len(out)):
            end = start + k
            if in_shape[:start] == out[:start] and in_shape[end + 1:] == out[start + 1:] \
                    and int(np.prod(in_shape[start:end + 1])) == out[start]:
                return b.linear(node, index, N.Flatten(start_dim=start, end_dim=end), src).name
    raise Problem(f"reshape {in_shape} -> {out} is not a merge of adjacent axes (only flattening "
                  f"reshapes are supported)")


def convert_batch_normalization(b: GraphBuilder, node, index) -> str:
    a = attrs(node)
    if a.get("training_mode", 0):
        raise Problem("training_mode=1; export the model in eval mode")
    if any(o and b.uses[o] for o in node.output[1:]):
        raise Problem("its running-statistics outputs are used")
    src = b.data(node, 0)
    scale, bias = b.const(node, 1, "scale"), b.const(node, 2, "B")
    mean, var = b.const(node, 3, "input_mean"), b.const(node, 4, "input_var")
    eps = float(a.get("epsilon", 1e-5))
    gain = scale / np.sqrt(var + eps)
    shift = bias - mean * gain
    op = b.ann.ops[src]
    if can_fold_into(op) and b.single_use(node.input[0]):
        fold_scale_shift(op, gain, shift, b.label(node, index))
        return op.name
    return b.linear(node, index, channel_affine(gain, shift, len(op.shape) - 1), src).name


def convert_concat(b: GraphBuilder, node, index) -> str:
    srcs = [b.data(node, i) for i in range(len(node.input))]
    shapes = [b.ann.ops[s].shape for s in srcs]
    rank = len(shapes[0]) + 1
    axis = int(attrs(node)["axis"])
    if axis < 0:
        axis += rank
    if axis != 1:
        raise Problem(f"only a concat along the channel/feature axis 1 is supported, not axis {axis}")
    if any(s[1:] != shapes[0][1:] for s in shapes):
        raise Problem(f"inputs {shapes} differ in more than the channel axis")
    shape = (sum(s[0] for s in shapes),) + shapes[0][1:]
    return b.new_op(b.label(node, index), "concat", srcs, shape, source=b.label(node, index)).name


def convert_identity(b: GraphBuilder, node, index) -> str:
    return b.data(node, 0)


def convert_dropout(b: GraphBuilder, node, index) -> str:
    if len(node.output) > 1 and node.output[1] and b.uses[node.output[1]]:
        raise Problem("its mask output is used")
    return b.data(node, 0)


def convert_softmax(b: GraphBuilder, node, index) -> str:
    """``Softmax`` and ``LogSoftmax``: dropped where they produce a graph output."""
    src = b.data(node, 0)
    out = node.output[0]
    if out not in b.graph_outputs or b.uses[out] != 1:
        raise Problem("a Softmax is only removable where it produces a graph output")
    b.ann.note(f"the final {node.op_type} '{b.label(node, index)}' is dropped: the spiking network "
               f"reads out its input (the logits), and argmax is unchanged")
    return src


#: ONNX op type -> converter; the order is the one error messages list the supported ops in.
CONVERTERS: dict[str, Callable[[GraphBuilder, object, int], str]] = {
    "Gemm": convert_gemm,
    "MatMul": convert_matmul,
    "Add": convert_add,
    "Conv": convert_conv,
    "Relu": convert_relu,
    "AveragePool": convert_average_pool,
    "GlobalAveragePool": convert_global_average_pool,
    "Flatten": convert_flatten,
    "Reshape": convert_reshape,
    "Squeeze": convert_reshape,
    "BatchNormalization": convert_batch_normalization,
    "Concat": convert_concat,
    "Identity": convert_identity,
    "Dropout": convert_dropout,
    "Softmax": convert_softmax,
    "LogSoftmax": convert_softmax,
}

#: ONNX op types of the data path that the converter handles.
SUPPORTED = tuple(CONVERTERS)
