"""Time-unit sanity: time constants that cannot be meant with this ``dt``.

Exporters write time in their own units (norse ``dt*tau``, sinabs and spyx steps), so a file read
with the wrong convention or ``dt`` silently diverges or goes silent. :func:`check_time_units`
looks at every neuron's decays and input gain per step and

* raises :class:`NeuroCompileError` naming the node, tau and dt when the forward-Euler decay
  ``1 - dt/tau`` is negative (``dt > tau``: the state oscillates and grows without bound);
* returns warnings when a state decays to nothing within one step (``dt/tau > 20``) or when the
  per-step input gain ``(1 - beta)*r`` (``(1 - alpha)*w_in`` for a current) is below 1e-4
  (``tau`` is ~1e4 steps or more: the network will likely stay silent).

Each message names the likely fix (a convention, ``--dt``).
"""
from __future__ import annotations

import numpy as np

from neurocompile.errors import NeuroCompileError, UnsupportedError
from neurocompile.ir import nodes as N

FIX = ("the file's time constants are probably in another unit: name its exporter with --convention "
       "(norse writes dt*tau; sinabs and spyx write steps) or set --dt")
GAIN_FLOOR = 1e-4
FAST = 20.0


def _pairs(node):
    """(tau field, gain) pairs of a neuron: gain multiplies (1 - decay) into the input."""
    if isinstance(node, (N.CubaLIF, N.CubaLI)):
        return [("tau_syn", node.w_in), ("tau_mem", node.r)]
    if isinstance(node, (N.LIF, N.LI)):
        return [("tau", node.r)]
    return []


def check_time_units(graph) -> list[str]:
    """Raise for impossible decays; return warnings for implausible ones (see module doc)."""
    dt, rule = graph.dt, graph.discretization
    warnings: list[str] = []
    if dt is None:
        return warnings
    for name, node in graph.nodes.items():
        for field, gain in _pairs(node):
            tau = np.asarray(getattr(node, field), dtype=np.float64)
            if tau.size == 0 or not np.all(np.isfinite(tau)) or np.any(tau <= 0):
                continue
            lo, hi = float(tau.min()), float(tau.max())
            if rule == "euler" and dt > lo * (1 + 1e-9):
                beta = 1 - dt / lo
                raise NeuroCompileError(
                    f"{field} = {lo:.4g} s is shorter than dt = {dt:g} s: the Euler decay 1 - dt/{field} = "
                    f"{beta:.4g} is negative and the state grows without bound; {FIX}", node=name)
            if dt / lo > FAST:
                warnings.append(f"node '{name}': {field} = {lo:.4g} s is {dt / lo:.3g} steps of dt = {dt:g} s "
                                f"short: the state decays to nothing within one step; {FIX}")
                continue
            beta = N.decay_factor(np.asarray(hi), dt, rule)
            eff = float(np.max(np.abs((1 - N.decay_factor(tau, dt, rule)) * np.asarray(gain, dtype=np.float64))))
            if eff < GAIN_FLOOR and hi / dt > 1 / GAIN_FLOOR:
                warnings.append(f"node '{name}': {field} = {hi:.4g} s is {hi / dt:.3g} steps of dt = {dt:g} s "
                                f"(decay {float(beta):.8g} per step): its input is scaled by {eff:.3g} per step "
                                f"and the network will likely stay silent; {FIX}")
    return warnings


def check_resolution(graph, name: str, node, field: str, target: str, resolution: float) -> None:
    """Raise, naming node, tau and dt, when ``field``'s per-step decay ``1 - beta`` is below what
    ``target`` can represent (``resolution``): the time constant is ~1/resolution steps or more."""
    dt, rule = graph.dt, graph.discretization
    tau = np.asarray(getattr(node, field), dtype=np.float64)
    if dt is None or tau.size == 0:
        return
    one_minus = 1 - N.decay_factor(tau, dt, rule)
    if np.any(one_minus < resolution):
        hi = float(tau.max())
        raise UnsupportedError(
            f"{field} = {hi:.4g} s is {hi / dt:.3g} steps of dt = {dt:g} s: its per-step decay "
            f"1 - {float(one_minus.min()):.3g} is finer than {target} can represent ({resolution:.3g}); {FIX}",
            node=name)
