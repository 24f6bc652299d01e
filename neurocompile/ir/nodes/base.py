"""The node base class: parameters as dataclass fields, shape inference and checks on the node.

Conventions shared by every node:

* Shapes never include the batch dimension. At run time a value has shape ``(batch, *shape)``.
* Time is discrete. At step ``t`` a node reads ``x[t]``, the sum of the values on all its incoming
  edges, and produces ``y[t]``. A feed-forward edge carries the value its source produced at the
  same step ``t``; an edge that closes a loop (a recurrent edge) carries the value its source
  produced at step ``t-1`` (zero at ``t=0``). Every loop must pass through a stateful node.
* Arrays are float64 numpy arrays; scalar parameters broadcast over the node's shape.
"""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import numpy as np

from neurocompile.errors import GraphError

Shape = tuple[int, ...]

#: op name -> node class; filled by ``Node.__init_subclass__``.
NODE_TYPES: dict[str, type["Node"]] = {}


def as_array(value: Any) -> np.ndarray:
    """Parameters are stored as float64 arrays (0-d for scalars)."""
    return np.asarray(value, dtype=np.float64)


@dataclasses.dataclass(eq=False)
class Node:
    """Base of all graph nodes. Subclasses set ``op`` and document their equations."""

    op: ClassVar[str] = ""
    # -- traits: what passes, targets and validate ask of a node type. A new node type sets
    # -- them here, in its class, and every call site follows (ask the trait, not the class).
    #: True when the node keeps state from one step to the next (breaks a loop).
    stateful: ClassVar[bool] = False
    #: True for nodes whose output is a spike (0/1) train.
    spiking: ClassVar[bool] = False
    #: True for nodes whose output is a sparse train of graded messages (sigma-delta).
    graded: ClassVar[bool] = False
    #: True for neuron groups: the nodes a chip maps to neurons and validate compares
    #: (LIF-type neurons, readouts, sigma-delta neurons; not Threshold or the Delta encoder).
    is_neuron: ClassVar[bool] = False
    #: The state variables the node keeps (probe them as ``node.<var>``).
    state_vars: ClassVar[tuple[str, ...]] = ()
    #: The state read as the node's membrane ("v" in validate's traces): ``"v"``, ``"sigma"``, or
    #: None for nodes without one.
    membrane: ClassVar[str | None] = None
    #: The state holding the synaptic current (``"i"`` for current-based neurons): the drive a
    #: chip keeps in its current register. None when the drive is the summed input itself.
    current: ClassVar[str | None] = None
    #: The field holding the membrane's time constant (``"tau"``, ``"tau_mem"``); a node with one
    #: leaks toward ``v_leak``. None for non-leaky nodes.
    membrane_tau: ClassVar[str | None] = None
    #: True when the node's parameters are time constants, turned into per-step factors with
    #: the graph's ``dt``.
    needs_dt: ClassVar[bool] = False
    #: True for neurons that reset after a spike (fields ``reset``, ``reset_delay``, ``compare``,
    #: ``refractory``, ``v_threshold``, ``v_reset``).
    has_reset: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.op:
            NODE_TYPES[cls.op] = cls

    # -- parameters -------------------------------------------------------------------------
    @classmethod
    def array_fields(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls) if "ndarray" in str(f.type)]

    def params(self) -> dict[str, Any]:
        """All fields, arrays included, by name."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def __post_init__(self):
        for name in self.array_fields():
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, as_array(value))

    # -- shapes -----------------------------------------------------------------------------
    def infer_shape(self, in_shape: Shape | None) -> Shape:
        """Output shape for an input of ``in_shape``; raises GraphError when they do not fit.

        The default is elementwise: output shape = input shape, and every array parameter
        must broadcast to it.
        """
        if in_shape is None:
            raise GraphError(f"{self.op} needs an input shape")
        for name in self.array_fields():
            value = getattr(self, name)
            if value is None:
                continue
            try:
                if np.broadcast_shapes(value.shape, in_shape) != tuple(in_shape):
                    raise ValueError
            except ValueError:
                raise GraphError(
                    f"parameter '{name}' has shape {value.shape}, which does not broadcast to "
                    f"the input shape {tuple(in_shape)}"
                ) from None
        return tuple(in_shape)

    def check(self) -> None:
        """Parameter checks that need no shapes (signs, ranges). Raise GraphError."""

    def describe(self) -> str:
        """One line of parameters for `inspect`."""
        parts = []
        for name, value in self.params().items():
            if isinstance(value, np.ndarray):
                if value.size <= 4:
                    parts.append(f"{name}={np.array2string(value.ravel(), precision=4)}")
                else:
                    parts.append(
                        f"{name}{list(value.shape)}[{value.min():.3g}..{value.max():.3g}]"
                    )
            elif value is not None:
                parts.append(f"{name}={value}")
        return " ".join(parts)


def require_positive(node: Node, name: str) -> None:
    value = getattr(node, name)
    if np.any(~np.isfinite(value)) or np.any(value <= 0):
        raise GraphError(f"parameter '{name}' must be finite and > 0, got min {np.min(value)}")


def require_finite(node: Node, *names: str) -> None:
    for name in names:
        value = getattr(node, name)
        if value is not None and not np.all(np.isfinite(value)):
            raise GraphError(f"parameter '{name}' has NaN or infinite entries")
