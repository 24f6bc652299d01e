"""Quantize a dense-form graph to Loihi 2's fixed-point formats (a ``LoihiProgram``).

Mapping of one neuron group (float units -> chip integers), with ``S_i = 64 * vth / thr_i`` the
per-neuron scale from float membrane units to the integer ``v``:

* ``dv = round(4096 * (1 - beta))`` (0 for IF), ``du = round(4096 * (1 - alpha)) - 1`` for CubaLIF
  (Lava decays u by ``du + 1``) and ``du = 4095`` otherwise, which clears ``u`` every step so that
  ``u`` is just this step's input.
* The gain from the synaptic input to ``v`` (``(1-beta)*r`` for LIF, ``r`` for IF,
  ``(1-alpha)*w_in*(1-beta)*r`` for CubaLIF) is folded into the weights:
  ``W_int * 2**weight_exp * 64 = S_i * gain_i * W_ij``, with ``W_int`` 8-bit. A mixed-sign matrix
  can only hold even values in [-256, 254] (Lava drops the lowest bit), a single-sign one
  0..255 in magnitude.
* An Affine bias is a constant input. It reaches the chip through the *bias clock*: a chain of
  helper neurons ``_clock`` whose neuron ``j`` spikes at every step from step ``j`` on; a group
  ``k`` hops from the input takes its bias as an extra synapse column from clock neuron ``k-1``, so
  the bias starts exactly when the group's first input arrives and flows through ``u`` (and the
  synaptic decay of CubaLIF) like any input. A recurrent Affine's bias, which in the graph arrives
  from step 1 on, comes from clock neuron ``k``. A second matrix from the clock holds what the
  bias's 8-bit rounding left over (``.bias_fine``), so biases get ~16-bit precision. ``v_leak``
  becomes ``bias_mant << bias_exp`` added to ``v`` each step.
* Option ``max_weight_exp`` (default 7): the largest weight exponent of the synapses between groups
  (vth is capped so that the largest weight fits); 0 makes programs netx can express.
* Option ``split_weights``: the same residual trick for every synapse matrix (``<name>.fine``),
  about 16-bit weights for twice the synapses.
* A matrix with fewer than 25 % nonzero weights is marked ``sparse`` (Lava's Sparse process).
* ``vth`` is chosen as large as the 24-bit state allows given the calibration statistics (observed
  maxima times ``margin``, or worst-case bounds without data), which maximises the resolution of
  ``v``; each Dense then gets the smallest weight exponent at which its largest weight fits.
* A convolution that dense form kept becomes a ``LoihiConv``. Lava's Conv has no weight
  exponent, so a group fed by convs takes ``vth = floor(254 / max|R|)`` (255 for a single-sign
  kernel; R = the kernel in thresholds per spike), capped by the headroom above: its largest
  kernel weight sits at the 8-bit limit with exponent 0 (see :mod:`.loihi2_conv`). Its other
  synapses keep their exponents.
* Delay nodes next to a synapse matrix become ``LoihiDense.delays`` (see
  :mod:`.loihi2_connections`); a delay after an Affine delays its bias too: that bias column
  comes from a clock neuron ``d`` places further down the chain.
* Graphs of sigma-delta neurons are lowered by :mod:`.loihi2_sdn`.
* Graphs whose frontend recorded Loihi integers (``metadata["loihi2_fixed"]``, lava-dl netx
  files) are not quantized: :mod:`.fixed_params` builds the program from those integers.

Not expressible with Lava's LIF (an error names the node): reset by subtraction, ``v_reset != 0``,
refractory periods, per-neuron time constants within one group.
"""
from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import numpy as np

