"""Bit-accurate numpy emulator of Lava's ``fixed_pt`` process models.

Reproduces, for a :class:`LoihiProgram` driven by a
``lava.proc.io.source.RingBuffer`` input (lava-nc 0.10):

* ``lava.proc.lif.models.PyLifModelBitAcc`` (:class:`LoihiLIF`),
* ``lava.proc.sdn.models.PySigmaDeltaModelFixed`` (:class:`LoihiSigmaDelta`),
* ``lava.proc.dense.models.PyDenseModelBitAcc`` / ``PyDelayDenseModelBitAcc``
  and ``lava.proc.sparse.models.PySparseModelBitAcc`` /
  ``PyDelaySparseModelBitAcc`` (:class:`LoihiDense`, binary or graded),
* ``lava.proc.conv.models.PyConvModelFixed`` (:class:`LoihiConv`).

The exact equations are in the docstrings of those classes.  numpy only;
all state is int64 holding the values that Lava keeps in int32, with int32
overflow reproduced where Lava's numpy code would overflow.

Step order (t = 0 .. T-1; Lava's ``time_step`` is t + 1):

1. every group reads the int32 sum of what its incoming connections deliver
   at step t (zero at t = 0) and updates its state: a LIF spikes and resets
   v, a sigma-delta neuron emits its graded output;
2. the state and the outputs of step t are recorded, as a Lava ``Monitor``
   reads them in the post-management phase of the step;
3. every connection computes, from its source's output of step t
   (``spikes_in[t]`` for ``src == "input"``), what it delivers at step
   ``t + 1`` (``t + 1 + d`` through a synapse of delay d).

Because every connection delays by at least one step, the order among groups
and among connections is irrelevant (recurrent connections included).

Matmul exactness: weights are integers and inputs 0/1 or integer payloads,
so every partial sum of a row is an integer bounded by
``B = max|s| * max_row sum_j |w_ij|``.  We use a float32 BLAS matmul when
``B < 2**24`` and float64 when ``B < 2**53`` (every intermediate value, in
any summation order and with or without FMA, is then an exactly
representable integer), else an int64 matmul (exact modulo 2**64, which is
all the int32-wrapping graded paths need).
"""

from __future__ import annotations

from typing import Dict, List

import numpy as np

from neurocompile.targets.loihi2.footprint import check_run
from neurocompile.targets.loihi2.program import (
    INPUT,
    INT32_MAX,
    LoihiConv,
    LoihiDense,
    LoihiLIF,
    LoihiProgram,
    abs_int32,
    conv_output,
    decay,
    lif_step,
    shift_exp,
    sigma_delta_step,
    wrap_bits,
    wrap_int32,
)

# The integer rules (wrap_int32, decay, lif_step, sigma_delta_step, ...) are
# defined once in the program layer and re-exported here.

#: float32 / float64 represent every integer of magnitude below these
_F32_EXACT = 1 << 24
_F64_EXACT = 1 << 53


def _exact_matmul(x: np.ndarray, wt: np.ndarray, row_l1: int) -> np.ndarray:
    """``x @ wt`` exactly (int64 result, modulo 2**64 at worst).

    ``x``: (B, n) int64; ``wt``: (n, m) int64; ``row_l1``: max over columns
    of ``sum |wt[:, j]|``.  Picks float32 / float64 BLAS when every partial
    sum is an exactly representable integer (see module docstring).
    """
    if x.size == 0 or wt.size == 0:
        return np.zeros((x.shape[0], wt.shape[1]), np.int64)
    xmax = int(np.abs(x).max())
    bound = xmax * row_l1
    if bound < _F32_EXACT:
        return (x.astype(np.float32) @ wt.astype(np.float32)).astype(np.int64)
    if bound < _F64_EXACT:
        return (x.astype(np.float64) @ wt.astype(np.float64)).astype(np.int64)
    return x @ wt


