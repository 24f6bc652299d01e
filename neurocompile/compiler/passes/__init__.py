"""Graph passes. ``NORMALIZE`` is the target-independent prefix of every pipeline."""
from .base import Pass, PassContext, Pipeline
from .normalize import NORMALIZE, RemoveIdentity, SetTimeStep

__all__ = ["Pass", "PassContext", "Pipeline", "NORMALIZE", "RemoveIdentity", "SetTimeStep"]