from neurocompile.errors import UnsupportedError
from neurocompile.ir import nodes as N
from neurocompile.ir.graph import Graph
from neurocompile.ir.latency import shortest_hops
from neurocompile.ir.nodes import decay_factor
from neurocompile.ir.time_units import check_resolution
from neurocompile.passes.base import Lowering, PassContext
from neurocompile.targets.input_encoding import choose_encoding
from neurocompile.targets.loihi2.connections import Connection, check_delays, incoming, look_through
from neurocompile.targets.loihi2.conv import conv_vth, quantize_conv
from neurocompile.targets.loihi2.fixed_params import fixed_program, has_fixed
from neurocompile.targets.loihi2.footprint import check_lowering
from neurocompile.targets.loihi2.input_format import current_input_format
from neurocompile.targets.loihi2.lowered import LoweredLoihi2
from neurocompile.targets.loihi2.program import INPUT, LoihiConv, LoihiDense, LoihiLIF, LoihiProgram
from neurocompile.targets.loihi2.program import LoihiDense as _Dense
from neurocompile.targets.loihi2.program import LoihiLIF as _LIF
from neurocompile.targets.loihi2.sigma_delta import lower_sdn
from neurocompile.targets.loihi2.stats import group_stats
from neurocompile.targets.loihi2.weights import LayerQuant, quantize_weights

CLOCK = "_clock"

# widths from the program format (one definition there)
V_MAX = _LIF.V_MAX
VTH_MAX = (1 << _LIF.VTH_BITS) - 1
BIAS_MANT_MAX = (1 << (_LIF.BIAS_MANT_BITS - 1)) - 1
BIAS_EXP_MAX = _LIF.BIAS_EXP_MAX
W_EXP_MIN, W_EXP_MAX = _Dense.WEIGHT_EXP_MIN, _Dense.WEIGHT_EXP_MAX
_ONE = _LIF.DECAY_ONE  # 4096: Lava decays x by d as x * (4096 - d) >> 12
SUPPORTED = (N.LIF, N.CubaLIF, N.IF, N.LI, N.CubaLI, N.Integrator)


def _uniform(node: N.Node, name: str, field: str, values: np.ndarray) -> float:
    v = np.ravel(values)
    if v.size and np.ptp(v) > 1e-9 * max(1.0, float(np.abs(v).max())):
        raise UnsupportedError(f"Loihi 2 LIF has one {field} per group; '{name}' has per-neuron values "
                               f"{v.min():.4g}..{v.max():.4g}", node=name)
    return float(v[0]) if v.size else 0.0


def decays(node: N.Node, graph: Graph, name: str) -> tuple[int, int, float, float, np.ndarray]:
    """(du, dv, alpha_q, beta_q, gain) of a group; gain maps its input to its v per step."""
    dt, rule = graph.dt, graph.discretization
    if isinstance(node, (N.IF, N.Integrator)):
        return _ONE - 1, 0, 0.0, 1.0, np.broadcast_to(node.r, np.shape(node.r))
    if isinstance(node, (N.LIF, N.LI)):
        beta = _uniform(node, name, "dv (tau)", decay_factor(node.tau, dt, rule))
        dv = int(round(_ONE * (1 - beta)))
        return _ONE - 1, dv, 0.0, 1 - dv / _ONE, (1 - beta) * node.r
    alpha = _uniform(node, name, "du (tau_syn)", decay_factor(node.tau_syn, dt, rule))
    beta = _uniform(node, name, "dv (tau_mem)", decay_factor(node.tau_mem, dt, rule))
    du = int(round(_ONE * (1 - alpha))) - 1
    dv = int(round(_ONE * (1 - beta)))
    if du < 0:  # tau_syn too long for 12 bits: name tau and dt (a time-unit mistake, usually)

        check_resolution(graph, name, node, "tau_syn", "Loihi 2's 12-bit du", 0.5 / _ONE)
    if not 0 <= du <= _ONE - 1 or not 0 <= dv <= _ONE - 1:
        raise UnsupportedError(f"decay out of Loihi's 12-bit range (du={du}, dv={dv})", node=name)
    return du, dv, 1 - (du + 1) / _ONE, 1 - dv / _ONE, (1 - alpha) * node.w_in * (1 - beta) * node.r


