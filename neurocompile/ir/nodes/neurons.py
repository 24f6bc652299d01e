"""Neuron nodes. Each docstring gives the exact per-step update the float reference executes.

Shared fields and conventions
-----------------------------
``dt`` and the discretisation rule are properties of the graph (``Graph.dt``,
``Graph.discretization``); a neuron turns its time constants into per-step factors with
:func:`decay_factor`:

* ``"euler"`` (forward Euler, what snnTorch, Norse and the NIR paper use): ``beta = 1 - dt/tau``
* ``"exact"`` (exact for a current held constant over the step): ``beta = exp(-dt/tau)``

A leaky membrane then moves as ``v[t] = beta*v[t-1] + (1-beta)*(v_leak + r*I[t])``.

``reset`` says what a spike does to ``v``: ``"zero"`` sets it to ``v_reset`` (0 unless given),
``"subtract"`` removes ``v_threshold``, ``"none"`` leaves it. ``reset_delay`` says when:

* ``False`` (NIR's equations): the reset is applied at the end of the spiking step; the stored and
  reported ``v`` is the value after reset.
* ``True`` (snnTorch's default ``reset_delay=True``): the reported ``v`` of the spiking step is the
  value before reset and the reset is applied in the next step: ``"zero"`` replaces the previous
  ``v`` by ``v_reset`` before the decay (same dynamics as ``False``), ``"subtract"`` subtracts
  ``v_threshold`` after the decay: ``v[t] = beta*v[t-1] + (1-beta)*(v_leak + r*I[t]) - thr*s[t-1]``.

``refractory`` (whole steps, default 0): after a spike, ``v`` is held at ``v_reset`` (input ignored,
no spike) for that many steps. snnTorch's ``Synaptic``/``RLeaky``/``RSynaptic`` with
``reset_mechanism="zero"`` behave as ``reset_delay=True, refractory=1`` (their membrane is zero
in the step after a spike); SpiNNaker's ``tau_refrac`` is the same mechanism.

``compare`` is the spike condition: ``"gt"`` fires when ``v > v_threshold`` (snnTorch, NIR,
Loihi), ``"ge"`` when ``v >= v_threshold`` (SpiNNaker).
"""
from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np

from neurocompile.errors import GraphError
from neurocompile.ir.nodes.base import Node, require_finite, require_positive

RESET_MODES = ("zero", "subtract", "none")
COMPARISONS = ("gt", "ge")
DISCRETIZATIONS = ("euler", "exact")


def decay_factor(tau: np.ndarray, dt: float, rule: str) -> np.ndarray:
    """Per-step decay ``beta`` of a state with time constant ``tau`` (same unit as ``dt``)."""
    if rule == "euler":
        return 1.0 - dt / tau
    if rule == "exact":
        return np.exp(-dt / tau)
    raise GraphError(f"unknown discretization '{rule}' (expected one of {DISCRETIZATIONS})")


def check_spiking(node: Node) -> None:
    """Check the reset and compare fields every spiking neuron has."""
    if node.reset not in RESET_MODES:
        raise GraphError(f"reset must be one of {RESET_MODES}, got '{node.reset}'")
    if int(node.refractory) != node.refractory or node.refractory < 0:
        raise GraphError(f"refractory must be a whole number of steps >= 0, got {node.refractory}")
    if node.compare not in COMPARISONS:
        raise GraphError(f"compare must be one of {COMPARISONS}, got '{node.compare}'")


@dataclasses.dataclass(eq=False)
class LIF(Node):
    """Leaky integrate-and-fire neuron (NIR ``LIF``: ``tau dv/dt = (v_leak - v) + r I``).

    Per step, with ``beta = decay_factor(tau)`` and input ``x[t]``::

        v[t] = beta * v'[t-1] + (1 - beta) * (v_leak + r * x[t])
        s[t] = v[t] > v_threshold          (or >= when compare == "ge")

    where ``v'`` is ``v`` after the reset rules of the module docstring. Output: ``s[t]`` (0/1).
    State: ``v``.
    """

    op: ClassVar[str] = "LIF"
    stateful: ClassVar[bool] = True
    spiking: ClassVar[bool] = True
    is_neuron: ClassVar[bool] = True
    state_vars: ClassVar[tuple[str, ...]] = ("v",)
    membrane: ClassVar[str | None] = "v"
    membrane_tau: ClassVar[str | None] = "tau"
    needs_dt: ClassVar[bool] = True
    has_reset: ClassVar[bool] = True

    tau: np.ndarray = None
    r: np.ndarray = 1.0
    v_leak: np.ndarray = 0.0
    v_threshold: np.ndarray = 1.0
    v_reset: np.ndarray = 0.0
    reset: str = "zero"
    reset_delay: bool = False
    compare: str = "gt"
    refractory: int = 0

    def check(self) -> None:
        require_positive(self, "tau")
        require_finite(self, "r", "v_leak", "v_threshold", "v_reset")
        check_spiking(self)


