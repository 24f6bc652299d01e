"""The float reference target: the graph itself, run in float64 by the interpreter."""
from __future__ import annotations

from neurocompile.ir import interpreter
from neurocompile.targets.base import Runner, Target


class ReferenceRunner(Runner):
    name = "reference"
    description = "float64 interpreter of the graph (its exact semantics)"

    def run(self, artifact, x, *, probes=(), record_spikes=True, progress=None):
        return interpreter.run(artifact.graph, x, probes=probes, record_spikes=record_spikes, progress=progress)


class FloatTarget(Target):
    name = "float"
    description = "float64 reference executor (the graph's exact semantics; no quantization)"
    runners = {"reference": ReferenceRunner()}
    default_runner = "reference"


FloatBackend = FloatTarget   # the name of the first releases
