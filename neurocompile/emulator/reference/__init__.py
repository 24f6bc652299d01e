"""The float64 reference executor (the meaning of the graph, used as the oracle for targets)."""
from .executor import RunResult, run

__all__ = ["RunResult", "run"]
