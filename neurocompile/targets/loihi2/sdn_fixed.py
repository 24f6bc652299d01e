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


def sigma_delta_fixed(a_in: np.ndarray, *, vth: int, bias=0, act: str = "relu", cum_error: bool = False,
                      spike_exp: int = 0, state_exp: int = 0, delta_only: bool = False) -> dict[str, np.ndarray]:
    """Run Lava's ``PySigmaDeltaModelFixed`` (or ``PyDeltaModelFixed`` with ``delta_only``) on
    integer input ``a_in`` (T, n). ``vth``/``bias`` as given to the Lava process (it scales them by
    ``2**(spike_exp+state_exp)``). Returns per-step ``s_out`` (the sent messages, after the
    shift) and the state after each step (``sigma``, ``act``, ``residue``, ``error``), int32."""
    a_in = np.asarray(a_in)
    if not np.issubdtype(a_in.dtype, np.integer):
        raise NeuroCompileError("fixed-point input must be integers")
    T, n = a_in.shape
    scale = 1 << (spike_exp + state_exp)
    vth_s = np.int32(int(vth) * scale)
    bias_s = np.broadcast_to(np.asarray(bias, dtype=np.int64) * scale, (n,)).astype(np.int32)
    st = {k: np.zeros(n, np.int32) for k in ("sigma", "act", "residue", "error")}
    out = {k: np.zeros((T, n), np.int32) for k in ("s_out", "sigma", "act", "residue", "error")}
    with np.errstate(over="ignore"):
        for t in range(T):
            x = a_in[t].astype(np.int32)
            if delta_only:
                new_act = np.left_shift(x, np.int32(spike_exp + state_exp))
            else:
                st["sigma"] = (x + st["sigma"]).astype(np.int32)
                pre = (st["sigma"] + bias_s).astype(np.int32)
                new_act = np.maximum(pre, 0).astype(np.int32) if act == "relu" else pre
            delta = (new_act - st["act"] + st["residue"]).astype(np.int32)
            if cum_error:
                st["error"] = (st["error"] + delta).astype(np.int32)
                s = np.where(np.abs(st["error"]) >= vth_s, delta, 0).astype(np.int32)
                st["error"] = (st["error"] * (1 - (np.abs(s) > 0))).astype(np.int32)
            else:
                s = np.where(np.abs(delta) >= vth_s, delta, 0).astype(np.int32)
            st["residue"] = (delta - s).astype(np.int32)
            st["act"] = new_act
            out["s_out"][t] = np.right_shift(s, np.int32(state_exp))
            for k in ("sigma", "act", "residue", "error"):
                out[k][t] = st[k]
    return out
