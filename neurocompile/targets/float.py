"""The float reference target: the graph itself, run in float64 by the reference executor."""
from __future__ import annotations

from neurocompile.ir import interpreter as reference
from neurocompile.targets.base import Backend


class FloatBackend(Backend):
    name = "float"
    description = "float64 reference executor (the graph's exact semantics; no quantization)"

    def run(self, artifact, x, *, probes=(), record_spikes=True, progress=None):
        return reference.run(artifact.graph, x, probes=probes, record_spikes=record_spikes, progress=progress)
