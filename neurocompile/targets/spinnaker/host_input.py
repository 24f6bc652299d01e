"""Host-driven direct (analog) input of a SpiNNaker program: the first synapse layer on the host.

numpy only: the PyNN script (``run_pynn.py``) embeds this file verbatim, so the emulator, the
script and the board runner compute the same words from the same description.

What the chip does with an injected current (sPyNNaker 7.x, ``neural_modelling/src``)
--------------------------------------------------------------------------------------
* ``neuron/implementations/neuron_impl_standard.h``: every tick, for every neuron, after the
  synaptic inputs are read, ``current_offset = current_source_get_offset(time, neuron_index)``
  (``time`` is the tick: 0 for the first one after a reset, ``c_main.c`` starts it at
  ``UINT32_MAX`` and increments it first), then ``neuron_model_state_update(..., current_offset,
  neuron)``; ``neuron/models/neuron_model_lif_impl.h`` adds it into ``input_this_timestep =
  total_exc - total_inh + external_bias + I_offset + current_offset`` (32-bit accum adds, no
  saturation) -- only outside the refractory period; the source is read (and advanced) every
  tick all the same.
* ``neuron/current_sources/current_source_step.h``: a ``StepCurrentSource`` keeps an index and
  the last amplitude (both reset to 0 whenever the core loads its parameters, i.e. at every run
  start, ``neuron.c`` ``neuron_resume``); per tick: ``if (time >= times[index]) { last =
  amplitudes[index]; index++; }``, then returns ``last``. At most one entry per tick, and nothing
  checks the end of the array, so a table here always ends with a time no run reaches
  (:data:`SENTINEL`).
* the host (``spynnaker/pyNN/models/current_sources/step_current_source.py`` and
  ``models/neuron/population_machine_neurons.py`` ``_write_current_source_parameters``): times
  become ticks with ``int(t_ms * steps_per_ms)`` (exact for whole ms at a 1 ms step) written as
  UINT32, amplitudes S1615 words ``round(Decimal(str(a)) * 32768)``; amplitudes ``word / 32768``
  therefore give back exactly ``word``. Per source ``times_len, times..., amps_len, amps...``.

What the host computes (the rule every runner follows)
-----------------------------------------------------
Per driven population (one entry), with ``x`` the float input (T, batch, n_in):

1. ``u[t] = sum_k w[:, k] * x[t][pre[:, k]]``: float64, the terms of a row added one at a time in
   ascending input index, starting from 0.0 (no BLAS, so the result does not depend on batch size,
   threads or machine). ``pre``/``w`` hold each row's nonzero weights, padded with zero weights.
2. A sample whose input is the same at every step (``x[t] == x[0]`` exactly, the usual direct
   encoding) uses **offset mode**: nothing is injected; the constant current goes into the
   neuron's ``I_offset`` parameter, set between runs (``word = rint(g_off * u[0] * 2**15)`` added
   to the bias word). For a CubaLIF (``IF_curr_exp``) population that current must rise through
   the synaptic filter, ``i[t] = w_in u (1 - alpha**(t+1))``, exactly as a bias does: the chip's own
   synaptic state starts at ``isyn_exc += rint(g_syn * u[0] * 2**15)`` with ``g_syn = -cur_scale
   w_in decay**(1 - latency)`` and decays with the chip's factor (see the lowering's bias rule).
3. Any other sample uses **step mode**: one ``StepCurrentSource`` per neuron. LIF/IF get
   ``c[t] = rint(gain * u[t] * 2**15)``; CubaLIF gets the graph's filtered current, computed on
   the host in float64, ``i[t] = a * i[t-1] + c_in * u[t]`` (``i[-1] = 0``, ``a = alpha``,
   ``c_in = (1 - alpha) w_in``), ``c[t] = rint(gain * i[t] * 2**15)`` with ``gain = cur_scale``
   (the injected current bypasses the chip's exponential synapse). Step t is applied at tick
   ``latency + t``; the table holds only the ticks where the word changes, then
   :data:`SENTINEL`. The last word stays on after step T-1 (the drain ticks are never read back).

``rint`` is numpy's (binary float64, ties to even); every word must stay within the entry's
``limit`` (``|R * word| <= LIMIT``, half the accum range), else :func:`plan` raises naming the
ways out. Both modes hold the population for ``latency`` ticks with its
initial refractory count, so tick ``latency + t`` computes the graph's step ``t`` either way; for
LIF/IF the two modes give the same words at every tick (the sum ``I_offset + current_offset`` is
the same 32-bit sum), for CubaLIF offset mode uses the chip's decay where step mode uses the graph's.
"""
from __future__ import annotations

