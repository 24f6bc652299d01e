"""Graph passes. ``NORMALIZE`` is the target-independent prefix of every pipeline."""
from neurocompile.passes.base import CompileOptions, Lowering, Pass, PassContext, Pipeline
from neurocompile.passes.normalize import NORMALIZE, RemoveIdentity, SetTimeStep

__all__ = ["CompileOptions", "Lowering", "Pass", "PassContext", "Pipeline", "NORMALIZE", "RemoveIdentity",
           "SetTimeStep"]