@dataclasses.dataclass(eq=False)
class CubaLIF(Node):
    """Current-based LIF (NIR ``CubaLIF``): a synaptic current feeds a leaky membrane.

    Per step, with ``alpha = decay_factor(tau_syn)``, ``beta = decay_factor(tau_mem)``::

        i[t] = alpha * i[t-1] + (1 - alpha) * w_in * x[t]
        v[t] = beta * v'[t-1] + (1 - beta) * (v_leak + r * i[t])
        s[t] = v[t] > v_threshold

    The membrane uses the current of the same step, as snnTorch's ``Synaptic`` does.
    Reset rules as for LIF. Output ``s[t]``; state ``i``, ``v``.
    """

    op: ClassVar[str] = "CubaLIF"
    stateful: ClassVar[bool] = True
    spiking: ClassVar[bool] = True
    is_neuron: ClassVar[bool] = True
    state_vars: ClassVar[tuple[str, ...]] = ("i", "v")
    membrane: ClassVar[str | None] = "v"
    current: ClassVar[str | None] = "i"
    membrane_tau: ClassVar[str | None] = "tau_mem"
    needs_dt: ClassVar[bool] = True
    has_reset: ClassVar[bool] = True

    tau_syn: np.ndarray = None
    tau_mem: np.ndarray = None
    r: np.ndarray = 1.0
    v_leak: np.ndarray = 0.0
    v_threshold: np.ndarray = 1.0
    v_reset: np.ndarray = 0.0
    w_in: np.ndarray = 1.0
    reset: str = "zero"
    reset_delay: bool = False
    compare: str = "gt"
    refractory: int = 0

    def check(self) -> None:
        require_positive(self, "tau_syn")
        require_positive(self, "tau_mem")
        require_finite(self, "r", "v_leak", "v_threshold", "v_reset", "w_in")
        check_spiking(self)


@dataclasses.dataclass(eq=False)
class IF(Node):
    """Integrate-and-fire neuron without leak (NIR ``IF``: ``dv/dt = r I``).

    NIR gives no time constant, so ``r`` is the per-step gain (Sinabs' convention, which
    exported the NIR paper's CNN, and snnTorch's NIR import)::

        v[t] = v'[t-1] + r * x[t]
        s[t] = v[t] > v_threshold

    Reset rules as for LIF (ANN-to-SNN conversion uses ``reset="subtract"``).
    """

    op: ClassVar[str] = "IF"
    stateful: ClassVar[bool] = True
    spiking: ClassVar[bool] = True
    is_neuron: ClassVar[bool] = True
    state_vars: ClassVar[tuple[str, ...]] = ("v",)
    membrane: ClassVar[str | None] = "v"
    has_reset: ClassVar[bool] = True

    r: np.ndarray = 1.0
    v_threshold: np.ndarray = 1.0
    v_reset: np.ndarray = 0.0
    reset: str = "zero"
    reset_delay: bool = False
    compare: str = "gt"
    refractory: int = 0

    def check(self) -> None:
        require_finite(self, "r", "v_threshold", "v_reset")
        check_spiking(self)


@dataclasses.dataclass(eq=False)
class LI(Node):
    """Leaky integrator, a non-spiking readout (NIR ``LI``)::

        v[t] = beta * v[t-1] + (1 - beta) * (v_leak + r * x[t])

    Output: ``v[t]``.
    """

    op: ClassVar[str] = "LI"
    stateful: ClassVar[bool] = True
    is_neuron: ClassVar[bool] = True
    state_vars: ClassVar[tuple[str, ...]] = ("v",)
    membrane: ClassVar[str | None] = "v"
    membrane_tau: ClassVar[str | None] = "tau"
    needs_dt: ClassVar[bool] = True

    tau: np.ndarray = None
    r: np.ndarray = 1.0
    v_leak: np.ndarray = 0.0

    def check(self) -> None:
        require_positive(self, "tau")
        require_finite(self, "r", "v_leak")


@dataclasses.dataclass(eq=False)
class CubaLI(Node):
    """Current-based leaky integrator, a non-spiking readout (NIR ``CubaLI``)::

        i[t] = alpha * i[t-1] + (1 - alpha) * w_in * x[t]
        v[t] = beta * v[t-1] + (1 - beta) * (v_leak + r * i[t])

    Output: ``v[t]``.
    """

    op: ClassVar[str] = "CubaLI"
    stateful: ClassVar[bool] = True
    is_neuron: ClassVar[bool] = True
    state_vars: ClassVar[tuple[str, ...]] = ("i", "v")
    membrane: ClassVar[str | None] = "v"
    current: ClassVar[str | None] = "i"
    membrane_tau: ClassVar[str | None] = "tau_mem"
    needs_dt: ClassVar[bool] = True

    tau_syn: np.ndarray = None
    tau_mem: np.ndarray = None
    r: np.ndarray = 1.0
    v_leak: np.ndarray = 0.0
    w_in: np.ndarray = 1.0

    def check(self) -> None:
        require_positive(self, "tau_syn")
        require_positive(self, "tau_mem")
        require_finite(self, "r", "v_leak", "w_in")


@dataclasses.dataclass(eq=False)
class Integrator(Node):
    """Perfect integrator (NIR ``I``), ``r`` per step like IF::

        v[t] = v[t-1] + r * x[t]

    Output: ``v[t]``.
    """

    op: ClassVar[str] = "Integrator"
    stateful: ClassVar[bool] = True
    is_neuron: ClassVar[bool] = True
    state_vars: ClassVar[tuple[str, ...]] = ("v",)
    membrane: ClassVar[str | None] = "v"

    r: np.ndarray = 1.0

    def check(self) -> None:
        require_finite(self, "r")


@dataclasses.dataclass(eq=False)
class Threshold(Node):
    """Stateless Heaviside (NIR ``Threshold``): ``y[t] = x[t] > threshold`` (0/1)."""

    op: ClassVar[str] = "Threshold"
    spiking: ClassVar[bool] = True

    threshold: np.ndarray = 0.0

    def check(self) -> None:
        require_finite(self, "threshold")


NEURON_TYPES = (LIF, CubaLIF, IF, LI, CubaLI, Integrator)
