"""What a target plugin provides: a compile pipeline down to its program, and named runners.

A target is a class registered under the entry-point group ``neurocompile.backends``
(``name = "package.module:ClassName"``); neurocompile imports it only when it is used. It has

* ``name``, ``description`` and ``family`` (the artifact kind; targets of one family, such as
  ``loihi2``, ``emulator`` and ``lava``, share their artifacts and runners);
* ``Options``: a :class:`~neurocompile.passes.base.CompileOptions` subclass (its fields are the
  target's compile options);
* ``passes(options)``: the graph passes, then the lowering to the target's program and any
  program steps (partition), one named step a line; the pipeline verifies and dumps each level;
* ``payload(graph, last_level, ctx)``: what the artifact keeps beside the graph;
  ``save_payload`` / ``load_payload``;
* ``runners``: ``{name: Runner}``; ``default_runner`` is used when nothing is asked for, and
  ``chip_runner`` when a user names the target itself (``--on loihi2`` means the chip);
* ``frontend_defaults``: options the target needs from a frontend (ONNX on a chip: zero reset,
  spike input), applied by ``compile`` and ``validate`` alike.

A runner turns an artifact and an input into a :class:`~neurocompile.ir.interpreter.RunResult`
on the float graph's time base. ``exact`` runners of one family must agree bit for bit, and
``validate`` compares them so.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, ClassVar

from neurocompile.errors import BackendError, NeuroCompileError
from neurocompile.ir.graph import Graph
from neurocompile.ir.interpreter import RunResult
from neurocompile.passes import NORMALIZE, CompileOptions, PassContext, Pipeline
from neurocompile.targets.artifact import Artifact


class Runner:
    """Where an artifact runs. Subclasses set the class attributes and implement ``run``."""

    name: ClassVar[str] = "runner"
    description: ClassVar[str] = ""
    #: bit-accurate: every exact runner of a family gives the same spikes and states
    exact: ClassVar[bool] = False
    #: real hardware (``neurocompile targets`` shows whether it is reachable)
    chip: ClassVar[bool] = False

    def available(self) -> tuple[bool, str]:
        return True, "runs here"

    def run(self, artifact: Artifact, x, *, probes=(), record_spikes: bool = True,
            progress: Callable[[int, int], None] | None = None) -> RunResult:  # pragma: no cover
        raise NotImplementedError


class Target:
    name: ClassVar[str] = "base"
    description: ClassVar[str] = ""
    family: ClassVar[str | None] = None           # None: the target's own name
    Options: ClassVar[type[CompileOptions]] = CompileOptions
    runners: ClassVar[dict[str, Runner]] = {}
    default_runner: ClassVar[str] = ""
    chip_runner: ClassVar[str | None] = None
    frontend_defaults: ClassVar[dict[str, Any]] = {}

    @classmethod
    def kind(cls) -> str:
        return cls.family or cls.name

    # -- compiling ----------------------------------------------------------------------------
    def passes(self, options: CompileOptions) -> list:
        return list(NORMALIZE)

    def payload(self, graph: Graph, last: Any, ctx: PassContext) -> Any:
        """What the artifact keeps beside the graph, from the pipeline's last level."""
        return None

    def compile(self, graph: Graph, *, options: dict | CompileOptions | None = None,
                log: Callable[[str], None] = lambda m: None, dump_ir: str | Path | None = None) -> Artifact:
        opts = self.Options.from_dict(options, self.name)
        ctx = PassContext(target=self.name, options=opts, log=log)
        pipe = Pipeline(self.passes(opts), verify=True, dump_dir=Path(dump_ir) if dump_ir else None)
        last = pipe.run(graph, ctx)
        lowered = last if isinstance(last, Graph) else last.graph
        return Artifact(target=self.name, graph=lowered, report=ctx.report,
                        payload=self.payload(lowered, last, ctx))

    def save_payload(self, payload: Any, directory: Path) -> None:
        return None

    def load_payload(self, directory: Path) -> Any:
        return None

    # -- running ------------------------------------------------------------------------------
    def available(self) -> tuple[bool, str]:
        """Whether the default runner can run here (compiling never needs the hardware)."""
        return self.runner(None).available()

    def chip_status(self) -> tuple[bool, str] | None:
        """Whether the real chip behind this target is reachable; None when it has none."""
        if self.chip_runner is None:
            return None
        return self.runners[self.chip_runner].available()

    def runner(self, on: str | None) -> Runner:
        """The runner ``on`` names for this target's artifacts: a runner name, the target's own name
        or family (the chip), or another registered target of the same family (its default)."""
        if on is None:
            return self.runners[self.default_runner]
        if on in self.runners:
            return self.runners[on]
        if on in (self.name, self.kind()) and self.chip_runner:
            return self.runners[self.chip_runner]
        from neurocompile.targets.registry import get_backend

        try:
            other = get_backend(on)
        except BackendError:
            other = None
        if other is not None and other.kind() == self.kind():
            if on == other.kind() and other.chip_runner:
                return other.runners[other.chip_runner]
            return other.runners[other.default_runner]
        raise NeuroCompileError(f"a '{self.name}' artifact cannot run on '{on}' (runners: "
                                f"{', '.join(self.runners)}" + (f"; '{self.kind()}' means the chip"
                                                                if self.chip_runner else "") + ")")

    def run(self, artifact: Artifact, x, *, probes=(), record_spikes=True, progress=None,
            on: str | None = None) -> RunResult:
        return self.runner(on).run(artifact, x, probes=probes, record_spikes=record_spikes, progress=progress)


#: the name the first releases used; third-party plugins may still subclass it
Backend = Target
