"""What a backend plugin provides.

A backend is an object registered under the entry-point group ``neurocompile.backends``
(``name = "package.module:ClassName"``). neurocompile imports it only when it is used. It needs:

* ``name``, ``description``
* ``available() -> (bool, reason)``: can it *run* here (compiling never needs the hardware)
* ``pipeline(options) -> list[Pass]``: the lowering, one named pass a line
* ``compile(graph, options, log, dump_ir) -> Artifact``
* ``run(artifact, x, probes, record_spikes, progress) -> RunResult``
* ``save_payload(payload, dir)`` / ``load_payload(dir)`` for target-specific artifact contents

:class:`Backend` implements ``compile`` on top of ``pipeline`` and ``lower``; subclasses
usually override ``pipeline``, ``lower`` (graph -> payload) and ``run``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from neurocompile.targets.artifact import Artifact
from neurocompile.ir.graph import Graph
from neurocompile.passes import NORMALIZE, Pass, PassContext, Pipeline


class Backend:
    name = "base"
    description = ""

    def available(self) -> tuple[bool, str]:
        return True, "runs here"

    def pipeline(self, options: dict) -> list[Pass]:
        return list(NORMALIZE)

    def lower(self, graph: Graph, ctx: PassContext) -> Any:
        """Turn the final graph into the target's payload (None when the graph is enough)."""
        return None

    def compile(self, graph: Graph, *, options: dict | None = None,
                log: Callable[[str], None] = lambda m: None, dump_ir: str | Path | None = None) -> Artifact:
        ctx = PassContext(target=self.name, options=dict(options or {}), log=log)
        pipe = Pipeline(self.pipeline(ctx.options), verify=True, dump_dir=Path(dump_ir) if dump_ir else None)
        graph = pipe.run(graph, ctx)
        payload = self.lower(graph, ctx)
        return Artifact(target=self.name, graph=graph, report=ctx.report, payload=payload)

    def run(self, artifact: Artifact, x, *, probes=(), record_spikes=True, progress=None):
        raise NotImplementedError

    def save_payload(self, payload: Any, directory: Path) -> None:
        return None

    def load_payload(self, directory: Path) -> Any:
        return None
