"""Fuse a sum/average pooling that feeds a convolution into one strided convolution.

``SumPool2d(k, stride k, no padding)`` followed by ``Conv2d(W, stride S, padding P, dilation 1)``
is exactly ``Conv2d(W', stride S*k, padding P*k)`` on the unpooled input, with
``W'[o, c, k*i + u, k*j + v] = W[o, c, i, j]`` (``AvgPool2d``: divided by ``k*k``): each pooled
value is the sum of a ``k x k`` block, and a zero-padded pooled position is a zero-padded block.
The input height and width must be multiples of ``k`` (otherwise pooling drops a remainder that
the fused conv would read). Chips with convolution synapses then keep the layer as a convolution
instead of a dense matrix.
"""
from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np

from neurocompile.ir import nodes as N
from neurocompile.ir.graph import Graph
from neurocompile.passes.base import Pass, PassContext


def _fusable(graph: Graph, pool: str, shapes: dict) -> str | None:
    node = graph.nodes[pool]
    if not isinstance(node, (N.SumPool2d, N.AvgPool2d)):
        return None
    k = node.kernel_size
    if k[0] != k[1] or tuple(node.stride) != tuple(k) or any(node.padding):
        return None
    succ, preds = graph.successors(pool), graph.predecessors(pool)
    if len(succ) != 1 or len(preds) != 1 or len(graph.predecessors(succ[0])) != 1:
        return None
    conv = graph.nodes[succ[0]]
    if not isinstance(conv, N.Conv2d) or any(d != 1 for d in conv.dilation):
        return None
    in_shape = shapes[preds[0]]
    if in_shape[1] % k[0] or in_shape[2] % k[1]:
        return None
    return succ[0]


def fused_conv(pool: N.Node, conv: N.Conv2d) -> N.Conv2d:
    k = pool.kernel_size[0]
    w = np.repeat(np.repeat(conv.weight, k, axis=2), k, axis=3)
    if isinstance(pool, N.AvgPool2d):
        w = w / (k * k)
    return N.Conv2d(weight=w, bias=conv.bias, stride=tuple(s * k for s in conv.stride),
                    padding=tuple(p * k for p in conv.padding), dilation=1, groups=conv.groups)


@dataclasses.dataclass(frozen=True)
class FusePoolIntoConv(Pass):
    name: ClassVar[str] = "fuse-pool-conv"

    def run(self, graph: Graph, ctx: PassContext) -> Graph:
        shapes = graph.infer_shapes()
        pairs = [(p, c) for p in graph.nodes if (c := _fusable(graph, p, shapes))]
        if not pairs:
            return graph
        g = graph.copy()
        for pool, conv in pairs:
            (src,) = g.predecessors(pool)
            g.nodes[conv] = fused_conv(g.nodes[pool], g.nodes[conv])
            del g.nodes[pool]
            g.edges = [e for e in g.edges if pool not in e] + [(src, conv)]
            g.metadata.setdefault("fused", {})[conv] = [pool, conv]
        return g
