"""The intermediate graph, its serialization and the passes that transform it."""
from .graph import Graph, sequential

__all__ = ["Graph", "sequential"]
