"""Fast, bit-exact event-driven kernel for Lava's ``fixed_pt`` LIF + Dense/Sparse/Conv.

Same semantics and result layout as :func:`neurocompile.targets.loihi2.emulator.run`
(the numpy reference, itself bit-exact against Lava); see the docstrings of
:class:`~neurocompile.targets.loihi2.program.LoihiLIF` and
:class:`~neurocompile.targets.loihi2.program.LoihiDense` for the equations.

How it is fast
--------------
* The whole simulation (all steps, all groups, all Dense) runs inside one
  numba-compiled function (``nogil``).  Batch elements are independent runs:
  a batch is cut into slices that a small pool of Python threads hands to
  the kernel (one thread per CPU by default).  Plain threads instead of
  numba's ``parallel=True``: with OpenMP/workqueue a batch-1 run took 15x
  longer whenever another process kept one of the two cores busy (barrier
  waits), while slices pulled from a queue degrade gracefully.
* Synaptic accumulation is event driven: for every source neuron that
  spiked, its row of effective weights (stored transposed, ``int16``,
  ``(src, dst)``) is added into the destination accumulators, so the cost is
  spikes x fan-out instead of ``src x dst``.
* ``weight_exp >= 0``: ``wrap32(sum(w) << e)`` equals the int32 (mod 2**32)
  sum of ``w << e``, so the weights are pre-shifted (|w << 7| <= 2**15 still
  fits int16) and added straight into the destination's int32 input buffer,
  whose wrapping adds reproduce the int32 sum of all Dense into one LIF.
  ``weight_exp < 0`` needs the exact sum before the floor shift: those Dense
  accumulate into a scratch buffer (int32, or int64 if a fan-in could
  overflow int32), then add ``wrap32(acc >> -e)`` to the input buffer.
* Matrices with fewer than ``CSR_BELOW`` nonzero weights (Sparse ones, the
  bias clock's columns, folded structure) are stored as compressed rows:
  per source neuron its nonzero destinations and weights, so a spike costs
  its real fan-out and memory follows the synapse count; in dense rows, a
  source whose row is all zero is skipped.
* Convolutions (``LoihiConv``) are never expanded: a source spike at
  ``(c, y, x)`` visits the kernel taps ``(i, j)`` with
  ``y + pad - i*dil`` a multiple of the stride inside the output, and adds
  the tap's weights of every output channel of its group (the kernel is
  stored ``(C_in, kH, kW, C_out/groups)``, contiguous over output
  channels).  While ``max_o sum|w[o]| < 2**23`` no sum can leave 24 bits, so
  Lava's int32 cast and 24-bit wrap are the identity and the weights go
  straight into the int32 input buffer; otherwise the exact sums are kept
  in an int64 scratch and sent through the conv output rule.
* The LIF update is fused (read + clear input, u/v update, wraps, clip,
  threshold, reset, record) per neuron.  Outputs are written straight into
  per-group contiguous arrays; ``u``/``v`` are not computed into memory when
  ``probes`` is false.

Scope: LIF groups; Dense, Sparse and Conv connections; binary input.
Programs using other extensions (sigma-delta, delays, graded connections,
graded input) are refused with NotImplementedError; see
:func:`unsupported_features`.

numba is optional: :func:`available` tells whether it imports;
:func:`run_best` uses this kernel when it can (numba present, program in
scope) and the numpy reference otherwise.  Compiled code is cached on disk
(``cache=True``, in ``__pycache__`` or ``$NUMBA_CACHE_DIR``), so only the
very first call on a machine pays the JIT compile (about 2 s);
:func:`warmup` triggers (and times) it.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, Optional, Union

import numpy as np

from neurocompile.targets.loihi2 import emulator as loihi
from neurocompile.targets.loihi2.emulator import _as_batched_input
from neurocompile.targets.loihi2.footprint import check_run
from neurocompile.targets.loihi2.program import (
    INPUT,
    INT32_BITS,
    INT32_MAX,
    INT32_MIN,
    LoihiConv,
    LoihiDense,
    LoihiLIF,
    LoihiProgram,
    weight_truncation,
)

try:  # numba is an optional dependency
    import numba as _numba
    from numba import njit as _njit
except Exception:  # pragma: no cover - exercised when numba is absent
    _numba = None

THREADS_ENV = "NEUROCOMPILE_THREADS"

# Widths for the jitted kernel, read from the program layer (numba freezes
# module-level ints); it mirrors program.wrap_int32, decay, lif_wrap_u,
# lif_clip_v and weight_truncation with them.
_I32_HALF, _I32_MASK = -INT32_MIN, (1 << INT32_BITS) - 1
_DECAY_SHIFT, _DECAY_ROUND = LoihiLIF.DECAY_SHIFT, LoihiLIF.DECAY_ONE - 1
_ACT_SHIFT, _V_MAX = LoihiLIF.ACT_SHIFT, LoihiLIF.V_MAX
_U_HALF, _U_RANGE = LoihiLIF.U_HALF, 2 * LoihiLIF.U_HALF
_I32_MIN, _I32_MAX = INT32_MIN, INT32_MAX
_C_HALF, _C_MASK = 1 << (LoihiConv.OUT_BITS - 1), (1 << LoihiConv.OUT_BITS) - 1
#: positions per block when the channel-last conv sums are added to the (C, H, W) input
_FLUSH_BLOCK = 64
#: a Dense with fewer nonzero weights than this fraction is stored as compressed rows
CSR_BELOW = 1 / 3


def available() -> bool:
    """True if numba imports, i.e. the fast kernel can run."""
    return _numba is not None


def unsupported_features(program: LoihiProgram) -> List[str]:
    """Features of ``program`` this kernel does not implement (sorted).

    The kernel covers LIF groups, Dense and Sparse connections and Conv
    connections, all with binary (spike) input.  Anything else (sigma-delta
    groups, delays, graded connections, graded input) is listed here, using
    the names of ``LoihiProgram.extensions()``.
    """
    feats = set()
    if int(getattr(program, "input_message_bits", 0) or 0):
        feats.add("graded_input")
    for n in program.neurons:
        if type(n) is not LoihiLIF:
            feats.add("sigma_delta" if type(n).__name__ == "LoihiSigmaDelta"
                      else f"group type {type(n).__name__}")
    for c in program.synapses:
        if type(c) not in (LoihiDense, LoihiConv):
            feats.add(f"connection type {type(c).__name__}")
            continue
        if getattr(c, "delays", None) is not None:
            feats.add("delays")
        if int(getattr(c, "num_message_bits", 0) or 0):
            feats.add("graded_synapses")
    return sorted(feats)


def supports(program: LoihiProgram) -> bool:
    """True if numba is available and ``program`` needs no extension."""
    return available() and not unsupported_features(program)


def default_threads() -> int:
    """``$NEUROCOMPILE_THREADS`` if set, else the CPUs this process may use."""
    env = os.environ.get(THREADS_ENV)
    if env:
        return max(1, int(env))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


_POOLS: Dict[int, ThreadPoolExecutor] = {}
_POOLS_LOCK = threading.Lock()


def _pool(n: int) -> ThreadPoolExecutor:
    """A process-wide pool of ``n`` worker threads (created once)."""
    with _POOLS_LOCK:
        if n not in _POOLS:
            _POOLS[n] = ThreadPoolExecutor(
                n, thread_name_prefix="neurocompile-loihi-fast")
        return _POOLS[n]


# ------------------------------------------------------------ the kernel
if _numba is not None:

    @_njit(cache=True, inline="always")
    def _w32(x):
        """int64 -> int64 with int32 two's complement wrap."""
        return ((x + _I32_HALF) & _I32_MASK) - _I32_HALF

    @_njit(cache=True, inline="always")
    def _trunc12(p):
        """p / 4096 rounded toward zero (p int64), branch-free."""
        return (p + ((p >> 63) & _DECAY_ROUND)) >> _DECAY_SHIFT

    @_njit(cache=True, nogil=True)
    def _prep_weights(w, lo, hi, kk, sg, e, out):
        """Effective weights of a Dense, transposed, into ``out``.

        ``w``: raw (dst, src) int64; ``lo, hi, kk, sg``: the clip range,
        dropped bits and sign of its sign mode (``program.weight_truncation``);
        ``e`` = weight_exp if >= 0 else 0.  Writes ``out[j * dst + i] =
        w_eff[i, j] << e`` (int16), the same values as
        ``LoihiDense.effective_weights``.
        """
        n_dst, n_src = w.shape
        # tiled: compute a 64 x 64 tile from contiguous rows (vectorizes),
        # then write it transposed as contiguous output rows
        blk = 64
        tile = np.empty((blk, blk), np.int16)
        for i0 in range(0, n_dst, blk):
            ni = min(blk, n_dst - i0)
            for j0 in range(0, n_src, blk):
                nj = min(blk, n_src - j0)
                for i in range(ni):
                    wi = w[i0 + i, j0:j0 + nj]
                    ti = tile[i]
                    for j in range(nj):
                        m = min(max(wi[j], lo), hi) * sg
                        ti[j] = (((m >> kk) << kk) * sg) << e
                for j in range(nj):
                    a = (j0 + j) * n_dst + i0
                    oj = out[a:a + ni]
                    for i in range(ni):
                        oj[i] = tile[i, j]

    @_njit(cache=True, inline="always")
    def _conv_out(x):
        """Lava's Conv output for the exact sum ``x``: outside int32 -> -2**31, then a signed
        24-bit wrap (``program.conv_output``)."""
        if x < _I32_MIN or x > _I32_MAX:
            x = _I32_MIN
        return ((x + _C_HALF) & _C_MASK) - _C_HALF

    @_njit(cache=True, nogil=True)
    def _kernel(x, b_lo, b_hi, g_off, g_keep_u, g_keep_v, g_vth, bias,
                d_src, d_dst_off, d_dst_n, d_rshift, d_woff, w_all,
                d_kind, d_rowoff, row_nz, d_ipoff, c_ptr, c_idx, c_val,
                v_par, v_w, v_tab, acc_proto, conv32_proto, conv64_proto,
                s_base, p_base, out_s, out_u, out_v):
        """Simulate all steps for some batch elements (see module doc).

        x: (T, B, n_in) uint8 input spikes (nonzero = spike); only batch
        elements b_lo <= b < b_hi are simulated (threads take slices).
        g_off: (G+1,) group offsets into the global neuron index.
        g_keep_u/g_keep_v/g_vth: per group keep_u(), keep_v(), scaled_vth()
        (4096-(du+1), 4096-dv, vth<<6).
        bias: (N,) effective bias per neuron (int32: |mant << 7| < 2**19).
        d_src: (D,) source group or -1 for the input; d_dst_off/d_dst_n:
        destination global offset and size; d_rshift: -1 for weight_exp >= 0
        (pre-shifted weights, direct add) else -weight_exp.
        d_kind: 0 = rows (d_woff: offset of the (src, dst) row-major int16
        block in w_all; d_rowoff: offset of its per-source nonzero flags in
        row_nz), 1 = compressed rows (d_ipoff: offset of its n_src + 1 row
        pointers in c_ptr, into c_idx (destination) and c_val (weight)).
        v_par: (V, 29) conv parameters (see FastPlan), v_w: their kernels as
        (C_in, kH, kW, C_out // groups) int32 blocks, v_tab: their lookup
        tables (see ``_conv_tables``).
        acc_proto: scratch prototype, its dtype is the exact accumulator type
        for weight_exp < 0; conv32_proto / conv64_proto: channel-last conv
        scratch for sums that stay within 24 bits / that may leave them.
        s_base/p_base: per group flat offsets of its (T, B, size) block in
        out_s / out_u, out_v (p_base -1: not recorded).
        """
        n_steps, batch, n_in = x.shape
        n_groups = g_off.shape[0] - 1
        n_total = g_off[n_groups]
        n_dense = d_src.shape[0]
        n_conv = v_par.shape[0]
        for b in range(b_lo, b_hi):
            # u and v stay within 24 bits and the bias within 20: int32 halves
            # the memory traffic of the LIF update (arithmetic stays int64)
            u = np.zeros(n_total, np.int32)
            v = np.zeros(n_total, np.int32)
            inbuf = np.zeros(n_total, np.int32)
            spk = np.empty(n_total, np.int32)
            gsp = np.zeros(n_groups + 1, np.int64)
            in_idx = np.empty(n_in, np.int32)
            acc_all = np.empty_like(acc_proto)
            cacc32 = np.zeros_like(conv32_proto)     # kept zero between uses
            cacc64 = np.zeros_like(conv64_proto)
            for t in range(n_steps):
                tb = t * batch + b
                nspk = 0
                # ---- fused LIF update of every group.  Slices (not offset
                # indexing) let LLVM drop numba's negative-index handling
                # and vectorize.
                for g in range(n_groups):
                    o0 = g_off[g]
                    n = g_off[g + 1] - o0
                    ku = g_keep_u[g]
                    kv = g_keep_v[g]
                    th = g_vth[g]
                    ug = u[o0:o0 + n]
                    vg = v[o0:o0 + n]
                    ig = inbuf[o0:o0 + n]
                    bg = bias[o0:o0 + n]
                    sb = s_base[g] + tb * n
                    sg = out_s[sb:sb + n]
                    for i in range(n):  # branch-free (selects, no jumps)
                        act = _w32(np.int64(ig[i]) << _ACT_SHIFT)
                        ig[i] = 0
                        d = _w32(_trunc12(np.int64(ug[i]) * ku) + act)
                        d = d - _U_RANGE if d > _U_HALF else (
                            d + _U_RANGE if d <= -_U_HALF else d)
                        vv = _w32(_trunc12(np.int64(vg[i]) * kv) + d + bg[i])
                        vv = min(max(vv, -_V_MAX), _V_MAX)
                        fire = vv > th
                        ug[i] = d
                        vg[i] = 0 if fire else vv
                        sg[i] = fire
                    pb = p_base[g]
                    if pb >= 0:
                        pbt = pb + tb * n
                        pu = out_u[pbt:pbt + n]
                        pv = out_v[pbt:pbt + n]
                        for i in range(n):
                            pu[i] = ug[i]
                            pv[i] = vg[i]
                    gsp[g] = nspk
                    for i in range(n):  # branch-free compaction
                        spk[nspk] = i
                        nspk += sg[i]
                gsp[n_groups] = nspk
                if t == n_steps - 1:
                    break  # outputs of the last step are never read
                # ---- input spike list of step t
                nin = 0
                xt = x[t, b]
                for j in range(n_in):
                    in_idx[nin] = j
                    nin += xt[j] != 0
                # ---- event-driven Dense: buffers delivered at step t + 1
                for di in range(n_dense):
                    src = d_src[di]
                    if src < 0:
                        lst = in_idx[0:nin]
                    else:
                        lst = spk[gsp[src]:gsp[src + 1]]
                    if lst.shape[0] == 0:
                        continue
                    dn = d_dst_n[di]
                    do = d_dst_off[di]
                    sh = d_rshift[di]
                    dst = inbuf[do:do + dn]
                    acc = acc_all[0:dn]
                    if d_kind[di] == 0:
                        wo = d_woff[di]
                        ro = d_rowoff[di]
                        if sh < 0:  # pre-shifted weights, wrapping int32 adds
                            for q in range(lst.shape[0]):
                                j = np.int64(lst[q])
                                if row_nz[ro + j] == 0:
                                    continue
                                wr = w_all[wo + j * dn:wo + (j + 1) * dn]
                                for k in range(dn):
                                    dst[k] += wr[k]
                            continue
                        # exact sum, then the floor shift: rows with a weight only; one such
                        # row (the bias clock) is its own sum, shifted straight into dst
                        first, n_rows = -1, 0
                        for q in range(lst.shape[0]):
                            j = np.int64(lst[q])
                            if row_nz[ro + j] != 0:
                                if n_rows == 0:
                                    first = j
                                n_rows += 1
                        if n_rows == 0:
                            continue
                        if n_rows == 1:
                            wr = w_all[wo + first * dn:wo + (first + 1) * dn]
                            for k in range(dn):
                                dst[k] += _w32(np.int64(wr[k]) >> sh)
                            continue
                        for k in range(dn):
                            acc[k] = 0
                        for q in range(lst.shape[0]):
                            j = np.int64(lst[q])
                            if row_nz[ro + j] == 0:
                                continue
                            wr = w_all[wo + j * dn:wo + (j + 1) * dn]
                            for k in range(dn):
                                acc[k] += wr[k]
                    else:
                        io = d_ipoff[di]
                        if sh < 0:
                            for q in range(lst.shape[0]):
                                j = np.int64(lst[q])
                                for p in range(c_ptr[io + j], c_ptr[io + j + 1]):
                                    dst[c_idx[p]] += c_val[p]
                            continue
                        for k in range(dn):
                            acc[k] = 0
                        for q in range(lst.shape[0]):
                            j = np.int64(lst[q])
                            for p in range(c_ptr[io + j], c_ptr[io + j + 1]):
                                acc[c_idx[p]] += c_val[p]
                    for k in range(dn):
                        dst[k] += _w32(np.int64(acc[k]) >> sh)
                # ---- event-driven Conv: every tap a source spike reaches,
                # summed channel-last, then added to the (C, H, W) input
                for ci in range(n_conv):
                    src = v_par[ci, 0]
                    if src < 0:
                        lst = in_idx[0:nin]
                    else:
                        lst = spk[gsp[src]:gsp[src + 1]]
                    if lst.shape[0] == 0:
                        continue
                    n_out = v_par[ci, 5] * v_par[ci, 6] * v_par[ci, 7]
                    if v_par[ci, 19]:
                        buf64 = cacc64[0:n_out]
                        _conv_scatter(lst, v_par[ci], v_w, v_tab, buf64)
                        _conv_flush_wide(buf64, inbuf, v_par[ci])
                    else:
                        buf32 = cacc32[0:n_out]
                        _conv_scatter(lst, v_par[ci], v_w, v_tab, buf32)
                        _conv_flush(buf32, inbuf, v_par[ci])

    @_njit(cache=True, nogil=True)
    def _conv_scatter(lst, par, v_w, tab, buf):
        """Add to ``buf`` ((H_out, W_out, C_out) order, all zero on entry) for every source
        spike in ``lst`` (ascending flat indices) the kernel taps it reaches. ``par``: one row of
        ``v_par``; ``tab``: the tables it points to (no division in the loop): per source row
        ``q = c*H + y`` its channel, row and first output channel; per source row ``y`` and
        column ``x`` the (tap, output position) pairs that are inside the output."""
        W = par[4]
        co, Wo = par[5], par[7]
        kh, kw, og, wo = par[14], par[15], par[17], par[18]
        t_qc, t_qy, t_qo, t_rp, t_ri, t_ro, t_cp, t_cj, t_co = (
            par[20], par[21], par[22], par[23], par[24], par[25], par[26], par[27], par[28])
        q = 0          # buf is all zero here: the flush of the previous use cleared it
        row_start = 0
        for n in range(lst.shape[0]):
            j = np.int64(lst[n])
            while j >= row_start + W:
                q += 1
                row_start += W
            x = j - row_start
            c = tab[t_qc + q]
            y = tab[t_qy + q]
            o0 = tab[t_qo + q]
            kc = wo + c * kh * kw * og
            for a in range(tab[t_rp + y], tab[t_rp + y + 1]):
                ki = kc + tab[t_ri + a] * kw * og
                rowbase = tab[t_ro + a] * Wo
                for b in range(tab[t_cp + x], tab[t_cp + x + 1]):
                    kb = ki + tab[t_cj + b] * og
                    base = (rowbase + tab[t_co + b]) * co + o0
                    seg = buf[base:base + og]
                    ker = v_w[kb:kb + og]
                    for o in range(og):
                        seg[o] += ker[o]

    @_njit(cache=True, nogil=True)
    def _conv_flush(buf, inbuf, par):
        """Add the channel-last sums to the destination's (C, H, W) input (exact sums) and
        clear them for the next use."""
        do, co, howo = par[1], par[5], par[6] * par[7]
        for p0 in range(0, howo, _FLUSH_BLOCK):  # blocks of positions: the reads stay in L1
            pn = min(_FLUSH_BLOCK, howo - p0)
            blk = buf[p0 * co:(p0 + pn) * co]
            for o in range(co):
                dst = inbuf[do + o * howo + p0:do + o * howo + p0 + pn]
                for p in range(pn):
                    dst[p] += blk[p * co + o]
            blk[:] = 0

    @_njit(cache=True, nogil=True)
    def _conv_flush_wide(buf, inbuf, par):
        """As :func:`_conv_flush`, through Lava's conv output rule (int32 cast, 24-bit wrap)."""
        do, co, howo = par[1], par[5], par[6] * par[7]
        for p0 in range(0, howo, _FLUSH_BLOCK):
            pn = min(_FLUSH_BLOCK, howo - p0)
            blk = buf[p0 * co:(p0 + pn) * co]
            for o in range(co):
                dst = inbuf[do + o * howo + p0:do + o * howo + p0 + pn]
                for p in range(pn):
                    dst[p] += _conv_out(blk[p * co + o])
            blk[:] = 0