def check_supported(graph: Graph) -> None:
    for name, node in graph.nodes.items():
        if isinstance(node, (N.Input, N.Output, N.Linear, N.Conv2d, N.Flatten, N.Delay)):
            continue
        if not isinstance(node, SUPPORTED):
            raise UnsupportedError(f"{node.op} has no Loihi 2 lowering yet", node=name)
        if node.has_reset:
            if node.reset == "subtract":
                raise UnsupportedError("Lava's Loihi 2 LIF resets v to 0; reset by subtraction is not "
                                       "expressible (retrain with reset_mechanism='zero')", node=name)
            if np.any(node.v_reset != 0):
                raise UnsupportedError("Lava's Loihi 2 LIF resets v to 0; v_reset != 0", node=name)
            if node.refractory:
                raise UnsupportedError("refractory periods are not supported by Lava's LIF", node=name)
            if np.any(node.v_threshold <= 0):
                raise UnsupportedError("Loihi 2 thresholds must be > 0", node=name)
            # compare "ge" is lowered to Loihi's ">" and said so in the layer's report (they differ
            # only when the integer v lands exactly on vth << 6)
    check_delays(graph)
    for name, node in graph.nodes.items():
        if isinstance(node, N.Output):
            src = look_through(graph, graph.predecessors(name)[0])
            if not isinstance(graph.nodes[src], SUPPORTED):
                raise UnsupportedError(f"an Output must read a neuron group, not {graph.nodes[src].op}", node=name)
        elif isinstance(node, N.Flatten):
            (src,) = graph.predecessors(name)
            if not isinstance(graph.nodes[src], (N.Input,) + SUPPORTED):
                raise UnsupportedError("Flatten is only supported after a group (dense form)", node=name)


def _aligned_vth(cap: int, mats: list[np.ndarray], e_max: int = W_EXP_MAX) -> int:
    """The largest vth <= cap at which the group's main synapse matrix (most nonzeros) reaches the
    full 8-bit mantissa at some exponent: ``vth * max|R| / 2**e`` just below 254. Exponents come
    in powers of two, so without this the largest weight can sit anywhere in (127, 254]."""
    cap = int(max(1, min(VTH_MAX, cap)))
    mats = [m for m in mats if np.any(m)]
    if not mats:
        return cap
    r_max = float(np.abs(max(mats, key=np.count_nonzero)).max())
    # (cap + 1): a cap that is itself the fit limit floor(254 * 2**k / r_max) keeps exponent k
    e = min(e_max, max(W_EXP_MIN, math.floor(math.log2((cap + 1) * r_max / 254))))
    vth = math.floor(254 * 2.0 ** e / r_max)
    return int(max(1, min(cap, vth)))


def quantize_bias(bias_int: np.ndarray) -> tuple[np.ndarray, int, float]:
    m = float(np.abs(bias_int).max()) if bias_int.size else 0.0
    exp = 0
    while m / 2 ** exp > BIAS_MANT_MAX and exp < BIAS_EXP_MAX:
        exp += 1
    mant = np.clip(np.round(bias_int / 2 ** exp), -BIAS_MANT_MAX - 1, BIAS_MANT_MAX).astype(np.int64)
    err = float(np.abs(mant * 2 ** exp - bias_int).max()) if bias_int.size else 0.0
    return mant, exp, err


def flat(value, shape) -> np.ndarray:
    """A parameter broadcast over a group's shape, flattened (C order, as the chip numbers neurons)."""
    return np.broadcast_to(np.asarray(value, dtype=float), tuple(shape)).reshape(-1)


def ratios(c: Connection, gain: np.ndarray, thr: np.ndarray, shape) -> np.ndarray:
    """A connection's weights in thresholds of its destination per unit of input (R): the
    (dst, src) matrix of a Dense, or the kernel of a Conv scaled per output channel."""
    if c.is_conv:
        per_c = (gain / thr).reshape(shape[0], -1)[:, 0]
        return per_c[:, None, None, None] * c.node.weight
    return (gain[:, None] * c.node.weight) / thr[:, None]


def conv_bias(node: N.Conv2d, shape) -> np.ndarray:
    b = node.bias.reshape((-1, 1, 1)) if node.bias.ndim else node.bias
    return flat(b, shape)


