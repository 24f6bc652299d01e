"""Place Loihi 2 neuron groups onto neuro-cores and chips, and report use against the limits.

Resource model (figures from Intel's Loihi 2 brief, "Taking Neuromorphic Computing to the Next
Level with Loihi 2", 2021, and Lava's documentation):

* 128 neuro-cores a chip, at most 8,192 neurons a core, 1M neurons a chip;
* 120M synapses a chip. We budget synapses per core as 120M / 128 = 937,500 8-bit dense synapses,
  stored at the destination core (a neuron's fan-in lives on its own core). Sparse and
  convolutional encodings store fewer words; this model counts every nonzero weight of a dense
  matrix as one synapse, so it errs on the side of more cores.

A group is split evenly over ``ceil(max(neurons / 8192, synapses / 937500))`` cores; groups do not
share cores. A network that needs more than ``max_chips`` chips gets an error naming the group
that overflowed.
"""
from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import numpy as np

from ...errors import NeuroCompileError
from ..graph import Graph
from ..passes.base import Pass, PassContext

CORES_PER_CHIP = 128
NEURONS_PER_CORE = 8192
SYNAPSES_PER_CHIP = 120_000_000
SYNAPSES_PER_CORE = SYNAPSES_PER_CHIP // CORES_PER_CHIP


@dataclasses.dataclass(frozen=True)
class PartitionLoihi2(Pass):
    """Reads ``ctx.products['loihi2']``; writes ``ctx.products['loihi2_cores']`` and the report."""

    name: ClassVar[str] = "partition-loihi2"
    max_chips: int = 1

    def run(self, graph: Graph, ctx: PassContext) -> Graph:
        program, _ = ctx.products["loihi2"]
        max_chips = int(ctx.options.get("chips") or self.max_chips)
        fan_in = {n.name: np.zeros(n.size, dtype=np.int64) for n in program.neurons}
        for d in program.synapses:
            fan_in[d.dst] += np.count_nonzero(d.weights, axis=1)
        cores, next_core = [], 0
        for n in program.neurons:
            syn = int(fan_in[n.name].sum())
            k = max(1, math.ceil(n.size / NEURONS_PER_CORE), math.ceil(syn / SYNAPSES_PER_CORE))
            bounds = np.linspace(0, n.size, k + 1).round().astype(int)
            for j in range(k):
                lo, hi = int(bounds[j]), int(bounds[j + 1])
                core_syn = int(fan_in[n.name][lo:hi].sum())
                if core_syn > SYNAPSES_PER_CORE:
                    raise NeuroCompileError(
                        f"one neuron has more fan-in than a core holds ({core_syn} > {SYNAPSES_PER_CORE} synapses)",
                        node=n.name)
                cores.append({"core": next_core, "chip": next_core // CORES_PER_CHIP, "group": n.name,
                              "neurons": [lo, hi], "n_neurons": hi - lo, "synapses": core_syn})
                next_core += 1
            if next_core > max_chips * CORES_PER_CHIP:
                raise NeuroCompileError(
                    f"the network needs more than {max_chips} chip(s) of {CORES_PER_CHIP} cores: "
                    f"this group brings the total to {next_core} cores (use --chips N)", node=n.name)
        n_chips = max(1, math.ceil(next_core / CORES_PER_CHIP))
        total_neurons = sum(n.size for n in program.neurons)
        total_syn = int(sum(v.sum() for v in fan_in.values()))
        ctx.products["loihi2_cores"] = cores
        ctx.report["resources"] = {
            "cores": next_core, "chips": n_chips, "neurons": total_neurons, "synapses": total_syn,
            "limits": {"cores_per_chip": CORES_PER_CHIP, "neurons_per_core": NEURONS_PER_CORE,
                       "synapses_per_core": SYNAPSES_PER_CORE, "max_chips": max_chips},
            "per_core": cores,
        }
        return graph
