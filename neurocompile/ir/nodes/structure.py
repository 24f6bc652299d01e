"""Input, Output, Identity, Flatten, pooling and Delay nodes."""
from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np

from neurocompile.errors import GraphError
from neurocompile.ir.nodes.base import Node, Shape
from neurocompile.ir.nodes.synapses import _tuple


@dataclasses.dataclass(eq=False)
class Input(Node):
    """A graph input: ``y[t]`` is the external input at step ``t``, of shape ``shape``."""

    op: ClassVar[str] = "Input"

    shape: tuple = ()

    def __post_init__(self):
        self.shape = tuple(int(s) for s in self.shape)

    def infer_shape(self, in_shape: Shape | None) -> Shape:
        return self.shape


@dataclasses.dataclass(eq=False)
class Output(Node):
    """A graph output: ``y[t] = x[t]``, recorded as the run's result."""

    op: ClassVar[str] = "Output"


@dataclasses.dataclass(eq=False)
class Identity(Node):
    """``y[t] = x[t]``; removed by the ``remove-identity`` pass."""

    op: ClassVar[str] = "Identity"


@dataclasses.dataclass(eq=False)
class Flatten(Node):
    """Reshape: merge dims ``start_dim..end_dim`` (of the unbatched shape) into one."""

    op: ClassVar[str] = "Flatten"

    start_dim: int = 0
    end_dim: int = -1

    def infer_shape(self, in_shape: Shape | None) -> Shape:
        if in_shape is None:
            raise GraphError("Flatten needs an input shape")
        n = len(in_shape)
        start = self.start_dim % n if n else 0
        end = self.end_dim % n if n else 0
        if start > end:
            raise GraphError(f"start_dim {self.start_dim} is after end_dim {self.end_dim} for shape {in_shape}")
        merged = int(np.prod(in_shape[start:end + 1]))
        return tuple(in_shape[:start]) + (merged,) + tuple(in_shape[end + 1:])


@dataclasses.dataclass(eq=False)
class _Pool2d(Node):
    """2-d pooling over (C, H, W), zero padding, window ``kernel_size`` moved by ``stride``."""

    kernel_size: tuple = 2
    stride: tuple = None
    padding: tuple = 0

    def __post_init__(self):
        self.kernel_size = _tuple(self.kernel_size, 2, "kernel_size")
        self.stride = self.kernel_size if self.stride is None else _tuple(self.stride, 2, "stride")
        self.padding = _tuple(self.padding, 2, "padding")

    def infer_shape(self, in_shape: Shape | None) -> Shape:
        if in_shape is None or len(in_shape) != 3:
            raise GraphError(f"expects input (C, H, W), got {in_shape}")
        out = [in_shape[0]]
        for n, k, s, p in zip(in_shape[1:], self.kernel_size, self.stride, self.padding):
            size = (n + 2 * p - k) // s + 1
            if size <= 0:
                raise GraphError(f"window {k} does not fit input size {n}")
            out.append(size)
        return tuple(out)


@dataclasses.dataclass(eq=False)
class SumPool2d(_Pool2d):
    """``y[t][c, i, j] = sum`` of the window of ``x[t]`` (NIR ``SumPool2d``)."""

    op: ClassVar[str] = "SumPool2d"


@dataclasses.dataclass(eq=False)
class AvgPool2d(_Pool2d):
    """``y[t][c, i, j] = mean`` of the window, padding counted (PyTorch's default)."""

    op: ClassVar[str] = "AvgPool2d"


@dataclasses.dataclass(eq=False)
class MaxPool2d(_Pool2d):
    """``y[t][c, i, j] = max`` of the window (padding is -inf). Not in NIR 1.0."""

    op: ClassVar[str] = "MaxPool2d"


@dataclasses.dataclass(eq=False)
class Delay(Node):
    """Per-element delay in whole time steps: ``y[t][i] = x[t - delay[i]][i]`` (0 before start).

    ``delay`` holds non-negative integers (steps). NIR's delays are in seconds and are divided
    by ``dt`` on import; a delay that is not a whole number of steps is an error.
    """

    op: ClassVar[str] = "Delay"
    stateful: ClassVar[bool] = True

    delay: np.ndarray = 0

    def check(self) -> None:
        d = self.delay
        if np.any(d < 0) or np.any(d != np.round(d)):
            raise GraphError("delay must hold non-negative whole numbers of time steps")

    @property
    def max_delay(self) -> int:
        return int(np.max(self.delay)) if self.delay.size else 0
