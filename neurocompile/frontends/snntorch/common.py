"""What the snnTorch frontend's parts share: lazy imports and the layer tables."""
from __future__ import annotations

from neurocompile.errors import NeuroCompileError

#: snnTorch state attribute names each neuron type keeps between steps (forward argument order).
_STATE_NAMES = {"Leaky": ("mem",), "Synaptic": ("syn", "mem"), "RLeaky": ("spk", "mem"),
                "RSynaptic": ("spk", "syn", "mem")}


def _libs():
    """torch, torch.nn and snntorch, imported on first use."""
    try:
        import torch
        from torch import nn
    except ImportError as err:
        raise NeuroCompileError(
            "snnTorch models need torch and snntorch (pip install 'neurocompile[torch]')") from err
    try:
        import snntorch as snn
    except ImportError as err:
        raise NeuroCompileError(
            "snnTorch models need the snntorch package (pip install 'neurocompile[torch]')") from err
    return torch, nn, snn


def _neuron_types(snn) -> dict:
    return {snn.Leaky: "Leaky", snn.Synaptic: "Synaptic", snn.RLeaky: "RLeaky",
            snn.RSynaptic: "RSynaptic"}


def _is_skipped(layer, nn) -> bool:
    return isinstance(layer, (nn.Identity, nn.modules.dropout._DropoutNd))


def _is_known(layer, nn, snn) -> bool:
    if type(layer) in _neuron_types(snn):
        return True
    return isinstance(layer, (nn.Linear, nn.Conv2d, nn.AvgPool2d, nn.MaxPool2d, nn.Flatten,
                              nn.BatchNorm1d, nn.BatchNorm2d)) or _is_skipped(layer, nn)
