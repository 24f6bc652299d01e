"""Graph passes. ``NORMALIZE`` is the target-independent prefix of every pipeline."""
from neurocompile.passes.base import Pass, PassContext, Pipeline
from neurocompile.passes.normalize import NORMALIZE, RemoveIdentity, SetTimeStep

__all__ = ["Pass", "PassContext", "Pipeline", "NORMALIZE", "RemoveIdentity", "SetTimeStep"]