import numpy as np

#: a step time (tick) that no run reaches: closes every step table
SENTINEL = 0xFFFFFFFF
#: largest |R * word| of a host current (raw S1615 mV): 2**30 = 32768 mV, half the accum range, so
#: that neither the input sum nor ``alpha - V`` of the LIF update wraps; each entry's ``limit``
#: holds it in nA words per neuron (2**30 for R = 1, 2**16 for IF's R = 16384)
LIMIT = 1 << 30
#: DTCM this estimate lets the step-current data of one core use (of the ARM968's 64 KB)
STEP_DTCM_BUDGET = 16 * 1024
ROUNDING = ("u = sum of w*x in ascending input index (float64, from 0.0); "
            "word = rint(g * u * 2**15), ties to even")


def drive(entry, x):
    """``u`` (T, batch, n): the population's summed input in float64, in the fixed order above."""
    pre, w = entry["pre"], entry["w"]
    u = np.zeros(x.shape[:2] + (pre.shape[0],), dtype=np.float64)
    for k in range(pre.shape[1]):
        u = u + w[:, k] * x[:, :, pre[:, k]]
    return u


def _words(value, name, pop, what, limit):
    word = np.rint(value * 32768.0)
    over = np.abs(word) / limit
    if word.size and not np.all(over <= 1):
        bad = np.unravel_index(int(np.argmax(np.nan_to_num(over, nan=np.inf))), word.shape)
        cap = float(np.broadcast_to(limit, word.shape)[bad]) / 32768
        raise ValueError(
            f"the host current of population '{pop}' ({what}) reaches {float(word[bad]) / 32768:.6g} nA "
            f"({name} {tuple(int(i) for i in bad)}), beyond the +-{cap:g} nA the chip's accum holds with "
            "head-room: recompile with --calibration samples that cover this input's range (the first "
            "layer's voltage scale follows them), or feed spikes (--input-encoding spikes)")
    return word.astype(np.int64)


def constant_samples(x):
    """(batch,) bool: the samples whose input is the same at every step (offset mode)."""
    return np.all(x == x[:1], axis=(0, 2)) if x.shape[0] else np.ones(x.shape[1], dtype=bool)


