"""The Python API: load a model, compile it for a target, run it."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from neurocompile.frontends.loader import load_model as _load
from neurocompile.ir.graph import Graph
from neurocompile.ir.interpreter import RunResult
from neurocompile.passes.base import FRONTEND_OPTIONS
from neurocompile.targets.artifact import Artifact, is_artifact, load_artifact
from neurocompile.targets.registry import get_target


def load_model(source: Any, **options) -> Graph:
    """A Graph from a path (.nir, .onnx, a saved graph or artifact directory), a spec string
    (``zoo:digits``, ``file.py:factory``) or a ``torch.nn.Module`` (needs ``input_shape=``)."""
    if isinstance(source, (str, Path)) and is_artifact(source):
        return load_artifact(source).graph        # the manifest and payload are checked too
    return _load(source, **options)


def compile(model: Any, target: str = "float", *, log: Callable[[str], None] | None = None,
            dump_ir: str | Path | None = None, **options) -> Artifact:
    """Lower ``model`` (a Graph or anything ``load_model`` takes) for ``target``.

    A model read here gets the frontend options the target needs (an ONNX ANN for a chip: zero
    reset and spike input), unless ``options`` say otherwise."""
    tgt = get_target(target)
    graph = model if isinstance(model, Graph) else load_model(model, **model_options(model, target, options))
    # the input encoding is the frontend's (ONNX conversion) and the target's (chip input) alike
    compile_opts = {k: v for k, v in options.items() if k not in FRONTEND_OPTIONS or k == "input_encoding"}
    return tgt.compile(graph, options=compile_opts, log=log or (lambda m: None), dump_ir=dump_ir)


def model_options(model: Any, target: str, options: dict) -> dict:
    """The options to read ``model`` with for ``target``: the user's, plus the target's frontend
    defaults where the model is an ONNX ANN (the only frontend with target-dependent choices)."""
    keys = ("dt", "reset", "discretization", "convention", "input_shape", "weights", *sorted(FRONTEND_OPTIONS))
    opts = {k: options[k] for k in dict.fromkeys(keys) if options.get(k) is not None}
    if isinstance(model, (str, Path)) and str(model).endswith(".onnx"):
        if options.get("calibration") is not None:
            opts["calibration"] = options["calibration"]
        for k, v in get_target(target).frontend_defaults.items():
            opts.setdefault(k, v)
    return opts


def run(artifact: Artifact | str | Path, x: np.ndarray, *, probes=(), record_spikes: bool = True,
        on: str | None = None, progress: Callable[[int, int], None] | None = None) -> RunResult:
    """Run a compiled artifact on input ``x`` ((T, batch, *shape) or (T, *shape)).

    ``on`` picks where: by default the artifact's own target on its default runner (the
    emulator); ``on=<the artifact's target>`` means the real chip (``spinnaker``: the board in
    ~/.spynnaker.cfg; ``loihi2``: Lava's Loihi2HwCfg); ``on="lava"`` Lava's CPU models.
    """
    if not isinstance(artifact, Artifact):
        artifact = load_artifact(artifact)
    target = get_target(artifact.target)
    runner = target.runner(on)
    return runner.run(artifact, x, probes=probes, record_spikes=record_spikes, progress=progress)


__all__ = ["load_model", "compile", "run", "is_artifact"]
