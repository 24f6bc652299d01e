"""Import an snnTorch network straight from its ``torch.nn.Module`` (no NIR round trip).

What is read
------------
``nn.Sequential`` and class-based networks. The leaf layers are collected from
``named_children()`` in definition order (nested containers are walked) and taken as a chain:
the output of each layer feeds the next. When some container is not a plain ``nn.Sequential``,
the network's ``forward`` is run on a random input (first shaped ``(batch, *input_shape)``, then
``(T, batch, *input_shape)`` if that fails) with hooks on every layer, to check that each step
calls the layers once each in definition order, feeds each layer the previous layer's output
(spikes for a neuron) and gives each neuron its own state from the previous step (zero at the
first). Anything else (skipped, repeated or reordered layers, arithmetic between layers, states
from elsewhere) raises :class:`UnsupportedError` naming the module. The check sees the values
that reach the layers in that one run, not code paths the run did not take.

Layers: ``nn.Linear`` (-> Affine, or Linear without bias), ``nn.Conv2d``, ``nn.AvgPool2d``,
``nn.MaxPool2d``, ``nn.Flatten``, ``nn.Identity`` and dropout (skipped: inference),
``snn.Leaky`` (-> LIF, or IF when beta == 1), ``snn.Synaptic`` (-> CubaLIF), ``snn.RLeaky`` and
``snn.RSynaptic`` (the same neuron plus its recurrent layer in a loop ``lif -> rec -> lif``).

snnTorch's forward pass, per step (snnTorch 1.0, ``_neurons/*.py``)
--------------------------------------------------------------------
``H(z) = 1 if z > 0 else 0``; ``beta`` and ``alpha`` are clamped to [0, 1] in every forward;
``m`` is the stored membrane, ``r = H(m[t-1] - thr)`` the reset flag computed from it.

* Leaky: ``u = beta*m + x - r*thr`` (subtract), ``u = beta*(1-r)*m + x`` (zero),
  ``u = beta*m + x`` (none); ``s = H(u - thr)``. With ``reset_delay=True`` (default) the stored
  ``m`` is ``u``. With ``reset_delay=False`` it is ``u - (s - r)*thr`` (subtract) or
  ``u - (s - r)*u`` (zero).
* Synaptic: ``syn = alpha*syn + x``; ``u = beta*m + syn`` then as Leaky for subtract and none,
  but zero gives ``u = (beta*m + syn)*(1 - r)``: the whole step after a spike is cleared, the
  input of that step included (``syn`` itself is not reset).
* RLeaky: ``u = beta*m + x + rec(s[t-1])`` with ``rec`` an ``nn.Linear(N, N)`` with bias, an
  ``nn.Conv2d(C, C, k, padding=k//2)`` with bias, or ``V * s`` (``all_to_all=False``). The bias
  enters at every step, also at step 0 where ``s[-1] = 0``. Zero reset clears the whole step
  as in Synaptic.
* RSynaptic: ``syn = alpha*syn + x + rec(s[t-1])``, ``u = beta*m + syn``, resets as Synaptic.
  Its ``reset_delay=False`` branch updates a local variable and never the returned state, so it
  behaves as ``reset_delay=True`` (and raises a TypeError if ``spk`` is not passed).

How it maps to the graph
------------------------
snnTorch has no time step. With the graph's ``dt`` (default 1.0, Euler rule) each layer gets
``tau = dt/(1-beta)`` and ``r = tau/dt`` so that ``(1-beta)*r == 1`` and the graph's
``v = beta*v + (1-beta)*r*x`` is snnTorch's ``m = beta*m + x``; likewise
``tau_syn = dt/(1-alpha)``, ``w_in = tau_syn/dt``. ``reset``, ``reset_delay`` and the strict
``>`` comparison are copied. Synaptic, RLeaky and RSynaptic with zero reset and (effective)
``reset_delay=True`` clear the step after a spike: that is the graph's ``refractory=1``. One
snnTorch behaviour has no exact counterpart in the graph and is rejected unless ``strict=False``
(then imported as the graph's subtract reset without delay, and recorded as an assumption):
``reset_mechanism="subtract"`` with ``reset_delay=False``. snnTorch then tests the spike
against ``thr*(1 + r)``: a membrane still above threshold after its reset (one step pushed it
over ``2*thr``) raises the bar for the next step and can sit above threshold without firing.
With ``reset_delay=True`` (snnTorch's default) it is exact.

The recurrent layer's bias is a constant input; a recurrent edge delivers zero at step 0, so the
bias is folded into the bias of the synaptic layer in front of the neuron (or into an identity
Affine/Conv2d inserted there) and the recurrent node carries the weights only.

Node names are the modules' qualified names with ``.`` replaced by ``_`` (``fc1``, ``lif1``, or
``0``, ``1``, ... for an ``nn.Sequential``); a recurrent layer is ``<neuron>_rec``. The mapping is
in ``graph.metadata["snntorch_layers"]``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from neurocompile.errors import NeuroCompileError
from neurocompile.frontends.snntorch.builder import _Builder
from neurocompile.frontends.snntorch.chain_check import _check_chain
from neurocompile.frontends.snntorch.common import _libs
from neurocompile.frontends.snntorch.layers import _collect_leaves
from neurocompile.frontends.snntorch.loading import load_snntorch_reference
from neurocompile.ir.graph import Graph

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["from_snntorch", "load_snntorch_reference"]


def from_snntorch(module: "torch.nn.Module", input_shape: tuple, dt: float = 1.0, *,
                  strict: bool = True) -> Graph:
    """Build a :class:`Graph` that computes what ``module``'s own forward pass computes.

    ``input_shape`` is the shape of one sample at one step, without batch (``(64,)``,
    ``(1, 28, 28)``). ``dt`` is the graph's time step; it only scales the time constants (see the
    module docstring). With ``strict=False`` the two snnTorch reset variants that the graph cannot
    express exactly are accepted with a recorded assumption instead of rejected.
    """
    torch, nn, snn = _libs()
    if not isinstance(module, nn.Module):
        raise NeuroCompileError(f"expected a torch.nn.Module, got {type(module).__name__}")
    if isinstance(input_shape, int):
        input_shape = (input_shape,)
    try:
        shape = tuple(int(s) for s in input_shape)
    except (TypeError, ValueError):
        raise NeuroCompileError(f"input_shape must be a tuple of sizes, got {input_shape!r}") from None
    if not shape or any(s <= 0 for s in shape):
        raise NeuroCompileError(f"input_shape must hold positive sizes (one sample, no batch), got {shape}")
    dt = float(dt)
    if not dt > 0 or not np.isfinite(dt):
        raise NeuroCompileError(f"dt must be a positive number, got {dt}")

    leaves, plain = _collect_leaves(module, nn, snn)
    builder = _Builder(shape, dt, strict, torch, nn, snn)
    if not plain:
        builder.g.assume(_check_chain(module, leaves, shape, torch, nn, snn))
    for qualname, layer in leaves:
        builder.add_layer(qualname, layer)
    return builder.finish()
