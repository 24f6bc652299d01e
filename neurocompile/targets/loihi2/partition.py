"""Place Loihi 2 neuron groups onto neuro-cores and chips, and report use against the limits.

Resource model (figures from Intel's Loihi 2 brief, "Taking Neuromorphic Computing to the Next
Level with Loihi 2", 2021, and Lava's documentation):

* 128 neuro-cores a chip, at most 8,192 neurons a core, 1M neurons a chip;
* 120M synapses a chip. We budget synapses per core as 120M / 128 = 937,500 8-bit dense synapses,
  stored at the destination core (a neuron's fan-in lives on its own core). Sparse and
  convolutional encodings store fewer words; this model counts every nonzero weight of a dense
  matrix as one synapse, so it errs on the side of more cores.

Placement: groups are taken in the graph's order (so that a layer and the next one share a core
where they fit, which keeps their spikes off the mesh). A group larger than one core is split
evenly over ``ceil(max(neurons / 8192, synapses / 937500))`` cores of its own; smaller groups are
packed next-fit onto the last open core while both budgets hold. The report counts, per core,
neurons and synapses against the limits, and the spike routes between cores: every source neuron
sends one message per destination core it reaches (Loihi multicasts within a core). A network that
needs more than ``max_chips`` chips gets an error naming the group that overflowed.

Convolutions (``LoihiConv``) share one kernel over all positions: a core holding part of a
conv-fed group stores the kernel's nonzero weights once (counted in ``synapses``), while every
(source, destination) pair the kernel connects is a *connection* (``connections`` counts those,
plus one per dense synapse). Spike routes follow the connections.
"""
from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import numpy as np

from neurocompile.errors import NeuroCompileError
from neurocompile.passes.base import PassContext
from neurocompile.targets.loihi2.conv import conv_pairs
from neurocompile.targets.loihi2.lowered import LoweredLoihi2, Placement
from neurocompile.targets.loihi2.program import LoihiConv

CORES_PER_CHIP = 128
NEURONS_PER_CORE = 8192
SYNAPSES_PER_CHIP = 120_000_000
SYNAPSES_PER_CORE = SYNAPSES_PER_CHIP // CORES_PER_CHIP


@dataclasses.dataclass(frozen=True)
class PartitionLoihi2:
    """Program level -> the same level with its :class:`Placement` on cores and chips; the report
    gets ``resources``. ``max_chips`` is the default when the options name no ``chips``."""

    name: ClassVar[str] = "partition-loihi2"
    max_chips: int = 1

    def run(self, lowered: LoweredLoihi2, ctx: PassContext) -> LoweredLoihi2:
        program = lowered.program
        max_chips = int(ctx.options.chips or self.max_chips)
        fan_in = {n.name: np.zeros(n.size, dtype=np.int64) for n in program.neurons}   # stored dense words
        conn_in = {n.name: np.zeros(n.size, dtype=np.int64) for n in program.neurons}  # connections
        kernel_words = {n.name: 0 for n in program.neurons}  # conv kernels, stored once per core
        pairs = {}
        for d in program.synapses:
            if isinstance(d, LoihiConv):
                src, dst, _ = conv_pairs(d.weights, d.in_shape, d.stride, d.padding, d.dilation, d.groups)
                pairs[d.name] = (src, dst)
                conn_in[d.dst] += np.bincount(dst, minlength=conn_in[d.dst].size)
                kernel_words[d.dst] += int(np.count_nonzero(d.weights))
            else:
                nz = np.count_nonzero(d.weights, axis=1)
                fan_in[d.dst] += nz
                conn_in[d.dst] += nz
        cores: list[dict] = []
        place: dict[str, np.ndarray] = {}  # group -> core of each neuron
        for n in program.neurons:
            kw = kernel_words[n.name]
            syn = int(fan_in[n.name].sum()) + kw
            k = max(1, math.ceil(n.size / NEURONS_PER_CORE),
                    math.ceil((syn - kw) / max(1, SYNAPSES_PER_CORE - kw)))
            last = cores[-1] if cores else None
            if k == 1 and last is not None and last["n_neurons"] + n.size <= NEURONS_PER_CORE \
                    and last["synapses"] + syn <= SYNAPSES_PER_CORE and not last.get("full"):
                last["groups"].append({"group": n.name, "neurons": [0, n.size]})
                last["n_neurons"] += n.size
                last["synapses"] += syn
                place[n.name] = np.full(n.size, last["core"])
                continue
            bounds = np.linspace(0, n.size, k + 1).round().astype(int)
            place[n.name] = np.zeros(n.size, dtype=np.int64)
            for j in range(k):
                lo, hi = int(bounds[j]), int(bounds[j + 1])
                core_syn = int(fan_in[n.name][lo:hi].sum()) + kw
                if core_syn > SYNAPSES_PER_CORE:
                    raise NeuroCompileError(
                        f"{hi - lo} neurons have more fan-in than a core holds ({core_syn} > "
                        f"{SYNAPSES_PER_CORE} synapses)", node=n.name)
                core = len(cores)
                cores.append({"core": core, "chip": core // CORES_PER_CHIP,
                              "groups": [{"group": n.name, "neurons": [lo, hi]}],
                              "n_neurons": hi - lo, "synapses": core_syn, "full": k > 1})
                place[n.name][lo:hi] = core
            if len(cores) > max_chips * CORES_PER_CHIP:
                raise NeuroCompileError(
                    f"the network needs more than {max_chips} chip(s) of {CORES_PER_CHIP} cores: "
                    f"this group brings the total to {len(cores)} cores (use --chips N)", node=n.name)
        next_core = len(cores)
        routes = inter_core = 0
        for d in program.synapses:
            if d.src not in place:
                continue
            dst_core = place[d.dst]
            if d.name in pairs:  # conv: one route per (source neuron, destination core)
                src, dst = pairs[d.name]
                uniq = np.unique(src.astype(np.int64) * (next_core + 1) + dst_core[dst])
                s_idx, c_idx = np.divmod(uniq, next_core + 1)
                routes += uniq.size
                inter_core += int(np.sum(place[d.src][s_idx] != c_idx))
                continue
            for j in range(d.weights.shape[1]):
                targets = np.unique(dst_core[np.nonzero(d.weights[:, j])[0]])
                routes += len(targets)
                inter_core += int(np.sum(targets != place[d.src][j]))
        for c in cores:
            c.pop("full", None)
        n_chips = max(1, math.ceil(next_core / CORES_PER_CHIP))
        total_neurons = sum(n.size for n in program.neurons)
        total_syn = sum(int(c["synapses"]) for c in cores)
        total_conn = int(sum(v.sum() for v in conn_in.values()))
        ctx.report["resources"] = resources = {
            "cores": next_core, "chips": n_chips, "neurons": total_neurons, "synapses": total_syn,
            "connections": total_conn,
            "limits": {"cores_per_chip": CORES_PER_CHIP, "neurons_per_core": NEURONS_PER_CORE,
                       "synapses_per_core": SYNAPSES_PER_CORE, "max_chips": max_chips},
            "spike_routes": routes, "inter_core_routes": inter_core,
            "per_core": cores,
        }
        return dataclasses.replace(lowered, placement=Placement(cores=cores, resources=resources))
