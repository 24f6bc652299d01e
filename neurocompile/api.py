"""The Python API: load a model, compile it for a target, run it."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from neurocompile.targets.artifact import Artifact, is_artifact, load_artifact
from neurocompile.ir.graph import Graph
from neurocompile.ir.interpreter import RunResult


def load_model(source: Any, **options) -> Graph:
    """A Graph from a path (.nir, .onnx, a saved graph or artifact directory), a spec string
    (``zoo:digits``, ``file.py:factory``) or a ``torch.nn.Module`` (needs ``input_shape=``)."""
    from neurocompile.frontends.loader import load_model as _load

    return _load(source, **options)


def compile(model: Any, target: str = "float", *, log: Callable[[str], None] | None = None,
            dump_ir: str | Path | None = None, **options) -> Artifact:
    """Lower ``model`` (a Graph or anything ``load_model`` takes) for ``target``."""
    from neurocompile.targets.registry import get_backend

    graph = model if isinstance(model, Graph) else load_model(model, **_load_options(options))
    backend = get_backend(target)
    return backend.compile(graph, options=options, log=log or (lambda m: None), dump_ir=dump_ir)


def _load_options(options: dict) -> dict:
    keys = ("dt", "reset", "discretization", "input_shape", "weights", "calibration")
    return {k: options[k] for k in keys if options.get(k) is not None}


def run(artifact: Artifact | str | Path, x: np.ndarray, *, probes=(), record_spikes: bool = True,
        on: str | None = None, progress: Callable[[int, int], None] | None = None) -> RunResult:
    """Run a compiled artifact on input ``x`` ((T, batch, *shape) or (T, *shape)).

    ``on`` picks where: by default the artifact's own target on its default runner (the
    emulator); ``on=<the artifact's target>`` means the real chip (``spinnaker``: the board in
    ~/.spynnaker.cfg; ``loihi2``: Lava's Loihi2HwCfg); ``on="lava"`` Lava's CPU models.
    """
    from neurocompile.targets.registry import get_backend

    if not isinstance(artifact, Artifact):
        artifact = load_artifact(artifact)
    backend = get_backend(on or artifact.target)
    kw = dict(probes=probes, record_spikes=record_spikes, progress=progress)
    if on is not None and on == artifact.target and hasattr(backend, "run_on_chip"):
        return backend.run_on_chip(artifact, x, **kw)  # naming the target explicitly means the chip
    return backend.run(artifact, x, **kw)


__all__ = ["load_model", "compile", "run", "is_artifact"]
