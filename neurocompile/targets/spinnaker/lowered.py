"""The SpiNNaker level of the pipeline and the target's compile options.

``QuantizeSpiNNaker`` (:mod:`.lowering`) turns the final graph into a :class:`LoweredSpiNNaker`:
the populations, projections and raw words of the PyNN program. It verifies itself and is written
by ``--dump-ir``.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from neurocompile.errors import NeuroCompileError
from neurocompile.ir.graph import Graph
from neurocompile.passes.base import CompileOptions
from neurocompile.targets.spinnaker.program import Program

#: neurons a core: sPyNNaker 7.4's default maximum for IF_curr_* populations
NEURONS_PER_CORE = 256


@dataclasses.dataclass(frozen=True)
class SpiNNakerOptions(CompileOptions):
    # ``input_encoding`` ("spikes", "current", None = auto) is a common CompileOptions field; the
    # lowering reads it for the direct (host-driven current) input
    #: head-room over the calibrated peak input when choosing ring-buffer shifts
    margin: float = 1.25
    #: IF neurons: the width (mV) of the window IF_curr_delta integrates in
    if_window: float = 2.0
    #: neurons a core (sPyNNaker's default maximum is 256)
    neurons_per_core: int = NEURONS_PER_CORE
    #: "from_step_0" keeps a recurrent group's bias from the first tick (else an error)
    recurrent_bias: str | None = None
    #: stride-1 odd square convolutions into LIF/CubaLIF groups run on sPyNNaker's local-only
    #: ConvolutionConnector cores (False: every convolution is a FromList of its synapses)
    conv_connector: bool = True
    #: which groups are cut into one Grid2D population per channel: "local" (local-only conv
    #: groups and their sources), "all" (every end of a kept groups=1 conv, so that the FromList
    #: projections of strided convs are per channel pair and their rows short; many projections)
    conv_channels: str = "local"
    #: SpiNN-5 boards of the machine (48 chips each); None: the largest machine (SpiNNaker1M,
    #: 1200 boards). A program that needs more chips is refused with the figures
    boards: int | None = None


@dataclasses.dataclass(frozen=True)
class LoweredSpiNNaker:
    """The SpiNNaker level: the populations, projections and raw words of the program."""

    graph: Graph
    program: Program

    def validate(self) -> None:
        names = [p.name for p in self.program.populations] + [s.name for s in self.program.sources]
        if len(set(names)) != len(names):
            raise NeuroCompileError("the SpiNNaker program names a population twice")
        for pr in self.program.projections:
            if pr.pre not in names or pr.post not in names:
                raise NeuroCompileError(f"projection {pr.pre}->{pr.post} names a missing population")
        host = self.program.host_input
        if host is not None:
            if any(s.kind == "input" for s in self.program.sources):
                raise NeuroCompileError("the SpiNNaker program has both a host input and an input spike source")
            pops = {p.name: p for p in self.program.populations}
            for e in host.entries:
                if e.pop not in pops or e.pre.shape[0] != pops[e.pop].size:
                    raise NeuroCompileError(f"the host input drives '{e.pop}', which is not a population of "
                                            "that size")

    def dump(self, directory: Path) -> None:
        self.program.save(directory)
