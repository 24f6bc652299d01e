"""Removing the ``concat`` ops of an :class:`Ann` (the graph has no concat node, only sums of edges)."""
from __future__ import annotations

import dataclasses

import numpy as np

from neurocompile.frontends.onnx.ann import Ann, AnnOp
from neurocompile.ir import nodes as N


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