class _DenseOp:
    """One LoihiDense (Dense, Sparse, DelayDense or DelaySparse).

    ``compute(s)`` returns ``[(d, contribution)]``: int32-valued (B, n_out)
    arrays to add (mod 2**32) to what is delivered at step t + 1 + d.
    Accumulation modes (see :class:`LoihiDense`):

    * ``exact``: int64 sum, int64 shift, wrap when sent (Dense/Sparse
      binary, DelayDense binary);
    * ``wrap_sum``: sum wrapped to int32 before the shift (Dense/Sparse
      graded, DelaySparse binary and graded);
    * ``wrap_products``: each product wrapped to int32, int64 sum, int64
      shift (DelayDense graded).
    """

    def __init__(self, syn: LoihiDense):
        w = syn.effective_weights()
        self.n_out = w.shape[0]
        self.graded = syn.graded
        self.exp = int(syn.weight_exp)
        self.max_delay = syn.max_delay() if syn.delays is not None else 0
        if syn.delays is None:
            self.mode = "wrap_sum" if self.graded else "exact"
        elif syn.sparse:
            self.mode = "wrap_sum"
        else:
            self.mode = "wrap_products" if self.graded else "exact"
        # one weight block per delay class that has a nonzero weight
        if syn.delays is None:
            classes = [(0, w)]
        else:
            dl = np.asarray(syn.delays, dtype=np.int64)
            present = sorted(set(np.unique(dl[w != 0]).tolist()))
            classes = [(d, np.where(dl == d, w, 0)) for d in present]
        self.delays = [d for d, _ in classes]
        self.blocks = [blk for _, blk in classes]
        if classes:
            wst = np.concatenate(self.blocks, axis=0)   # (k*n_out, n_in)
        else:
            wst = np.zeros((0, w.shape[1]), np.int64)
        self.wt = np.ascontiguousarray(wst.T)
        self.row_l1 = int(np.abs(wst).sum(axis=1).max()) if wst.size else 0
        self.wmax = int(np.abs(wst).max()) if wst.size else 0
        self.wt_f32 = (np.ascontiguousarray(self.wt, dtype=np.float32)
                       if self.row_l1 < _F32_EXACT else None)

    def compute(self, src: np.ndarray) -> List:
        """Contributions for the source output ``src`` of this step."""
        if not self.delays:
            return []
        if not self.graded and self.wt_f32 is not None:  # common fast path
            s = src != 0
            acc = (s.astype(np.float32) @ self.wt_f32).astype(np.int64)
            if self.mode == "exact":
                return self._classes(acc)
        s = src.astype(np.int64) if self.graded else (src != 0).astype(
            np.int64)
        if self.graded or self.wt_f32 is None:
            acc = _exact_matmul(s, self.wt, self.row_l1)
        if self.mode == "wrap_products" and s.size and \
                int(np.abs(s).max()) * self.wmax > INT32_MAX:
            acc = self._wrapped_product_sums(s)
        return self._classes(acc)

    def _classes(self, acc: np.ndarray) -> List:
        """Split the stacked sums per delay class, then shift (per mode)."""
        out = []
        n = self.n_out
        for k, d in enumerate(self.delays):
            a = acc[:, k * n:(k + 1) * n]
            if self.mode == "wrap_sum":
                a = wrap_int32(a)
                a = wrap_int32(a << self.exp) if self.exp > 0 else \
                    a >> (-self.exp)
            else:
                a = wrap_int32(shift_exp(a, self.exp))
            out.append((d, a))
        return out

    def _wrapped_product_sums(self, s: np.ndarray) -> np.ndarray:
        """sum_j wrap32(w_ij * s_j) per row (DelayDense graded overflow)."""
        parts = []
        for blk in self.blocks:
            prod = wrap_int32(s[:, None, :] * blk[None, :, :])
            parts.append(prod.sum(axis=2))
        return np.concatenate(parts, axis=1)


class _ConvOp:
    """One LoihiConv: exact PyTorch-style conv2d, Lava's int32 cast and
    24-bit wrap (see :class:`LoihiConv`)."""

    max_delay = 0

    def __init__(self, syn: LoihiConv):
        self.w = np.asarray(syn.weights, dtype=np.int64)
        self.in_shape = tuple(int(v) for v in syn.in_shape)
        self.out_shape = syn.out_shape()
        self.stride, self.padding = syn.stride, syn.padding
        self.dilation, self.groups = syn.dilation, int(syn.groups)
        self.graded = syn.graded
        self.l1 = int(np.abs(self.w).sum(axis=(1, 2, 3)).max())

    def compute(self, src: np.ndarray) -> List:
        """``[(0, contribution)]`` for the source output ``src``."""
        s = src.astype(np.int64) if self.graded else (src != 0).astype(
            np.int64)
        batch = s.shape[0]
        c, h, w = self.in_shape
        co, ho, wo = self.out_shape
        x = s.reshape(batch, c, h, w)
        (ph, pw), (sh, sw) = self.padding, self.stride
        (dh, dw), g = self.dilation, self.groups
        xp = np.zeros((batch, c, h + 2 * ph, w + 2 * pw), np.int64)
        xp[:, :, ph:ph + h, pw:pw + w] = x
        xmax = int(np.abs(s).max()) if s.size else 0
        bound = xmax * self.l1
        dt = (np.float32 if bound < _F32_EXACT else
              np.float64 if bound < _F64_EXACT else np.int64)
        xp = xp.astype(dt)
        wt = self.w.astype(dt)
        cg, og = c // g, co // g
        acc = np.zeros((batch, co, ho, wo), dt)
        kh, kw = self.w.shape[2], self.w.shape[3]
        for i in range(kh):
            for j in range(kw):
                r0, c0 = i * dh, j * dw
                patch = xp[:, :, r0:r0 + sh * (ho - 1) + 1:sh,
                           c0:c0 + sw * (wo - 1) + 1:sw]   # (B, C, ho, wo)
                for gi in range(g):
                    acc[:, gi * og:(gi + 1) * og] += np.einsum(
                        "bchw,oc->bohw", patch[:, gi * cg:(gi + 1) * cg],
                        wt[gi * og:(gi + 1) * og, :, i, j])
        acc = acc.astype(np.int64).reshape(batch, -1)
        return [(0, conv_output(acc))]


