"""Passes and the pipeline that runs them.

A pass is a small frozen dataclass with a ``name`` and ``run(graph, ctx) -> graph``; it returns a
new graph (or the same one unchanged) and never mutates arrays it was given. The pipeline runs
passes in order and, between them, can verify the graph and dump it to disk so each step can be
inspected (``neurocompile compile --dump-ir DIR``).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable, ClassVar, Sequence

from neurocompile.errors import NeuroCompileError
from neurocompile.ir.graph import Graph


@dataclasses.dataclass
class PassContext:
    """What passes share: the target's options and a report that passes fill in."""

    target: str = "float"
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    report: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: results that are not graphs (an integer program, a core map), keyed by the pass that made them
    products: dict[str, Any] = dataclasses.field(default_factory=dict)
    log: Callable[[str], None] = lambda msg: None


@dataclasses.dataclass(frozen=True)
class Pass:
    name: ClassVar[str] = "pass"

    def run(self, graph: Graph, ctx: PassContext) -> Graph:  # pragma: no cover - interface
        raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class Pipeline:
    passes: Sequence[Pass]
    verify: bool = True
    dump_dir: Path | None = None

    def run(self, graph: Graph, ctx: PassContext | None = None) -> Graph:
        ctx = ctx or PassContext()
        if self.verify:
            graph.validate()
        self._dump(graph, 0, "input")
        for i, p in enumerate(self.passes, start=1):
            ctx.log(f"pass {i}/{len(self.passes)}: {p.name}")
            graph = p.run(graph, ctx)
            if self.verify:
                try:
                    graph.validate()
                except NeuroCompileError as err:
                    err.reason = f"after pass '{p.name}': {err.reason}"
                    raise
            self._dump(graph, i, p.name)
        return graph

    def _dump(self, graph: Graph, index: int, name: str) -> None:
        if self.dump_dir is None:
            return
        from neurocompile.ir.serialize import save_graph

        if index == 0:
            start_dump(Path(self.dump_dir))

        save_graph(graph, Path(self.dump_dir) / f"{index:02d}-{name}")
        (Path(self.dump_dir) / f"{index:02d}-{name}" / "summary.txt").write_text(graph.summary() + "\n")


def start_dump(path: Path) -> None:
    """Make ``path`` an IR dump directory: absent, empty or an earlier dump (whose levels go)."""
    import json
    import shutil

    from neurocompile.utils.outputs import claim_output, marker

    claim_output(path, "ir-dump")
    path.mkdir(parents=True, exist_ok=True)
    name, content = marker("ir-dump")
    for child in path.iterdir():
        if child.is_dir() and not child.is_symlink() and child.name[:2].isdigit() and child.name[2:3] == "-":
            shutil.rmtree(child)               # a level of the earlier dump (ours: the marker says so)
    (path / name).write_text(json.dumps(content) + "\n")
