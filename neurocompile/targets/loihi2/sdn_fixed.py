"""Lava's sigma-delta fixed-point models (``PySigmaDeltaModelFixed``/``PyDeltaModelFixed``,
lava-nc 0.10 ``lava/proc/sdn/models.py``), bit for bit, for one process driven by integer input.

At construction Lava multiplies ``vth`` and ``bias`` by ``2**(spike_exp + state_exp)``; state is
int32 (declared 24-bit, not enforced); each step runs the float equations of
:class:`neurocompile.ir.nodes.SigmaDelta` on the integers, then sends ``s >> state_exp``
(floor) while the residue keeps the unshifted value. ``Delta`` shifts its input left by
``spike_exp + state_exp`` first.
"""
from __future__ import annotations

import numpy as np

from neurocompile.errors import NeuroCompileError
from neurocompile.targets.loihi2.program import delta_update, sigma_delta_activation, wrap_int32

_STATE = ("sigma", "act", "residue", "error")


def sigma_delta_fixed(a_in: np.ndarray, *, vth: int, bias=0, act: str = "relu", cum_error: bool = False,
                      spike_exp: int = 0, state_exp: int = 0, delta_only: bool = False) -> dict[str, np.ndarray]:
    """Run Lava's ``PySigmaDeltaModelFixed`` (or ``PyDeltaModelFixed`` with ``delta_only``) on
    integer input ``a_in`` (T, n). ``vth``/``bias`` as given to the Lava process (it scales them by
    ``2**(spike_exp+state_exp)``). Returns per-step ``s_out`` (the sent messages, after the
    shift) and the state after each step (``sigma``, ``act``, ``residue``, ``error``), int32.

    The per-step rules are the program layer's :func:`~.program.sigma_delta_activation` and
    :func:`~.program.delta_update` (the emulator's); this only adds Lava's parameter scaling and
    the ``Delta`` variant (input ``<< spike_exp + state_exp`` instead of sigma + bias)."""
    a_in = np.asarray(a_in)
    if not np.issubdtype(a_in.dtype, np.integer):
        raise NeuroCompileError("fixed-point input must be integers")
    T, n = a_in.shape
    scale = 1 << (spike_exp + state_exp)
    vth_s = int(np.int32(int(vth) * scale))
    bias_s = np.broadcast_to(np.asarray(bias, dtype=np.int64) * scale, (n,)).astype(np.int32).astype(np.int64)
    st = {k: np.zeros(n, np.int64) for k in _STATE}
    out = {k: np.zeros((T, n), np.int32) for k in ("s_out",) + _STATE}
    for t in range(T):
        x = a_in[t].astype(np.int32).astype(np.int64)
        if delta_only:
            new_act = wrap_int32(x << (spike_exp + state_exp))
        else:
            new_act = sigma_delta_activation(st, x, bias_s, act == "relu")
        out["s_out"][t] = delta_update(st, new_act, vth_s, cum_error, state_exp)
        for k in _STATE:
            out[k][t] = st[k]
    return out
