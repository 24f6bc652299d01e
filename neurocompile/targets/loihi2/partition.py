"""Place Loihi 2 neuron groups onto neuro-cores and chips, and report use against the limits.

The resource model (what a core holds, the figures and their sources, and what is not public) is
in ``docs/memory-model.md``. In short, per neuro-core:

* at most ``NEURONS_PER_CORE`` = 8,192 neurons (1M neurons / 128 cores a chip);
* at most ``SYNAPSES_PER_CORE`` = 937,500 synapse words (120M synapses / 128 cores), stored at the
  destination core: one word per nonzero weight of a Dense/Sparse into the core's neurons, and a
  convolution's nonzero kernel taps once per core that holds part of its destination (shared
  weights); ``connections`` counts the (source, destination) pairs the kernels connect;
* one *axon route* per (source neuron, destination core) pair: Loihi multicasts a spike within a
  core, so a spike costs one message per destination core it reaches. Routes are counted per
  source core (``axons``) and the number that leave their chip is the bound on the spike messages
  that cross chips per step (every neuron spiking every step); with ``rates`` (spikes per neuron
  and step), or else from a float run on the calibration data when there is some, the expected
  number is reported too.

Placement:

1. Groups are taken in the program's order (a layer and the next share a core where they fit,
   which keeps their spikes off the mesh). A group larger than one core is split over cores of its
   own: a convolutional group (C, H, W) into *tiles* of whole rows (all channels, a band of rows;
   channel blocks when one row of all channels is more than a core), so that a source neuron's
   spikes reach the one or two tiles around its position instead of every core of the layer; any
   other group into even ranges of neurons. The number of cores grows until every core's neurons
   and synapse words fit. Smaller groups are packed next-fit onto the last open core.
2. The core-to-core traffic matrix (routes from each core to each core) is computed without lists
   of synapses: per destination core, the sources that reach it (the nonzero columns of a Dense's
   rows; for a Conv, the rows and columns its kernel taps read for the tile, in closed form).
3. Cores are assigned to chips to keep routes between chips low: the program order (layers
   packed chip after chip) and a spatial split (every chip takes the same band of rows of every
   convolutional layer, so only the halo at band borders crosses) are both scored on the traffic
   matrix, the better one is refined by moving single cores between chips while that lowers the
   crossing routes and capacity allows.

A network that needs more than ``max_chips`` chips (``--chips``) gets an error naming the group
that overflowed, before any traffic is computed.
"""
from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import numpy as np

from neurocompile.errors import NeuroCompileError
from neurocompile.passes.base import PassContext
from neurocompile.targets.loihi2.conv import connection_counts, conv_pairs
from neurocompile.targets.loihi2.lowered import LoweredLoihi2, Placement
from neurocompile.targets.loihi2.program import LoihiConv
from neurocompile.utils.budget import check_alloc

CORES_PER_CHIP = 128
NEURONS_PER_CORE = 8192
SYNAPSES_PER_CHIP = 120_000_000
SYNAPSES_PER_CORE = SYNAPSES_PER_CHIP // CORES_PER_CHIP
#: refinement passes over all cores when assigning cores to chips
REFINE_PASSES = 4


@dataclasses.dataclass
class _Core:
    group: str
    neurons: int
    synapses: int
    box: tuple | None = None        # (c0, c1, y0, y1) of a tiled (C, H, W) group
    span: tuple | None = None       # (lo, hi) flat neuron range
    members: list = dataclasses.field(default_factory=list)   # groups packed onto this core
    shared: bool = True             # small groups may be packed next to it


def _group_shapes(program) -> dict[str, tuple]:
    """(C, H, W) of the groups that a convolution reads or writes."""
    shapes = {}
    for s in program.synapses:
        if isinstance(s, LoihiConv):
            shapes[s.dst] = tuple(int(v) for v in s.out_shape())
            if s.src != "input":
                shapes[s.src] = tuple(int(v) for v in s.in_shape)
    return shapes


def _splits(n: int, k: int) -> np.ndarray:
    return np.linspace(0, n, k + 1).round().astype(np.int64)