@dataclasses.dataclass(frozen=True)
class QuantizeLoihi2(Lowering):
    """The lowering: graph -> :class:`LoweredLoihi2` (the integer program, the per-group
    quantization and how the host encodes inputs); the report gets a section per layer.

    Graphs of sigma-delta neurons go to :mod:`.sigma_delta`; everything else is LIF groups."""
    name: ClassVar[str] = "quantize-loihi2"
    margin: float = 1.25

    def run(self, graph: Graph, ctx: PassContext) -> LoweredLoihi2:
        calibration = ctx.options.calibration
        check_lowering(graph, calibration)  # the memory it will take, before anything is allocated
        if has_fixed(graph):  # integers recorded by the frontend (netx, CUBA or SDNN): used as they are
            program, layers, io, rep = fixed_program(graph, SUPPORTED, check_supported)
        elif any(n.graded for n in graph.nodes.values()):
            program, layers, io, rep = lower_sdn(graph, calibration, self.margin)
        else:
            encoding = choose_encoding(graph, calibration, ctx.options.input_encoding)
            io, in_rep = {"encoding": "spikes"}, {"encoding": "spikes"}
            if encoding == "current":
                io, in_rep = current_input_format(graph, calibration, getattr(ctx.options, "input_bits", None))
            e_max = getattr(ctx.options, "max_weight_exp", None)
            program, layers, rep = self._lower_lif(graph, calibration, split=bool(ctx.options.split_weights), io=io,
                                                   e_max=W_EXP_MAX if e_max is None else int(e_max))
            ctx.report["input"] = in_rep
        ctx.report["quantization"] = rep
        return LoweredLoihi2(graph=graph, program=program, layers=layers, io=io)

    def _lower_lif(self, graph: Graph, calib, split: bool = False, io: dict | None = None,
                   e_max: int = W_EXP_MAX):
        check_supported(graph)
        if not W_EXP_MIN <= e_max <= W_EXP_MAX:
            raise UnsupportedError(f"max_weight_exp must be in {W_EXP_MIN}..{W_EXP_MAX}, not {e_max}")
        graded = bool(io and io["encoding"] == "current")
        # graded input: payloads x_int = x * scale, so weights from the input absorb 1 / scale
        in_unit = float(io["scale"]) if graded else 1.0
        in_bits = int(io["message_bits"]) if graded else 0
        stats = group_stats(graph, calib)
        shapes = graph.infer_shapes()
        (inp,) = graph.inputs
        lifs, dense, layers, rep = [], [], {}, {}
        lat = shortest_hops(graph)
        n_clock = 0
        for name, node in graph.nodes.items():
            if not isinstance(node, SUPPORTED):
                continue
            shape = shapes[name]
            size = int(np.prod(shape))
            du, dv, alpha_q, beta_q, gain = decays(node, graph, name)
            gain = flat(gain, shape)
            spiking = node.spiking
            st = stats[name]
            if spiking:
                thr = flat(node.v_threshold, shape)
            else:  # readout: scale so the largest observed/bounded |v| uses a quarter of the range
                ref = st["v"] if st["v"] is not None else st["drive"] * np.abs(gain) / max(1e-12, 1 - beta_q)
                thr = np.full(size, max(float(np.max(ref)), 1e-12))
            # headroom: how many thresholds |u| (the chip's current, in v units) and |v| reach
            cuba = node.current is not None
            u_gain = (1 - beta_q) * flat(node.r, shape) if cuba else gain
            u_ratio = float(np.max(st["drive"] * np.abs(u_gain) / thr)) if size else 0.0
            v_ratio = float(np.max(st["v"] / thr)) if st["v"] is not None else u_ratio
            head = max(1.0, u_ratio, v_ratio) * self.margin
            conns = incoming(graph, name, shapes)
            R = {c.name: ratios(c, gain, thr, shape) / (in_unit if c.src == INPUT else 1.0) for c in conns}
            vth_cap = VTH_MAX
            for c in conns:  # the largest Dense weight must fit at the largest exponent
                r_max = float(np.max(np.abs(R[c.name]))) if R[c.name].size else 0.0
                if r_max > 0 and not c.is_conv:
                    vth_cap = min(vth_cap, math.floor(254 * 2.0 ** e_max / r_max))
            cap = min(vth_cap, math.floor(V_MAX / (64 * head)))
            convs = [c for c in conns if c.is_conv]
            if convs:  # Lava's Conv has no exponent: vth puts the kernel in the 8-bit range
                vth = int(max(1, min(cap, VTH_MAX, *(conv_vth(R[c.name]) for c in convs))))
            else:
                vth = _aligned_vth(cap, [R[c.name] for c in conns], e_max)
            scale = 64.0 * vth / thr
            bias_f = np.zeros(size)
            clock_cols: dict[int, np.ndarray] = {}
            for c in conns:
                syn = c.node
                if c.is_conv:
                    w, wrep = quantize_conv(R[c.name], vth)
                    dense.append(LoihiConv(name=c.name, src=c.src, dst=name, weights=w,
                                           in_shape=tuple(shapes[c.src_node]), stride=tuple(syn.stride),
                                           padding=tuple(syn.padding), dilation=tuple(syn.dilation),
                                           groups=int(syn.groups),
                                           num_message_bits=in_bits if c.src == INPUT else 0))
                    bias = conv_bias(syn, shape)
                else:
                    w, e, wrep = quantize_weights(R[c.name], vth)
                    dense.append(LoihiDense(name=c.name, src=c.src, dst=name, weights=w, weight_exp=e,
                                            delays=c.delays, num_message_bits=in_bits if c.src == INPUT else 0))
                    if split:
                        split_residual(dense, R[c.name], vth, wrep, c.delays)
                    if c.delays is not None:
                        wrep["max_delay"] = int(c.delays.max())
                    bias = flat(syn.bias, (size,)) if isinstance(syn, N.Affine) else np.zeros(size)
                rep[c.name] = wrep
                if np.any(bias):
                    # from clock neuron lat-1 (feed-forward) or lat (recurrent: arrives from step 1),
                    # plus the delay after the synapse (a later clock neuron starts later)
                    base = lat[name] - 1 + (1 if c.recurrent else 0)
                    col = gain * bias / thr
                    rows = c.row_delay if c.row_delay is not None else np.zeros(size, np.int64)
                    for d in np.unique(rows):
                        k = base + int(d)
                        clock_cols[k] = clock_cols.get(k, 0) + np.where(rows == d, col, 0.0)
            if clock_cols:
                n_clock = max(n_clock, max(clock_cols) + 1)
                cols = np.zeros((size, max(clock_cols) + 1))
                for k, col in clock_cols.items():
                    cols[:, k] = col
                # two matrices from the clock: the bias, then what its 8-bit rounding left over at
                # a finer exponent, so biases get ~16-bit precision for one extra synapse per neuron
                w, e, _ = quantize_weights(cols, vth)
                coarse = LoihiDense(name=f"{name}.bias", src=CLOCK, dst=name, weights=w, weight_exp=e)
                rest = cols - coarse.effective_weights() * 2.0 ** e / vth
                dense.append(coarse)
                if np.any(np.abs(rest) * vth >= 2.0 ** (W_EXP_MIN - 1)):
                    w2, e2, _ = quantize_weights(rest, vth)
                    dense.append(LoihiDense(name=f"{name}.bias_fine", src=CLOCK, dst=name, weights=w2, weight_exp=e2))
                got = sum(d.effective_weights() * 2.0 ** d.weight_exp for d in dense
                          if d.dst == name and d.src == CLOCK)
                err = got - cols * vth
                rep[f"{name}.bias"] = {"rel_rms_error": float(np.sqrt(np.mean(err ** 2)) /
                                                           (np.sqrt(np.mean((cols * vth) ** 2)) or 1.0)),
                                       "max_abs_error_thr": float(np.abs(err).max() / vth), "clipped": 0}
            if node.membrane_tau is not None:  # a leaky membrane: v relaxes toward v_leak
                bias_f = bias_f + (1 - beta_q) * flat(node.v_leak, shape)
            bias_int = bias_f * scale
            mant, bexp, berr = quantize_bias(bias_int)
            lifs.append(LoihiLIF(name=name, size=size, du=du, dv=dv, vth=vth if spiking else VTH_MAX,
                                 bias_mant=mant, bias_exp=bexp))
            beta_f = _float_decay(node, graph, node.membrane_tau)
            lrep = {"vth": vth, "du": du, "dv": dv, "headroom": round(head, 3),
                    "calibrated": bool(st["observed"]), "bias_exp": bexp,
                    "bias_max_abs_error_thr": berr / (64 * vth), "beta": beta_f, "beta_q": beta_q}
            if convs:
                lrep["vth_rule"] = "conv: largest kernel weight at the 8-bit limit with exponent 0"
            if getattr(node, "compare", "gt") == "ge":
                lrep["note_compare"] = "'>=' lowered as Loihi's '>' (differs only when v equals vth<<6 exactly)"
            if node.current is not None:
                lrep["alpha"] = _float_decay(node, graph, "tau_syn")
                lrep["alpha_q"] = alpha_q
            rep[name] = lrep
            layers[name] = LayerQuant(name=name, scale=scale, vth=vth, du=du, dv=dv, report=lrep)
        if n_clock:
            lifs.append(bias_clock(n_clock))
            dense.append(clock_chain(n_clock))
            for d in dense:  # the clock matrices were sized by group; pad them to the chain
                if d.src == CLOCK and d.weights.shape[1] < n_clock:
                    d.weights = np.pad(d.weights, ((0, 0), (0, n_clock - d.weights.shape[1])))
        mark_sparse(dense, rep, SPARSE_BELOW)
        program = LoihiProgram(n_inputs=int(np.prod(shapes[inp])), neurons=lifs, synapses=dense,
                               input_message_bits=in_bits)
        return program, layers, rep


