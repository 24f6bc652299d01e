"""Import snnTorch networks: the frontend lives in :mod:`neurocompile.models.snntorch` (its
docstring states snnTorch's forward equations and how they map to the graph)."""
from .snntorch import from_snntorch, load_snntorch_reference

__all__ = ["from_snntorch", "load_snntorch_reference"]