def _as_batched_input(program: LoihiProgram, spikes_in) -> np.ndarray:
    """(T, n) or (T, B, n) int/bool -> (T, B, n): bool for binary input,
    int64 payloads when ``program.input_message_bits > 0``.

    Program level, not graph level: this checks the integer input of a ``LoihiProgram`` (what
    :func:`neurocompile.targets.loihi2.target.spikes_in` produces from the graph's float input with
    :func:`neurocompile.ir.batch.batched_input`), so it stays separate from that rule set."""
    x = np.asarray(spikes_in)
    if x.ndim == 2:
        x = x[:, None, :]
    if x.ndim != 3 or x.shape[2] != program.n_inputs:
        raise ValueError(f"spikes_in must be (T, n_inputs) or (T, batch, "
                         f"n_inputs) with n_inputs={program.n_inputs}, got "
                         f"shape {np.shape(spikes_in)}")
    if x.dtype.kind not in "biu":
        raise ValueError(f"spikes_in must be int or bool, got {x.dtype}")
    if int(program.input_message_bits) > 0:
        program.check_input(x)
        return x.astype(np.int64)
    return x != 0


def run(program: LoihiProgram, spikes_in, probes: bool = True) -> Dict:
    """Emulate ``program`` for ``T = len(spikes_in)`` steps.

    Returns ``{"n_steps": T, name: {...}, ...}`` with, per group, arrays
    shaped (T, B, size) where entry t holds the values after step t,
    exactly what Lava's Monitor reads:

    * LIF: ``spikes`` uint8, ``u``, ``v`` int64 (v after reset);
    * sigma-delta: ``spikes`` int64 (the graded output, 0 = none),
      ``sigma``, ``act``, ``residue``, ``error`` int64.

    State arrays are present only if ``probes`` is true and the group's
    ``probe`` flag is set; spikes are always returned.  Batch elements are
    independent runs from the zero state.  ``spikes_in`` holds 0/1 spikes
    (any nonzero value is a spike) or, if ``program.input_message_bits >
    0``, graded integer payloads.
    """
    program.validate()
    x = _as_batched_input(program, spikes_in)
    n_steps, batch = x.shape[0], x.shape[1]
    check_run(program, n_steps, batch, probes, fast=False)   # refused with the figures, before allocating
    groups = program.neurons
    ops = [(_ConvOp(s) if isinstance(s, LoihiConv) else _DenseOp(s), s)
           for s in program.synapses]
    sizes = {n.name: int(n.size) for n in groups}
    # ring[k][slot]: int64 sums delivered by connection k at steps
    # == slot (mod max_delay + 1)
    rings = [np.zeros((op.max_delay + 1, batch, sizes[s.dst]), np.int64)
             for op, s in ops]
    incoming = {n.name: [k for k, (_, s) in enumerate(ops)
                         if s.dst == n.name] for n in groups}
    state, consts = {}, {}
    out: Dict = {"n_steps": n_steps}
    for n in groups:
        zeros = np.zeros((batch, n.size), np.int64)
        if isinstance(n, LoihiLIF):
            state[n.name] = {"u": zeros, "v": zeros.copy()}
            consts[n.name] = (n.effective_bias()[None, :], n.scaled_vth())
            rec = {"spikes": np.zeros((n_steps, batch, n.size), np.uint8)}
        else:
            state[n.name] = {k: zeros.copy() for k in n.STATE_VARS}
            consts[n.name] = (n.scaled_bias()[None, :], n.scaled_vth())
            rec = {"spikes": np.zeros((n_steps, batch, n.size), np.int64)}
        if probes and n.probe:
            for key in type(n).STATE_VARS:
                rec[key] = np.zeros((n_steps, batch, n.size), np.int64)
        out[n.name] = rec
    for t in range(n_steps):
        outputs = {}
        for n in groups:
            a_in = np.zeros((batch, n.size), np.int64)
            for k in incoming[n.name]:
                ring = rings[k]
                a_in += ring[t % ring.shape[0]]
            a_in = wrap_int32(a_in)
            st = state[n.name]
            bias, vth = consts[n.name]
            if isinstance(n, LoihiLIF):
                st["u"], st["v"], s_out = lif_step(n, st["u"], st["v"], a_in,
                                                   bias, vth)
            else:
                s_out = sigma_delta_step(n, st, a_in, bias, vth)
            outputs[n.name] = s_out
            rec = out[n.name]
            rec["spikes"][t] = s_out
            for key in type(n).STATE_VARS:
                if key in rec:
                    rec[key][t] = st[key]
        for k, (op, s) in enumerate(ops):
            ring = rings[k]
            size = ring.shape[0]
            src = x[t] if s.src == INPUT else outputs[s.src]
            contribs = op.compute(src)
            if size == 1:   # no delays: the buffer is simply replaced
                ring[0] = contribs[0][1] if contribs else 0
                continue
            ring[t % size] = 0
            for d, contrib in contribs:
                slot = (t + 1 + d) % size
                ring[slot] = wrap_int32(ring[slot] + contrib)
    return out


__all__ = ["run", "lif_step", "sigma_delta_step", "decay", "wrap_int32",
           "wrap_bits", "abs_int32", "shift_exp"]
