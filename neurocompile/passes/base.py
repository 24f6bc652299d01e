"""Passes, options and the pipeline that runs them level by level.

A step is a small frozen dataclass with a ``name`` and ``run(value, ctx) -> value`` whose fields
are its arguments. Graph passes take and return a :class:`~neurocompile.ir.graph.Graph` (never
mutating arrays they were given); a target's lowering takes the final graph and returns its
program, and later steps (partition) take the program. Every level, graph or program, offers
``validate()`` (raises on a malformed value) and is written by ``--dump-ir``: a graph as
``graph.json``/``graph.npz`` + ``summary.txt``, any other level through its ``dump(directory)``.

Options are a typed dataclass (:class:`CompileOptions`, extended by each target); the pipeline
reads nothing else. A report (``ctx.report``) collects what steps want to tell the user.
"""
from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any, Callable, ClassVar, Sequence

from neurocompile.errors import NeuroCompileError
from neurocompile.ir.graph import Graph
from neurocompile.ir.serialize import save_graph
from neurocompile.utils.outputs import claim_output, marker

#: options that belong to the frontends (reading the model), passed through compile untouched
FRONTEND_OPTIONS = frozenset({"reset", "convention", "input_shape", "weights", "input_encoding", "readout", "method",
                              "timesteps", "percentile", "input_range", "strict"})


@dataclasses.dataclass(frozen=True)
class CompileOptions:
    """Options every target understands. Targets extend this with their own fields."""

    #: time step in seconds (None: the graph's own, or an error when time constants need one)
    dt: float | None = None
    #: "euler" or "exact" (None: the graph's own)
    discretization: str | None = None
    #: sample inputs (T, batch, *shape) for activity statistics (fixed-point scales)
    calibration: Any = None
    #: how a chip receives the input: "spikes" (0/1) or "current" (direct analog values);
    #: None: "current" when the calibration samples are not all 0/1 (``targets.input_encoding``)
    input_encoding: str | None = None

    @classmethod
    def from_dict(cls, options: dict | None, target: str = "") -> "CompileOptions":
        """The typed options from keyword arguments; unknown names are an error naming them."""
        if isinstance(options, cls):
            return options
        if isinstance(options, CompileOptions):
            options = {f.name: getattr(options, f.name) for f in dataclasses.fields(options)}
        options = dict(options or {})
        names = {f.name for f in dataclasses.fields(cls)}
        given = {k: v for k, v in options.items() if v is not None and v is not False}   # False: a flag not set
        unknown = sorted(k for k in given if k not in names and k not in FRONTEND_OPTIONS)
        if unknown:
            raise NeuroCompileError(f"unknown compile option(s) {unknown} for target '{target}' "
                                    f"(known: {', '.join(sorted(names))})")
        return cls(**{k: v for k, v in options.items() if k in names and v is not None})


@dataclasses.dataclass
class PassContext:
    """What steps share: the typed options, the log and the report that steps fill in."""

    target: str = "float"
    options: CompileOptions = dataclasses.field(default_factory=CompileOptions)
    report: dict[str, Any] = dataclasses.field(default_factory=dict)
    log: Callable[[str], None] = lambda msg: None


@dataclasses.dataclass(frozen=True)
class Pass:
    """A graph -> graph step."""

    name: ClassVar[str] = "pass"

    def run(self, graph: Graph, ctx: PassContext) -> Graph:  # pragma: no cover - interface
        raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class Lowering:
    """A graph -> program step (the target's lower level); later steps take the program."""

    name: ClassVar[str] = "lower"

    def run(self, graph: Graph, ctx: PassContext) -> Any:  # pragma: no cover - interface
        raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class Pipeline:
    passes: Sequence[Any]
    verify: bool = True
    dump_dir: Path | None = None

    def run(self, value: Any, ctx: PassContext | None = None) -> Any:
        """Run every step in order; verify and dump each level. Returns the last level."""
        ctx = ctx or PassContext()
        if self.verify:
            value.validate()
        self._dump(value, 0, "input")
        for i, p in enumerate(self.passes, start=1):
            ctx.log(f"pass {i}/{len(self.passes)}: {p.name}")
            value = p.run(value, ctx)
            if self.verify:
                try:
                    value.validate()
                except NeuroCompileError as err:
                    err.reason = f"after pass '{p.name}': {err.reason}"
                    raise
            self._dump(value, i, p.name)
        return value

    def _dump(self, value: Any, index: int, name: str) -> None:
        if self.dump_dir is None:
            return
        if index == 0:
            start_dump(Path(self.dump_dir))
        level = Path(self.dump_dir) / f"{index:02d}-{name}"
        if isinstance(value, Graph):
            save_graph(value, level)
            (level / "summary.txt").write_text(value.summary() + "\n")
        else:
            level.mkdir(parents=True, exist_ok=True)
            value.dump(level)


def start_dump(path: Path) -> None:
    """Make ``path`` an IR dump directory: absent, empty or an earlier dump (whose levels go)."""
    claim_output(path, "ir-dump")
    path.mkdir(parents=True, exist_ok=True)
    name, content = marker("ir-dump")
    for child in path.iterdir():
        if child.is_dir() and not child.is_symlink() and child.name[:2].isdigit() and child.name[2:3] == "-":
            shutil.rmtree(child)               # a level of the earlier dump (ours: the marker says so)
    (path / name).write_text(json.dumps(content) + "\n")
