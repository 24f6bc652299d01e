"""Sigma-delta neurons (Lava's ``lava.proc.sdn``): temporally sparse, graded-message neurons.

Semantics read from lava-nc 0.10 ``lava/proc/sdn/process.py`` and ``models.py`` (floating_pt);
all state starts at 0. The spike condition is ``|.| >= vth`` (the code's ``>=``; Lava's
docstrings say ``>``). Outputs are *graded* messages: the value sent, zero when nothing is sent.
The fixed-point form (``state_exp``/``spike_exp`` scaling, the shift of each message) belongs to
the Loihi 2 lowering and emulator.
"""
from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np

from neurocompile.errors import GraphError
from neurocompile.ir.nodes.base import Node, require_finite

ACTIVATIONS = ("relu", "unit")


def _check_vth(node: Node) -> None:
    require_finite(node, "vth")
    if np.any(node.vth < 0):
        raise GraphError("vth must be >= 0")


@dataclasses.dataclass(eq=False)
class SigmaDelta(Node):
    """Sigma-delta neuron (Lava ``SigmaDelta``)::

        sigma[t] = sigma[t-1] + x[t]
        act[t]   = f(sigma[t] + bias)            f = max(., 0) ("relu") or identity ("unit")
        delta[t] = act[t] - act[t-1] + res[t-1]
        e[t]     = e[t-1] + delta[t]             (cum_error only)
        y[t]     = delta[t] if |delta[t]| >= vth else 0      (|e[t]| >= vth with cum_error)
        res[t]   = delta[t] - y[t];   e[t] = 0 where y[t] != 0

    Output: the graded message ``y[t]``; a downstream synapse applied to the sum of messages sees
    ``act`` to within ``vth``. State: ``sigma``, ``act``, ``res``, ``e``.
    """

    op: ClassVar[str] = "SigmaDelta"
    stateful: ClassVar[bool] = True
    graded: ClassVar[bool] = True
    is_neuron: ClassVar[bool] = True
    state_vars: ClassVar[tuple[str, ...]] = ("sigma", "act", "res", "e")
    membrane: ClassVar[str | None] = "sigma"

    vth: np.ndarray = 0.0
    bias: np.ndarray = 0.0
    act: str = "relu"
    cum_error: bool = False

    def check(self) -> None:
        if self.act not in ACTIVATIONS:
            raise GraphError(f"act must be one of {ACTIVATIONS}, got '{self.act}'")
        _check_vth(self)
        require_finite(self, "bias")


@dataclasses.dataclass(eq=False)
class Delta(Node):
    """Delta encoder (Lava ``Delta``): SigmaDelta's message stage applied to the input *value*
    (``act[t] = x[t]``; no integration, activation or bias). Output: the graded message."""

    op: ClassVar[str] = "Delta"
    stateful: ClassVar[bool] = True
    graded: ClassVar[bool] = True
    state_vars: ClassVar[tuple[str, ...]] = ("act", "res", "e")

    vth: np.ndarray = 0.0
    cum_error: bool = False

    def check(self) -> None:
        _check_vth(self)
