"""Stateless weighted nodes: Affine, Linear, Scale, Conv1d, Conv2d. All act within one step."""
from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np

from neurocompile.errors import GraphError
from neurocompile.ir.nodes.base import Node, Shape, require_finite


@dataclasses.dataclass(eq=False)
class Linear(Node):
    """``y[t] = weight @ x[t]``; ``weight`` has shape (out, in) and ``x`` shape (in,)."""

    op: ClassVar[str] = "Linear"

    weight: np.ndarray = None

    def check(self) -> None:
        if self.weight is None or self.weight.ndim != 2:
            raise GraphError("weight must be a 2-d array (out_features, in_features)")
        require_finite(self, "weight")

    def infer_shape(self, in_shape: Shape | None) -> Shape:
        if in_shape is None:
            return (self.weight.shape[0],)  # an unconnected-input graph still gets shapes
        if tuple(in_shape) != (self.weight.shape[1],):
            raise GraphError(
                f"weight has shape {self.weight.shape} but its input has shape {tuple(in_shape)}"
            )
        return (self.weight.shape[0],)


@dataclasses.dataclass(eq=False)
class Affine(Linear):
    """``y[t] = weight @ x[t] + bias``; ``bias`` has shape (out,)."""

    op: ClassVar[str] = "Affine"

    bias: np.ndarray = 0.0

    def check(self) -> None:
        super().check()
        require_finite(self, "bias")
        if self.bias.shape not in ((), (self.weight.shape[0],)):
            raise GraphError(f"bias has shape {self.bias.shape}, expected ({self.weight.shape[0]},)")


@dataclasses.dataclass(eq=False)
class Scale(Node):
    """``y[t] = scale * x[t]`` elementwise (``scale`` broadcasts over the input)."""

    op: ClassVar[str] = "Scale"

    scale: np.ndarray = 1.0

    def check(self) -> None:
        require_finite(self, "scale")


def _tuple(value, n: int, name: str) -> tuple[int, ...]:
    arr = np.atleast_1d(np.asarray(value))
    if arr.size == 1:
        arr = np.repeat(arr, n)
    if arr.size != n:
        raise GraphError(f"{name} needs {n} values, got {arr.tolist()}")
    return tuple(int(v) for v in arr)


@dataclasses.dataclass(eq=False)
class _ConvNd(Node):
    """Cross-correlation as in PyTorch, per step::

        y[t][co, p] = bias[co] + sum_{ci in group(co), k} weight[co, ci, k] * x_pad[t][ci, p*stride + k*dilation]

    ``weight`` is (C_out, C_in/groups, *kernel); input (C_in, *spatial); zero padding of
    ``padding`` on both sides of each spatial axis (``"same"`` needs stride 1 and an odd span).
    """

    ndim: ClassVar[int] = 0

    weight: np.ndarray = None
    bias: np.ndarray = 0.0
    stride: tuple = 1
    padding: tuple = 0
    dilation: tuple = 1
    groups: int = 1

    def __post_init__(self):
        super().__post_init__()
        n = self.ndim
        self.stride = _tuple(self.stride, n, "stride")
        self.dilation = _tuple(self.dilation, n, "dilation")
        self.groups = int(self.groups)
        if isinstance(self.padding, str):
            kernel = self.weight.shape[2:]
            if self.padding == "valid":
                self.padding = (0,) * n
            elif self.padding == "same":
                spans = [d * (k - 1) for d, k in zip(self.dilation, kernel)]
                if any(s % 2 for s in spans) or any(s != 1 for s in self.stride):
                    raise GraphError("padding='same' needs stride 1 and an odd kernel span")
                self.padding = tuple(s // 2 for s in spans)
            else:
                raise GraphError(f"padding must be an int, a tuple, 'same' or 'valid', got '{self.padding}'")
        else:
            self.padding = _tuple(self.padding, n, "padding")

    def check(self) -> None:
        if self.weight is None or self.weight.ndim != self.ndim + 2:
            raise GraphError(f"weight must be {self.ndim + 2}-d (C_out, C_in/groups, *kernel)")
        require_finite(self, "weight", "bias")
        if self.weight.shape[0] % self.groups:
            raise GraphError(f"C_out={self.weight.shape[0]} is not divisible by groups={self.groups}")
        if self.bias.shape not in ((), (self.weight.shape[0],)):
            raise GraphError(f"bias has shape {self.bias.shape}, expected ({self.weight.shape[0]},)")

    def infer_shape(self, in_shape: Shape | None) -> Shape:
        if in_shape is None or len(in_shape) != self.ndim + 1:
            raise GraphError(f"expects input (C, {', '.join('N' * self.ndim)}), got {in_shape}")
        c_in = self.weight.shape[1] * self.groups
        if in_shape[0] != c_in:
            raise GraphError(f"expects {c_in} input channels, got input shape {tuple(in_shape)}")
        out = [self.weight.shape[0]]
        for n, k, s, p, d in zip(in_shape[1:], self.weight.shape[2:], self.stride, self.padding, self.dilation):
            size = (n + 2 * p - d * (k - 1) - 1) // s + 1
            if size <= 0:
                raise GraphError(f"kernel {k} does not fit input size {n} with padding {p}")
            out.append(size)
        return tuple(out)


@dataclasses.dataclass(eq=False)
class Conv1d(_ConvNd):
    __doc__ = _ConvNd.__doc__
    op: ClassVar[str] = "Conv1d"
    ndim: ClassVar[int] = 1


@dataclasses.dataclass(eq=False)
class Conv2d(_ConvNd):
    __doc__ = _ConvNd.__doc__
    op: ClassVar[str] = "Conv2d"
    ndim: ClassVar[int] = 2