# ------------------------------------------------------------ preparation
def _conv_tables(C, H, W, Ho, Wo, kh, kw, stride, padding, dilation, cig, og):
    """The lookup tables of :func:`_conv_scatter` for one conv, in the order of ``v_par``
    columns 20..28: per source row ``q = c*H + y`` its ``c``, ``y`` and first output channel;
    per source row ``y`` a pointer array into (tap row ``i``, output row) pairs, and the same
    for columns."""
    q = np.arange(C * H)
    parts = [q // H, q % H, ((q // H) // cig) * og]

    def axis(n_in, n_out, k, s, p, d):
        ptr, taps, outs = [0], [], []
        for y in range(n_in):
            for i in range(k):
                ny = y + p - i * d
                if ny >= 0 and ny % s == 0 and ny // s < n_out:
                    taps.append(i)
                    outs.append(ny // s)
            ptr.append(len(taps))
        return [np.array(ptr), np.array(taps, np.int64), np.array(outs, np.int64)]

    parts += axis(H, Ho, kh, stride[0], padding[0], dilation[0])
    parts += axis(W, Wo, kw, stride[1], padding[1], dilation[1])
    return [np.asarray(a, np.int64) for a in parts]


def _dense_rows(syn: LoihiDense) -> bool:
    """Store ``syn`` as dense rows (one per source, skipped when all zero) when the rows that
    hold a weight are at least ``CSR_BELOW`` full (dense layers, the bias clock's columns);
    otherwise as compressed rows (cost and memory per nonzero weight)."""
    w = np.asarray(syn.weights)
    if not w.size:
        return True
    nz_cols = np.count_nonzero(w, axis=0)
    used = int(np.count_nonzero(nz_cols))
    return used == 0 or int(nz_cols.sum()) >= CSR_BELOW * used * w.shape[0]


class FastPlan:
    """A program flattened for the kernel (validated once, reusable).

    Build with :func:`prepare`; run with :meth:`run`, which takes the same
    ``spikes_in`` as :func:`neurocompile.targets.loihi2.emulator.run`.  The plan
    copies what it needs: later edits of the program do not affect it.
    """
    def __init__(self, program: LoihiProgram):
        if not available():
            raise RuntimeError("numba is not installed: the fast Loihi "
                               "kernel is unavailable (use loihi.run or "
                               "run_best)")
        program.validate()
        missing = unsupported_features(program)
        if missing:
            raise NotImplementedError(
                "the fast Loihi kernel covers LIF + Dense/Sparse/Conv with "
                "binary input only; this program uses: " + ", ".join(missing)
                + " (use loihi.run or run_best)")
        check_run(program, 0, 1, False, fast=True)   # the kernel's copy of the weights
        lifs = program.neurons
        self.names: List[str] = [n.name for n in lifs]
        self.sizes = [int(n.size) for n in lifs]
        self.probe = [bool(n.probe) for n in lifs]
        self.n_inputs = int(program.n_inputs)
        self.program = program
        gidx = {n.name: i for i, n in enumerate(lifs)}
        g_off = np.zeros(len(lifs) + 1, np.int64)
        g_off[1:] = np.cumsum(self.sizes)
        self.g_off = g_off
        self.g_keep_u = np.array([n.keep_u() for n in lifs], np.int64)
        self.g_keep_v = np.array([n.keep_v() for n in lifs], np.int64)
        self.g_vth = np.array([n.scaled_vth() for n in lifs], np.int64)
        self.bias = (np.concatenate([n.effective_bias() for n in lifs])
                     .astype(np.int32) if lifs else np.zeros(0, np.int32))
        d_src, d_dst_off, d_dst_n, d_rshift, d_woff = [], [], [], [], []
        d_kind, d_rowoff, d_ipoff = [], [], []
        dense = [c for c in program.synapses if type(c) is LoihiDense]
        rows = [c for c in dense if _dense_rows(c)]
        as_rows = {id(c) for c in rows}
        woff = 0
        wide = False
        self.w_all = np.empty(sum(int(np.size(c.weights)) for c in rows), np.int16)
        row_nz, ptrs, idxs, vals = [], [], [], []
        n_row_nz = n_ptr = n_val = 0
        for s in dense:
            w = np.asarray(s.weights, dtype=np.int64)  # (dst, src)
            e = int(s.weight_exp)
            if e >= 0:
                d_rshift.append(-1)             # pre-shift: |w << 7| <= 2**15
            else:
                d_rshift.append(-e)
                # exact accumulator: |sum| <= 256 * fan-in
                if (1 << LoihiDense.WEIGHT_BITS) * w.shape[1] > INT32_MAX:
                    wide = True
            n_src, n_dst = w.shape[1], w.shape[0]
            if id(s) in as_rows:
                block = self.w_all[woff:woff + w.size]
                if w.size:
                    _prep_weights(w, *weight_truncation(s.sign_mode(),
                                                        int(s.num_weight_bits)),
                                  max(e, 0), block)
                d_kind.append(0)
                d_woff.append(woff)
                d_rowoff.append(n_row_nz)
                d_ipoff.append(0)
                row_nz.append(block.reshape(n_src, n_dst).any(axis=1)
                              if w.size else np.zeros(n_src, bool))
                n_row_nz += n_src
                woff += w.size
            else:  # compressed rows: per source, its nonzero destinations
                eff = s.effective_weights() << max(e, 0)
                src_i, dst_i = np.nonzero(eff.T)
                ptrs.append(n_val + np.concatenate(
                    [[0], np.cumsum(np.bincount(src_i, minlength=n_src))]))
                idxs.append(dst_i.astype(np.int32))
                vals.append(eff.T[src_i, dst_i].astype(np.int16))
                d_kind.append(1)
                d_woff.append(0)
                d_rowoff.append(0)
                d_ipoff.append(n_ptr)
                n_ptr += n_src + 1
                n_val += src_i.size
            d_src.append(-1 if s.src == INPUT else gidx[s.src])
            dg = gidx[s.dst]
            d_dst_off.append(int(g_off[dg]))
            d_dst_n.append(self.sizes[dg])
        self.d_src = np.array(d_src, np.int64)
        self.d_dst_off = np.array(d_dst_off, np.int64)
        self.d_dst_n = np.array(d_dst_n, np.int64)
        self.d_rshift = np.array(d_rshift, np.int64)
        self.d_woff = np.array(d_woff, np.int64)
        self.d_kind = np.array(d_kind, np.int64)
        self.d_rowoff = np.array(d_rowoff, np.int64)
        self.d_ipoff = np.array(d_ipoff, np.int64)
        self.row_nz = (np.concatenate(row_nz) if row_nz else np.zeros(0, bool)).astype(np.uint8)
        self.c_ptr = np.concatenate(ptrs).astype(np.int64) if ptrs else np.zeros(1, np.int64)
        self.c_idx = np.concatenate(idxs) if idxs else np.zeros(0, np.int32)
        self.c_val = np.concatenate(vals) if vals else np.zeros(0, np.int16)
        self.acc_proto = np.zeros(max(self.sizes, default=0),
                                  np.int64 if wide else np.int32)
        # convolutions: parameters and (C_in, kH, kW, C_out // groups) kernels
        convs = [c for c in program.synapses if type(c) is LoihiConv]
        self.v_par = np.zeros((len(convs), 29), np.int64)
        kernels, voff, conv_wide, conv_narrow = [], 0, 0, 0
        tables, toff = [], 0
        for i, c in enumerate(convs):
            w = np.asarray(c.weights, dtype=np.int64)
            co, cig, kh, kw = w.shape
            g = int(c.groups)
            C, H, W = (int(v) for v in c.in_shape)
            _, Ho, Wo = c.out_shape()
            og = co // g
            kt = w.reshape(g, og, cig, kh, kw).transpose(0, 2, 3, 4, 1).reshape(-1)
            # sums stay exact (no 24-bit wrap, no int32 cast) below 2**23: add straight in
            l1 = int(np.abs(w).sum(axis=(1, 2, 3)).max()) if w.size else 0
            wide_c = int(l1 >= 1 << (LoihiConv.OUT_BITS - 1))
            dg = gidx[c.dst]
            self.v_par[i, :20] = (-1 if c.src == INPUT else gidx[c.src], int(g_off[dg]), C, H, W, co, Ho, Wo,
                             c.stride[0], c.stride[1], c.padding[0], c.padding[1],
                             c.dilation[0], c.dilation[1], kh, kw, cig, og, voff, wide_c)
            kernels.append(kt.astype(np.int32))
            voff += kt.size
            for part in _conv_tables(C, H, W, Ho, Wo, kh, kw, c.stride, c.padding, c.dilation, cig, og):
                self.v_par[i, 20 + len([t for t in tables if t[0] == i])] = toff
                tables.append((i, part))
                toff += part.size
            if wide_c:
                conv_wide = max(conv_wide, co * Ho * Wo)
            else:
                conv_narrow = max(conv_narrow, co * Ho * Wo)
        self.v_w = np.concatenate(kernels) if kernels else np.zeros(0, np.int32)
        self.v_tab = (np.concatenate([t for _, t in tables]).astype(np.int64)
                      if tables else np.zeros(0, np.int64))
        self.conv32_proto = np.zeros(conv_narrow, np.int32)
        self.conv64_proto = np.zeros(conv_wide, np.int64)

    # --------------------------------------------------------------
    def _input(self, spikes_in) -> np.ndarray:
        """(T, n) or (T, B, n) int/bool -> C-contiguous (T, B, n) uint8 (checked as the
        reference emulator checks it; the fast path only takes binary input)."""
        x = _as_batched_input(self.program, spikes_in)
        return np.ascontiguousarray(x).view(np.uint8)

    def run(self, spikes_in, probes: bool = True,
            threads: Optional[int] = None) -> Dict:
        """Simulate; same result dict as ``loihi.run`` (see there).

        ``threads`` (default :func:`default_threads`) caps the threads the
        batch is spread over; batch 1 always runs in the calling thread.
        """
        if not available():
            raise RuntimeError("numba is not installed: the fast Loihi "
                               "kernel is unavailable (use loihi.run or "
                               "run_best)")
        x = self._input(spikes_in)
        n_steps, batch = x.shape[0], x.shape[1]
        check_run(self.program, n_steps, batch, probes, fast=True)   # before allocating the outputs
        tb = n_steps * batch
        s_base = np.zeros(len(self.sizes), np.int64)
        p_base = np.full(len(self.sizes), -1, np.int64)
        s_tot = p_tot = 0
        for g, size in enumerate(self.sizes):
            s_base[g] = s_tot
            s_tot += tb * size
            if probes and self.probe[g]:
                p_base[g] = p_tot
                p_tot += tb * size
        out_s = np.empty(s_tot, np.uint8)
        out_u = np.empty(p_tot, np.int64)
        out_v = np.empty(p_tot, np.int64)
        args = (self.g_off, self.g_keep_u, self.g_keep_v, self.g_vth,
                self.bias, self.d_src, self.d_dst_off, self.d_dst_n,
                self.d_rshift, self.d_woff, self.w_all, self.d_kind,
                self.d_rowoff, self.row_nz, self.d_ipoff, self.c_ptr,
                self.c_idx, self.c_val, self.v_par, self.v_w, self.v_tab,
                self.acc_proto, self.conv32_proto, self.conv64_proto,
                s_base, p_base, out_s, out_u, out_v)
        n_thr = min(batch, default_threads() if threads is None
                    else max(1, int(threads)))
        if self.sizes and n_thr <= 1:
            _kernel(x, 0, batch, *args)
        elif self.sizes:
            # a few slices per thread, pulled from the pool's queue: a
            # thread that is slowed down (busy core) simply takes fewer
            cuts = np.linspace(0, batch, min(batch, 4 * n_thr) + 1)
            cuts = np.unique(cuts.astype(np.int64))
            pool = _pool(n_thr)
            futures = [pool.submit(_kernel, x, int(lo), int(hi), *args)
                       for lo, hi in zip(cuts[:-1], cuts[1:])]
            for f in futures:
                f.result()
        out: Dict = {"n_steps": n_steps}
        for g, (name, size) in enumerate(zip(self.names, self.sizes)):
            shape = (n_steps, batch, size)
            a = s_base[g]
            rec = {"spikes": out_s[a:a + tb * size].reshape(shape)}
            if p_base[g] >= 0:
                a = p_base[g]
                rec["u"] = out_u[a:a + tb * size].reshape(shape)
                rec["v"] = out_v[a:a + tb * size].reshape(shape)
            out[name] = rec
        return out


def prepare(program: LoihiProgram) -> FastPlan:
    """Validate and flatten ``program`` once for repeated fast runs."""
    return FastPlan(program)


def run(program: Union[LoihiProgram, FastPlan], spikes_in,
        probes: bool = True, threads: Optional[int] = None) -> Dict:
    """Bit-exact fast equivalent of :func:`neurocompile.targets.loihi2.emulator.run`.

    ``program`` may be a :class:`LoihiProgram` (validated and flattened on
    every call) or a :class:`FastPlan` from :func:`prepare`.  Returns
    ``{"n_steps": T, lif_name: {"spikes": (T, B, size) uint8, "u", "v":
    (T, B, size) int64}}`` exactly as the reference (``u``/``v`` only when
    ``probes`` and the group's ``probe`` flag are set).  Each group's arrays
    are C-contiguous views of one buffer per kind.  ``threads``: see
    :meth:`FastPlan.run`.  Raises RuntimeError if numba is unavailable and
    NotImplementedError if the program uses a feature the kernel does not
    cover (see :func:`unsupported_features`).
    """
    if not available():
        raise RuntimeError("numba is not installed: the fast Loihi kernel is "
                           "unavailable (use loihi.run or run_best)")
    plan = program if isinstance(program, FastPlan) else FastPlan(program)
    return plan.run(spikes_in, probes=probes, threads=threads)


def run_best(program: LoihiProgram, spikes_in, probes: bool = True) -> Dict:
    """The fast kernel when it can run ``program`` (numba importable, no
    unsupported feature), else the numpy reference; same results."""
    if supports(program):
        return run(program, spikes_in, probes=probes)
    return loihi.run(program, spikes_in, probes=probes)


def warmup() -> float:
    """Compile (or load from the on-disk cache) the kernel; seconds taken.

    Returns 0.0 if numba is unavailable.  Runs a tiny program covering both
    Dense paths (weight_exp >= 0 and < 0) and probes on and off.
    """
    if not available():
        return 0.0
    t0 = time.perf_counter()
    prog = LoihiProgram(2, [LoihiLIF("a", 2, du=0, dv=0, vth=0,
                                     bias_mant=np.zeros(2, np.int64)),
                            LoihiLIF("c", 2, du=0, dv=0, vth=0,
                                     bias_mant=np.zeros(2, np.int64))],
                        [LoihiDense("p", INPUT, "a", np.ones((2, 2), int)),
                         LoihiDense("n", "a", "a", np.ones((2, 2), int),
                                    weight_exp=-1),
                         LoihiDense("s", "a", "c", np.eye(2, dtype=int) * 2),
                         LoihiDense("t", "c", "a", np.eye(2, dtype=int) * 2,
                                    weight_exp=-1),
                         LoihiConv("k", "a", "c", np.ones((2, 2, 1, 1), int),
                                   in_shape=(2, 1, 1)),
                         LoihiConv("w", "c", "c", np.full((2, 2, 1, 1), 1 << 15, int) - 1,
                                   in_shape=(2, 1, 1))])
    x = np.ones((3, 2, 2), np.uint8)
    run(prog, x, probes=True)
    run(prog, x, probes=False)
    return time.perf_counter() - t0


__all__ = ["available", "supports", "unsupported_features",
           "default_threads", "prepare", "FastPlan", "run", "run_best",
           "warmup", "THREADS_ENV"]