def _tiles(shape, fan_in: np.ndarray, kernel_words: int, syn_cap: int, neuron_cap: int) -> list | None:
    """Row-band tiles (c0, c1, y0, y1) of a (C, H, W) group, each within the core limits, or None
    when no tiling of whole rows fits."""
    C, H, W = shape
    per = fan_in.reshape(C, H, W).sum(axis=2)                 # dense words per (channel, row)
    for cb in ([C] + [c for c in range(C - 1, 0, -1) if C % c == 0]):
        if cb * W > neuron_cap:
            continue
        rows = max(1, neuron_cap // (cb * W))
        k = math.ceil(H / rows)
        while k <= H:
            ys = _splits(H, k)
            tiles = [(c0, c0 + cb, int(ys[i]), int(ys[i + 1])) for c0 in range(0, C, cb) for i in range(k)]
            if all((t[1] - t[0]) * (t[3] - t[2]) * W <= neuron_cap
                   and int(per[t[0]:t[1], t[2]:t[3]].sum()) + kernel_words <= syn_cap for t in tiles):
                return tiles
            k += 1
    return None


def _ranges(n: int, fan_in: np.ndarray, kernel_words: int, syn_cap: int, neuron_cap: int, name: str) -> list:
    """Even ranges (lo, hi) of a flat group, each within the core limits."""
    cum = np.concatenate([[0], np.cumsum(fan_in)])
    dense = int(cum[-1])
    k = max(1, math.ceil(n / neuron_cap), math.ceil(dense / max(1, syn_cap - kernel_words)))
    while True:
        b = _splits(n, k)
        words = cum[b[1:]] - cum[b[:-1]] + kernel_words
        if np.all(words <= syn_cap) and np.all(np.diff(b) <= neuron_cap):
            return [(int(b[i]), int(b[i + 1])) for i in range(k)]
        if k >= n:
            i = int(np.argmax(words))
            raise NeuroCompileError(f"{int(b[i + 1] - b[i])} neurons have more fan-in than a core holds "
                                    f"({int(words[i])} > {syn_cap} synapse words)", node=name)
        k = min(n, max(k + 1, int(k * 1.25)))


@dataclasses.dataclass(frozen=True)
class PartitionLoihi2:
    """Program level -> the same level with its :class:`Placement` on cores and chips; the report
    gets ``resources``. ``max_chips`` is the default when the options name no ``chips``;
    ``rates`` (group -> spikes per neuron and step, scalar or per neuron) gives the expected spike
    messages that cross chips."""

    name: ClassVar[str] = "partition-loihi2"
    max_chips: int = 1
    cores_per_chip: int = CORES_PER_CHIP
    neurons_per_core: int = NEURONS_PER_CORE
    synapses_per_core: int = SYNAPSES_PER_CORE
    rates: dict | None = None

    def run(self, lowered: LoweredLoihi2, ctx: PassContext) -> LoweredLoihi2:
        program = lowered.program
        max_chips = int(ctx.options.chips or self.max_chips)
        cpc, ncap, scap = self.cores_per_chip, self.neurons_per_core, self.synapses_per_core
        sizes = {n.name: int(n.size) for n in program.neurons}
        fan_in = {n: np.zeros(s, dtype=np.int64) for n, s in sizes.items()}    # stored dense words
        conn_in = dict.fromkeys(sizes, 0)                                       # connections
        kernel_words = dict.fromkeys(sizes, 0)     # conv kernels, stored once per core
        for d in program.synapses:
            if isinstance(d, LoihiConv):
                kernel_words[d.dst] += int(np.count_nonzero(d.weights))
                conn_in[d.dst] += int(connection_counts(d)[0].sum())
            else:
                nz = np.count_nonzero(d.weights, axis=1)
                fan_in[d.dst] += nz
                conn_in[d.dst] += int(nz.sum())
        shapes = _group_shapes(program)

        # -- 1. cores ---------------------------------------------------------------------------
        cores: list[_Core] = []
        for n in program.neurons:
            name, size, kw = n.name, sizes[n.name], kernel_words[n.name]
            syn = int(fan_in[name].sum()) + kw
            last = cores[-1] if cores else None
            if size <= ncap and syn <= scap and last is not None and last.shared \
                    and last.neurons + size <= ncap and last.synapses + syn <= scap:
                last.members.append((name, None, (0, size)))
                last.neurons += size
                last.synapses += syn
            elif size <= ncap and syn <= scap:
                cores.append(_Core(group=name, neurons=size, synapses=syn, span=(0, size),
                                   members=[(name, None, (0, size))]))
            else:
                tiles = _tiles(shapes[name], fan_in[name], kw, scap, ncap) if name in shapes else None
                if tiles is not None:
                    C, H, W = shapes[name]
                    per = fan_in[name].reshape(C, H, W).sum(axis=2)
                    for t in tiles:
                        nn = (t[1] - t[0]) * (t[3] - t[2]) * W
                        cores.append(_Core(group=name, neurons=nn, synapses=int(per[t[0]:t[1], t[2]:t[3]].sum()) + kw,
                                           box=t, members=[(name, t, None)], shared=False))
                else:
                    cum = np.concatenate([[0], np.cumsum(fan_in[name])])
                    for lo, hi in _ranges(size, fan_in[name], kw, scap, ncap, name):
                        cores.append(_Core(group=name, neurons=hi - lo, synapses=int(cum[hi] - cum[lo]) + kw,
                                           span=(lo, hi), members=[(name, None, (lo, hi))], shared=False))
            if len(cores) > max_chips * cpc:
                raise NeuroCompileError(
                    f"the network needs more than {max_chips} chip(s) of {cpc} cores: "
                    f"this group brings the total to {len(cores)} cores (use --chips N)", node=name)
        n_cores = len(cores)
        core_of = {n: np.zeros(s, dtype=np.int32) for n, s in sizes.items()}
        for k, c in enumerate(cores):
            for name, box, span in c.members:
                if box is not None:
                    C, H, W = shapes[name]
                    core_of[name].reshape(C, H, W)[box[0]:box[1], box[2]:box[3]] = k
                else:
                    core_of[name][span[0]:span[1]] = k

        # -- 2. traffic between cores -----------------------------------------------------------
        check_alloc(24 * n_cores ** 2, f"the route matrix between {n_cores} cores (and its chip assignment)")
        traffic = np.zeros((n_cores, n_cores), dtype=np.int64)   # [src core, dst core]: routes
        input_routes = 0
        for d in program.synapses:
            for dst_core, reached in _reached(d, cores, core_of, shapes, sizes):
                if d.src in core_of:
                    traffic[:, dst_core] += np.bincount(core_of[d.src][reached], minlength=n_cores)
                else:
                    input_routes += int(np.count_nonzero(reached))

        # -- 3. chips ---------------------------------------------------------------------------
        chip_of = _assign_chips(cores, traffic, cpc, shapes)
        n_chips = int(chip_of.max()) + 1 if n_cores else 1
        order = np.lexsort((np.arange(n_cores), chip_of))          # renumber: chip after chip
        new_id = np.empty(n_cores, dtype=np.int64)
        new_id[order] = np.arange(n_cores)
        cross_chip = chip_of[:, None] != chip_of[None, :]
        routes = int(traffic.sum())
        inter_core = routes - int(np.trace(traffic))
        inter_chip = int(traffic[cross_chip].sum())
        per_core = []
        for k in order:
            c = cores[k]
            groups = []
            for name, box, span in c.members:
                if box is not None:
                    groups.append({"group": name, "channels": [box[0], box[1]], "rows": [box[2], box[3]]})
                else:
                    groups.append({"group": name, "neurons": [span[0], span[1]]})
            per_core.append({"core": int(new_id[k]), "chip": int(chip_of[k]), "groups": groups,
                             "n_neurons": int(c.neurons), "synapses": int(c.synapses),
                             "axons": int(traffic[k].sum()), "axons_off_chip": int(traffic[k][cross_chip[k]].sum())})
        per_chip = []
        for ch in range(n_chips):
            on = chip_of == ch
            per_chip.append({"chip": ch, "cores": int(on.sum()),
                             "neurons": int(sum(c.neurons for c, o in zip(cores, on) if o)),
                             "synapses": int(sum(c.synapses for c, o in zip(cores, on) if o)),
                             "routes_out": int(traffic[on][:, ~on].sum()), "routes_in": int(traffic[~on][:, on].sum())})
        crossing = {"upper_bound": inter_chip,
                    "note": "spike messages crossing chips per step if every neuron spiked every step "
                            "(one message per remote destination core)"}
        rates, source = self.rates, "given"
        if rates is None and inter_chip and ctx.options.calibration is not None:
            rates, source = _calibration_rates(lowered.graph, ctx.options.calibration, sizes), "calibration"
        if rates and inter_chip:
            crossing["expected"] = _expected_crossing(program, cores, core_of, shapes, sizes, chip_of, rates)
            crossing["rates_from"] = source
        total_neurons = sum(sizes.values())
        ctx.report["resources"] = resources = {
            "cores": n_cores, "chips": n_chips, "neurons": total_neurons,
            "synapses": int(sum(c.synapses for c in cores)), "connections": int(sum(conn_in.values())),
            "limits": {"cores_per_chip": cpc, "neurons_per_core": ncap, "synapses_per_core": scap,
                       "max_chips": max_chips},
            "spike_routes": routes, "inter_core_routes": inter_core, "inter_chip_routes": inter_chip,
            "input_routes": input_routes, "spikes_crossing_chips_per_step": crossing,
            "per_chip": per_chip, "per_core": per_core,
        }
        return dataclasses.replace(lowered, placement=Placement(cores=per_core, resources=resources))


def _dst_cores(name: str, cores: list[_Core]):
    for k, c in enumerate(cores):
        for g, box, span in c.members:
            if g == name:
                yield k, box, span


def _reached(d, cores, core_of, shapes, sizes):
    """Per destination core of ``d.dst``: (core index, bool mask over ``d``'s source neurons that
    reach it through ``d``)."""
    n_src = d.in_size() if isinstance(d, LoihiConv) else int(np.shape(d.weights)[1])
    for k, box, span in _dst_cores(d.dst, cores):
        if not isinstance(d, LoihiConv):
            w = np.asarray(d.weights)
            if box is not None:
                C, H, W = shapes[d.dst]
                rows = np.zeros((C, H, W), bool)
                rows[box[0]:box[1], box[2]:box[3]] = True
                sub = w[rows.reshape(-1)]
            else:
                sub = w[span[0]:span[1]]
            yield k, np.any(sub != 0, axis=0) if sub.size else np.zeros(n_src, bool)
            continue
        yield k, _conv_reached(d, box, span, shapes)


def _conv_reached(d: LoihiConv, box, span, shapes) -> np.ndarray:
    """Sources of conv ``d`` that reach the destination tile ``box`` (or flat range ``span``)."""
    C, H, W = d.in_shape
    co, Ho, Wo = d.out_shape()
    w = np.asarray(d.weights)
    mask = np.zeros((C, H, W), bool)
    if box is None:          # a flat range: the pairs of its channels, filtered (small groups only)
        lo, hi = span
        src, dst, _ = conv_pairs(w, d.in_shape, d.stride, d.padding, d.dilation, d.groups,
                                 range(lo // (Ho * Wo), (hi - 1) // (Ho * Wo) + 1))
        mask.reshape(-1)[src[(dst >= lo) & (dst < hi)]] = True
        return mask.reshape(-1)
    c0, c1, y0, y1 = box
    cig, og = w.shape[1], co // int(d.groups)
    (sh, sw), (ph, pw), (dh, dw) = d.stride, d.padding, d.dilation
    oy, ox = np.arange(y0, y1), np.arange(Wo)
    o, c, i, j = np.nonzero(w[c0:c1])
    taps = np.unique(np.stack([((o + c0) // og) * cig + c, i, j], axis=1), axis=0) if o.size else []
    for cin, ti, tj in taps:
        iy = oy * sh + ti * dh - ph
        ix = ox * sw + tj * dw - pw
        iy, ix = iy[(iy >= 0) & (iy < H)], ix[(ix >= 0) & (ix < W)]
        if iy.size and ix.size:
            mask[cin][np.ix_(iy, ix)] = True
    return mask.reshape(-1)


def _crossing(traffic: np.ndarray, chip_of: np.ndarray) -> int:
    return int(traffic[chip_of[:, None] != chip_of[None, :]].sum())


def _assign_chips(cores: list[_Core], traffic: np.ndarray, cpc: int, shapes: dict) -> np.ndarray:
    """Chip of every core: the better of program order and a spatial split, then refined."""
    n = len(cores)
    m = max(1, math.ceil(n / cpc))
    in_order = np.arange(n) // cpc
    if m == 1:
        return np.zeros(n, dtype=np.int64)
    candidates = [in_order]
    spatial = _spatial_split(cores, m, cpc, shapes)
    if spatial is not None:
        candidates.append(spatial)
    best = min(candidates, key=lambda a: _crossing(traffic, a))
    chip = _refine(best.copy(), traffic + traffic.T, m, cpc)
    return np.unique(chip, return_inverse=True)[1].astype(np.int64)   # no empty chip in between


def _spatial_split(cores: list[_Core], m: int, cpc: int, shapes: dict) -> np.ndarray | None:
    """Every tiled group's bands split over the chips by rows; other cores fill the remaining
    room in program order. None when that does not fit the chips."""
    chip = np.full(len(cores), -1, dtype=np.int64)
    load = np.zeros(m, dtype=np.int64)
    by_group: dict[str, list[int]] = {}
    for k, c in enumerate(cores):
        if c.box is not None:
            by_group.setdefault(c.group, []).append(k)
    for ks in by_group.values():
        ks = sorted(ks, key=lambda k: (cores[k].box[2], cores[k].box[0]))
        for r, k in enumerate(ks):
            chip[k] = min(m - 1, r * m // len(ks))
            load[chip[k]] += 1
    for k in range(len(cores)):
        if chip[k] < 0:
            room = np.flatnonzero(load < cpc)
            if not room.size:
                return None
            chip[k] = room[0]
            load[room[0]] += 1
    return chip if np.all(load <= cpc) else None


def _refine(chip: np.ndarray, sym: np.ndarray, m: int, cpc: int) -> np.ndarray:
    """Move single cores to the chip they exchange most routes with while that lowers the
    crossing routes and the chip has room (``sym``: traffic both ways)."""
    load = np.bincount(chip, minlength=m)
    for _ in range(REFINE_PASSES):
        moved = False
        to_chip = np.stack([sym[:, chip == c].sum(axis=1) for c in range(m)], axis=1)   # (n, m)
        for k in np.argsort(-(to_chip.max(axis=1) - to_chip[np.arange(len(chip)), chip])):
            here = chip[k]
            gain = to_chip[k] - to_chip[k, here]
            gain[load >= cpc] = -1
            gain[here] = 0
            tgt = int(np.argmax(gain))
            if gain[tgt] <= 0:
                continue
            chip[k] = tgt
            load[here] -= 1
            load[tgt] += 1
            to_chip[:, here] -= sym[:, k]
            to_chip[:, tgt] += sym[:, k]
            moved = True
        if not moved:
            break
    return chip


def _calibration_rates(graph, calibration, sizes: dict) -> dict | None:
    """Spikes per neuron and step of every spiking group in a float run on the calibration data
    (None when that run would not fit the memory budget: the report keeps the upper bound)."""
    from neurocompile.ir.batch import batched_input
    from neurocompile.ir.interpreter import run
    from neurocompile.utils.budget import memory_budget

    x = batched_input(graph, calibration, any_shape=True)
    groups = [n for n, node in graph.nodes.items() if n in sizes and node.spiking]
    need = 16 * x.shape[0] * x.shape[1] * sum(sizes[g] for g in groups)
    if not groups or need > memory_budget()[0]:
        return None
    res = run(graph, x, probes=groups)
    return {g: res.probes[g].reshape(x.shape[0] * x.shape[1], -1).mean(axis=0) for g in groups}


def _expected_crossing(program, cores, core_of, shapes, sizes, chip_of, rates) -> float:
    """Spike messages crossing chips per step at the given firing rates (spikes/neuron/step)."""
    total = 0.0
    for d in program.synapses:
        if d.src not in core_of or d.src not in rates:
            continue
        r = np.broadcast_to(np.asarray(rates[d.src], dtype=np.float64), (sizes[d.src],))
        src_chip = chip_of[core_of[d.src]]
        for k, reached in _reached(d, cores, core_of, shapes, sizes):
            total += float(r[reached & (src_chip != chip_of[k])].sum())
    return total