def split_residual(dense: list, R: np.ndarray, vth: int, wrep: dict, delays) -> None:
    """``split_weights``: add a second matrix from the same source holding what the 8-bit rounding
    of ``dense[-1]`` left over, at its own (finer) exponent: about 16-bit effective weights for
    twice the synapses. Updates the error figures in ``wrep``."""
    main = dense[-1]
    got = main.effective_weights() * 2.0 ** main.weight_exp
    rest = R - got / vth
    if np.any(np.abs(rest) * vth >= 2.0 ** (W_EXP_MIN - 1)):
        w2, e2, _ = quantize_weights(rest, vth)
        fine = LoihiDense(name=f"{main.name}.fine", src=main.src, dst=main.dst, weights=w2, weight_exp=e2,
                          delays=delays, num_message_bits=main.num_message_bits)
        dense.append(fine)
        got = got + fine.effective_weights() * 2.0 ** e2
    err = got - vth * R
    denom = float(np.sqrt(np.mean((vth * R) ** 2))) or 1.0
    wrep.update(split=True, rel_rms_error=float(np.sqrt(np.mean(err ** 2)) / denom),
                max_abs_error_thr=float(np.abs(err).max() / vth) if err.size else 0.0)


#: a Dense whose matrix has fewer nonzero weights than this fraction becomes a Lava Sparse
#: (same arithmetic, verified bit-exact; only the nonzero synapses are stored)
SPARSE_BELOW = 0.25


