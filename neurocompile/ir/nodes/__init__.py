"""The node types of the intermediate graph. ``NODE_TYPES`` maps op names to classes."""
from neurocompile.ir.nodes.base import NODE_TYPES, Node, Shape
from neurocompile.ir.nodes.neurons import (
    COMPARISONS,
    DISCRETIZATIONS,
    IF,
    LI,
    LIF,
    NEURON_TYPES,
    RESET_MODES,
    CubaLI,
    CubaLIF,
    Integrator,
    Threshold,
    decay_factor,
)
from neurocompile.ir.nodes.sigma_delta import Delta, SigmaDelta
from neurocompile.ir.nodes.structure import AvgPool2d, Delay, Flatten, Identity, Input, MaxPool2d, Output, SumPool2d
from neurocompile.ir.nodes.synapses import Affine, Conv1d, Conv2d, Linear, Scale

__all__ = [
    "NODE_TYPES", "Node", "Shape", "CubaLI", "CubaLIF", "IF", "LI", "LIF", "Integrator",
    "Threshold", "NEURON_TYPES", "decay_factor", "COMPARISONS", "DISCRETIZATIONS", "RESET_MODES",
    "AvgPool2d", "Delay", "Flatten", "Identity", "Input", "MaxPool2d", "Output", "SumPool2d",
    "Affine", "Conv1d", "Conv2d", "Linear", "Scale", "Delta", "SigmaDelta",
]
