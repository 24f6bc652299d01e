"""Which torch functions a network's ``forward`` calls between its layers (``F.max_pool2d``...).

The chain check sees layers only; a functional op in ``forward`` shows up as a chain whose
values do not match. :class:`FunctionalCalls` records the ops called outside every leaf layer so
that the error can name them and the layer that replaces each.
"""
from __future__ import annotations

#: harmless bookkeeping a forward may do between layers (shapes, state setup, containers)
_HARMLESS = {"size", "shape", "dim", "numel", "view", "reshape", "flatten", "__getitem__", "__get__",
             "zeros", "zeros_like", "ones_like", "empty", "empty_like", "stack", "cat", "detach", "clone",
             "to", "float", "double", "type", "contiguous", "__len__", "__iter__", "unbind", "squeeze",
             "unsqueeze", "is_floating_point", "requires_grad_", "__setitem__", "dtype", "device",
             "__format__", "__repr__", "__bool__", "item", "tolist", "append"}

_LAYER_FOR = {"max_pool2d": "nn.MaxPool2d", "avg_pool2d": "nn.AvgPool2d", "conv2d": "nn.Conv2d",
              "linear": "nn.Linear", "batch_norm": "nn.BatchNorm1d/2d", "dropout": "nn.Dropout",
              "flatten": "nn.Flatten"}


def make_recorder(torch, depth: list):
    """A TorchFunctionMode that records op names called while ``depth[0] == 0``."""
    from torch.overrides import TorchFunctionMode

    class FunctionalCalls(TorchFunctionMode):
        def __init__(self):
            super().__init__()
            self.names: list[str] = []

        def __torch_function__(self, func, types, args=(), kwargs=None):
            if depth[0] == 0:
                name = getattr(func, "__name__", str(func)).lstrip("_")
                if name.endswith("_with_indices"):
                    name = name[: -len("_with_indices")]
                if name not in _HARMLESS and name not in self.names:
                    self.names.append(name)
            return func(*args, **(kwargs or {}))

    return FunctionalCalls()


def describe(names: list[str]) -> str:
    """'; its forward also calls max_pool2d (use the layer nn.MaxPool2d) ...' or ''."""
    if not names:
        return ""
    parts = [f"{n} (declare the layer {_LAYER_FOR[n]} in __init__ and call it instead)" if n in _LAYER_FOR
             else n for n in names[:6]]
    return (f"; its forward also computes outside its layers: {', '.join(parts)}. Functional ops and "
            "arithmetic in forward are not read: only the chain of declared layers is")
