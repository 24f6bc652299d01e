"""Bit-accurate numpy emulator of Lava's ``fixed_pt`` LIF + Dense models.

Reproduces ``lava.proc.lif.models.PyLifModelBitAcc`` and
``lava.proc.dense.models.PyDenseModelBitAcc`` (lava-nc 0.10) driven by a
``lava.proc.io.source.RingBuffer`` input, for a :class:`LoihiProgram`.
The exact equations are in the docstrings of ``LoihiLIF`` and
``LoihiDense``.  numpy only; all state is int64 holding the values that
Lava keeps in int32, with int32 overflow reproduced where Lava's numpy code
would overflow.

Step order (t = 0 .. T-1; Lava's ``time_step`` is t + 1):

1. every LIF group reads the summed output buffers of its incoming Dense
   (computed at step t - 1, zero at t = 0), updates u and v, spikes and
   resets v;
2. ``u``, ``v`` (after reset) and the spikes of step t are recorded, as a
   Lava ``Monitor`` reads them in the post-management phase of the step;
3. every Dense computes its new buffer from its source's spikes of step t
   (``spikes_in[t]`` for ``src == "input"``, else the LIF's spikes of step
   t).

Because each Dense delays by exactly one step, the order among LIF groups
and among Dense is irrelevant (recurrent Dense included): external input at
step t reaches the first LIF group at step t + 1, a LIF spike at step t
reaches the next group at t + 1.

Dense matmul exactness: weights are integers with |w| <= 256 and spikes are
0/1, so every partial sum of a row is an integer bounded by
``B = max_row sum_j |w_ij|``.  We use a float32 BLAS matmul when
``B < 2**24`` and float64 when ``B < 2**53`` (every intermediate value, in
any summation order and with or without FMA, is then an exactly
representable integer), else an int64 matmul.
"""

from __future__ import annotations

from typing import Dict

import numpy as np

from .loihi_program import INPUT, LoihiDense, LoihiLIF, LoihiProgram

_U_HALF = 1 << 23          # 2**(U_BITS - 1)
_V_MAX = (1 << 23) - 1     # v saturates at +-(2**23 - 1)


def wrap_int32(x: np.ndarray) -> np.ndarray:
    """int64 -> int64 with int32 two's complement overflow (as numpy casts)."""
    return x.astype(np.int32).astype(np.int64)


def decay(x: np.ndarray, keep: int) -> np.ndarray:
    """``sign(x*keep) * (|x*keep| >> 12)``: x * keep / 4096 rounded to 0."""
    p = x * np.int64(keep)
    return np.sign(p) * (np.abs(p) >> 12)


def lif_step(lif: LoihiLIF, u: np.ndarray, v: np.ndarray, a_in: np.ndarray,
             bias: np.ndarray, vth_scaled: int):
    """One LIF step on (B, size) int64 state: returns new ``(u, v, spikes)``.

    ``a_in`` is the int32-valued summed Dense input of this step; the
    equations are those of :class:`LoihiLIF` (u wrap, v clip, strict
    threshold, v reset to 0 after the spike).
    """
    act = wrap_int32(a_in << 6)
    d = wrap_int32(decay(u, 4096 - (int(lif.du) + 1)) + act)
    u = np.where(d > _U_HALF, d - 2 * _U_HALF,
                 np.where(d <= -_U_HALF, d + 2 * _U_HALF, d))
    v = wrap_int32(decay(v, 4096 - int(lif.dv)) + u + bias)
    v = np.clip(v, -_V_MAX, _V_MAX)
    spikes = v > vth_scaled
    v = np.where(spikes, 0, v)
    return u, v, spikes


