"""The intermediate graph: node types with their equations (:mod:`.nodes`), the graph
(:mod:`.graph`), its files (:mod:`.serialize`), the float semantics of every op
(:mod:`.semantics`) and the interpreter that runs a graph with them (:mod:`.interpreter`)."""
from neurocompile.ir.graph import Graph, sequential

__all__ = ["Graph", "sequential"]