def plan(entries, x):
    """The words the host writes for input ``x`` (T, batch, n_in), per entry (population):

    ``{"pop", "offset": (B,) bool, "i_offset": (B, n), "isyn_exc": (B, n)`` -- the neuron's full
    parameter words per sample (bias words plus the offset-mode input) --
    ``"times": (B, n, K), "amps": (B, n, K)}`` -- each neuron's step table (ticks, raw words),
    ending with :data:`SENTINEL` (and padded with it to one length ``K`` for the batch)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 3:
        raise ValueError("the input must be (T, batch, n_inputs)")
    if x.size and not np.all(np.isfinite(x)):
        raise ValueError("the input holds NaN or infinite values")
    T, B, _ = x.shape
    const = constant_samples(x)
    out = []
    for e in entries:
        u = drive(e, x)
        n = u.shape[2]
        pop = e["pop"]
        i_off = np.broadcast_to(e["i_offset_raw"], (B, n)).astype(np.int64).copy()
        isyn = np.broadcast_to(e["isyn_raw"], (B, n)).astype(np.int64).copy()
        cur = np.zeros((T, B, n), dtype=np.int64)
        if T and const.any():
            u0 = u[0, const]
            i_off[const] += _words(e["g_off"] * u0, "sample, neuron", pop, "constant input", e["limit"])
            if e["filter"] == "exp":
                isyn[const] += _words(e["g_syn"] * u0, "sample, neuron", pop, "constant input's start value",
                                      e["limit"])
        step = ~const
        if T and step.any():
            us = u[:, step]
            if e["filter"] == "exp":
                i = np.zeros(us.shape[1:], dtype=np.float64)
                vals = np.empty_like(us)
                for t in range(T):
                    i = e["a"] * i + e["c"] * us[t]
                    vals[t] = e["gain"] * i
            else:
                vals = e["gain"] * us
            cur[:, step] = _words(vals, "step, sample, neuron", pop, "time-varying input", e["limit"])
        for name, words in (("i_offset", i_off), ("isyn_exc", isyn)):
            if words.size and not np.all(np.abs(words) <= (1 << 31) - 1):
                raise ValueError(f"population '{pop}': the {name} word of the bias plus the input leaves the "
                                 "S1615 range: recompile with --calibration samples covering this input")
        # step tables: the ticks where a step sample's word changes, then the sentinel
        changes = np.zeros((T, B, n), dtype=bool)
        if T:
            changes[0] = cur[0] != 0
            changes[1:] = cur[1:] != cur[:-1]
        changes[:, const] = False
        counts = changes.sum(axis=0)
        K = int(counts.max(initial=0)) + 1
        times = np.full((B, n, K), SENTINEL, dtype=np.int64)
        amps = np.zeros((B, n, K), dtype=np.int64)
        t_idx, b_idx, j_idx = np.nonzero(changes)
        order = np.lexsort((t_idx, j_idx, b_idx))
        t_idx, b_idx, j_idx = t_idx[order], b_idx[order], j_idx[order]
        first = np.zeros(B * n + 1, dtype=np.int64)
        np.cumsum(counts.reshape(-1), out=first[1:])
        slot = np.arange(t_idx.size) - first[b_idx * n + j_idx]
        times[b_idx, j_idx, slot] = t_idx + int(e["latency"])
        amps[b_idx, j_idx, slot] = cur[t_idx, b_idx, j_idx]
        last = np.take_along_axis(amps, np.maximum(counts - 1, 0)[..., None], axis=2)[..., 0]
        amps[:, :, -1] = np.where(counts > 0, last, 0)   # the sentinel keeps the last word
        pad = np.arange(K)[None, None, :] >= counts[..., None]
        amps = np.where(pad, amps[:, :, -1:], amps)
        out.append({"pop": pop, "offset": const.copy(), "i_offset": i_off, "isyn_exc": isyn,
                    "times": times, "amps": amps})
    return out


def any_step(plans) -> bool:
    """Whether some sample needs step current sources (the network then gets them)."""
    return any(bool((~p["offset"]).any()) and bool((p["times"][..., 0] != SENTINEL).any()) for p in plans)


def step_dtcm_bytes(n_core: int, length: int) -> tuple[int, int]:
    """(bytes at start, bytes more per further run) of DTCM that ``n_core`` neurons with one
    ``StepCurrentSource`` of ``length`` entries each take on one core (``current_source.h``,
    ``current_source_step.h``; every ``spin1_malloc`` block also has an 8-byte heap header):
    the pointer array (4 n), the per-neuron source list (12 B, allocated at initialisation and
    again by every parameter load, which never frees the old one: 20 B a neuron a run), four
    per-source arrays (4 x 4 n) and the times and amplitudes (2 x 4 (length + 1))."""
    per_neuron = 4 + 2 * 20 + 16 + 8 * (length + 1) + 16
    return n_core * per_neuron + 40, 20 * n_core


def samples_per_mapping(n_core: int, length: int, budget: int = STEP_DTCM_BUDGET) -> int:
    """How many runs (samples) one mapping can take before the step data and the per-run leak
    exceed ``budget`` bytes of DTCM on a core of ``n_core`` neurons (0: not even one)."""
    start, per_run = step_dtcm_bytes(n_core, length)
    if start > budget:
        return 0
    return 1 + (budget - start) // max(per_run, 1)


def sdram_bytes(n_sources: int, n_core: int, lengths) -> int:
    """SDRAM sPyNNaker reserves for the current-source region of one core
    (``PopulationVertex.get_sdram_usage_for_current_source_params``, a worst case that assumes
    every source of the population drives every neuron of the core): 4 + 4 n + 16 +
    n_sources * 2 * n * 4 + sum over the population's sources of (2 (length + 1) + 2) words."""
    if not n_sources:
        return 4
    return 4 + 4 * n_core + 16 + n_sources * 2 * n_core * 4 + sum(4 * (2 * (int(L) + 1) + 2) for L in lengths)
