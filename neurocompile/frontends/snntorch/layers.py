"""Collecting an snnTorch network's leaf layers, in definition order."""
from __future__ import annotations

from typing import Any

from neurocompile.errors import UnsupportedError
from neurocompile.frontends.snntorch.common import _is_known


def _collect_leaves(module, nn, snn) -> tuple[list[tuple[str, Any]], bool]:
    """Leaf layers in definition order, and whether every container is an ``nn.Sequential``
    (then the chain is what the containers' forward does, no check needed)."""
    if _is_known(module, nn, snn):
        return [(type(module).__name__.lower(), module)], True
    leaves: list[tuple[str, Any]] = []
    plain = True
    seen: dict[int, str] = {}

    def walk(mod, prefix):
        nonlocal plain
        if not (isinstance(mod, nn.Sequential) and type(mod).forward is nn.Sequential.forward):
            plain = False
        own = [n for n, _ in mod.named_parameters(recurse=False)] + \
              [n for n, _ in mod.named_buffers(recurse=False)]
        if own:
            raise UnsupportedError(
                f"{type(mod).__name__} holds its own tensors ({', '.join(own)}) that its forward may "
                "use; only layers listed in neurocompile.frontends.snntorch are read",
                node=prefix or type(mod).__name__)
        for name, child in mod._modules.items():
            qual = f"{prefix}.{name}" if prefix else name
            if child is None:
                continue
            if id(child) in seen:
                raise UnsupportedError(
                    f"the same {type(child).__name__} object is used twice (as '{seen[id(child)]}' "
                    "and here); shared layers are not supported", node=qual)
            seen[id(child)] = qual
            if _is_known(child, nn, snn):
                leaves.append((qual, child))
            elif isinstance(child, snn.SpikingNeuron) or isinstance(child, nn.Module) and not list(child.children()):
                raise UnsupportedError(
                    f"layer type {type(child).__module__}.{type(child).__name__} is not supported "
                    "(supported: nn.Linear, nn.Conv2d, nn.AvgPool2d, nn.MaxPool2d, nn.Flatten, "
                    "nn.BatchNorm1d/2d (folded), "
                    "nn.Identity, nn.Dropout, snn.Leaky, snn.Synaptic, snn.RLeaky, snn.RSynaptic)",
                    node=qual)
            else:
                walk(child, qual)

    walk(module, "")
    if not leaves:
        raise UnsupportedError(f"{type(module).__name__} has no layers")
    return leaves, plain