class _DenseOp:
    """Precomputed exact matmul of one Dense (see module docstring)."""

    def __init__(self, syn: LoihiDense):
        w = syn.effective_weights()
        bound = int(np.abs(w).sum(axis=1).max()) if w.size else 0
        if bound < (1 << 24):
            self.wt = np.ascontiguousarray(w.T, dtype=np.float32)
        elif bound < (1 << 53):
            self.wt = np.ascontiguousarray(w.T, dtype=np.float64)
        else:  # pragma: no cover - needs > 2**45 inputs
            self.wt = np.ascontiguousarray(w.T, dtype=np.int64)
        self.exp = int(syn.weight_exp)

    def __call__(self, spikes: np.ndarray) -> np.ndarray:
        """Output buffer (int32-valued int64, shape (B, dst)) for spikes."""
        acc = (spikes.astype(self.wt.dtype) @ self.wt).astype(np.int64)
        acc = acc << self.exp if self.exp > 0 else acc >> (-self.exp)
        return wrap_int32(acc)


def _as_batched_input(program: LoihiProgram, spikes_in) -> np.ndarray:
    """(T, n) or (T, B, n) int/bool -> (T, B, n) bool (nonzero = spike)."""
    x = np.asarray(spikes_in)
    if x.ndim == 2:
        x = x[:, None, :]
    if x.ndim != 3 or x.shape[2] != program.n_inputs:
        raise ValueError(f"spikes_in must be (T, n_inputs) or (T, batch, "
                         f"n_inputs) with n_inputs={program.n_inputs}, got "
                         f"shape {np.shape(spikes_in)}")
    if x.dtype.kind not in "biu":
        raise ValueError(f"spikes_in must be int or bool, got {x.dtype}")
    return x != 0


def run(program: LoihiProgram, spikes_in, probes: bool = True) -> Dict:
    """Emulate ``program`` for ``T = len(spikes_in)`` steps.

    Returns ``{"n_steps": T, lif_name: {"spikes": (T, B, size) uint8,
    "u": (T, B, size) int64, "v": (T, B, size) int64}, ...}`` where entry t
    holds the values after step t (v after reset), exactly what Lava's
    Monitor reads.  ``u``/``v`` are present only if ``probes`` is true and
    the group's ``probe`` flag is set; spikes are always returned.
    Batch elements are independent runs from the zero state.
    """
    program.validate()
    x = _as_batched_input(program, spikes_in)
    n_steps, batch = x.shape[0], x.shape[1]
    lifs = program.neurons
    ops = [(_DenseOp(s), s) for s in program.synapses]
    state = {n.name: (np.zeros((batch, n.size), np.int64),
                      np.zeros((batch, n.size), np.int64)) for n in lifs}
    bufs = [np.zeros((batch, program.neuron(s.dst).size), np.int64)
            for _, s in ops]
    consts = {n.name: (n.effective_bias()[None, :],
                       int(n.vth) << LoihiLIF.VTH_SHIFT) for n in lifs}
    out: Dict = {"n_steps": n_steps}
    for n in lifs:
        rec = {"spikes": np.zeros((n_steps, batch, n.size), np.uint8)}
        if probes and n.probe:
            rec["u"] = np.zeros((n_steps, batch, n.size), np.int64)
            rec["v"] = np.zeros((n_steps, batch, n.size), np.int64)
        out[n.name] = rec
    for t in range(n_steps):
        spikes = {}
        for n in lifs:
            a_in = np.zeros((batch, n.size), np.int64)
            for buf, (_, s) in zip(bufs, ops):
                if s.dst == n.name:
                    a_in += buf
            u, v = state[n.name]
            bias, vth_scaled = consts[n.name]
            u, v, s_out = lif_step(n, u, v, wrap_int32(a_in), bias,
                                   vth_scaled)
            state[n.name] = (u, v)
            spikes[n.name] = s_out
            rec = out[n.name]
            rec["spikes"][t] = s_out
            if "u" in rec:
                rec["u"][t] = u
                rec["v"][t] = v
        for i, (op, s) in enumerate(ops):
            src = x[t] if s.src == INPUT else spikes[s.src]
            bufs[i] = op(src)
    return out


__all__ = ["run", "lif_step", "decay", "wrap_int32"]