def mark_sparse(dense: list, rep: dict, below: float) -> None:
    for d in dense:
        w = np.asarray(d.weights)
        if w.ndim != 2 or d.src == CLOCK or not w.size or getattr(d, "delays", None) is not None:
            continue
        density = np.count_nonzero(w) / w.size
        if density < below:
            d.sparse = True
        if d.name in rep:
            rep[d.name]["density"] = round(float(density), 4)
            rep[d.name]["sparse"] = bool(density < below)


def bias_clock(n: int):
    """Helper neurons: neuron 0 fires at every step (its bias 128 beats vth<<6 = 64 and v decays
    to 0 at once), neuron j fires at every step from step j on (driven by neuron j-1)."""
    mant = np.zeros(n, dtype=np.int64)
    mant[0] = 2
    return LoihiLIF(name=CLOCK, size=n, du=4095, dv=4095, vth=1, bias_mant=mant, bias_exp=6, probe=False)


def clock_chain(n: int):
    """Dense _clock -> _clock: neuron j-1 drives neuron j with 2 << 6 = 128 (> vth<<6 = 64)."""
    w = np.zeros((n, n), dtype=np.int64)
    w[np.arange(1, n), np.arange(n - 1)] = 2
    return LoihiDense(name=f"{CLOCK}.chain", src=CLOCK, dst=CLOCK, weights=w, weight_exp=6)


def _float_decay(node, graph, field) -> float | None:
    if field is None:  # no time constant: no decay
        return 1.0
    return float(np.ravel(decay_factor(getattr(node, field), graph.dt, graph.discretization))[0])
