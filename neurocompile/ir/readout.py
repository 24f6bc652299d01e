"""Turning a run's output into class predictions, the same way everywhere (CLI, validate)."""
from __future__ import annotations

import numpy as np

from neurocompile.ir.graph import Graph


def output_is_spiking(graph: Graph, output: str | None = None) -> bool:
    """True when the Output node is fed by a spiking node (spike counts decide the class)."""
    output = output or graph.outputs[0]
    preds = graph.predecessors(output)
    return bool(preds) and all(graph.nodes[p].spiking or graph.nodes[p].graded for p in preds)


def predict(graph: Graph, out: np.ndarray) -> np.ndarray:
    """(T, B, *shape) output -> (B,) class indices.

    Spiking outputs: argmax of the spike count over time (ties go to the lowest index); graded
    (sigma-delta) outputs: argmax of the sum of messages, which is the decoded value.
    Non-spiking readouts (Integrator, LI): argmax of the value at the last step.
    """
    B = out.shape[1]
    if output_is_spiking(graph):
        scores = out.sum(axis=0)
    else:
        scores = out[-1]
    return scores.reshape(B, -1).argmax(axis=1)
