"""The Loihi 2 levels of the pipeline: the lowered program, then its placement on cores.

``QuantizeLoihi2`` turns the final graph into a :class:`LoweredLoihi2`; ``PartitionLoihi2``
adds a :class:`Placement`. Both levels verify themselves and are written by ``--dump-ir``.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from neurocompile.errors import UnsupportedError
from neurocompile.ir.graph import Graph
from neurocompile.targets.loihi2.program import LoihiProgram


@dataclasses.dataclass(frozen=True)
class Placement:
    """Which groups sit on which neuro-core and chip, and the resources they use."""

    cores: list[dict[str, Any]]
    resources: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class LoweredLoihi2:
    graph: Graph                  # the graph the program came from: the artifact's float semantics
    program: LoihiProgram         # the integer program (the chip's level)
    layers: dict[str, Any]        # group -> LayerQuant (scales back to float units)
    io: dict[str, Any]            # how the host encodes the input ({"encoding": "spikes"}, ...)
    placement: Placement | None = None

    def validate(self) -> None:
        try:
            self.program.validate()
        except ValueError as err:  # a value the chip cannot hold: a quantizer bug or an extreme model
            raise UnsupportedError(f"the quantized program is not representable on Loihi 2: {err}") from None

    def dump(self, directory: Path) -> None:
        self.program.save(Path(directory) / "program")
        (Path(directory) / "io.json").write_text(json.dumps(self.io, indent=2, default=str) + "\n")
        if self.placement is not None:
            (Path(directory) / "placement.json").write_text(
                json.dumps({"cores": self.placement.cores, "resources": self.placement.resources},
                           indent=2, default=_plain) + "\n")


def _plain(o):
    return o.item() if hasattr(o, "item") else o.tolist() if hasattr(o, "tolist") else str(o)
