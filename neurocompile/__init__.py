"""neurocompile: compile trained spiking neural networks for neuromorphic hardware.

The Python API in one place::

    import neurocompile as nc
    graph = nc.load_model("model.nir")              # or nc.load_model(module, input_shape=(64,))
    art = nc.compile(graph, target="float")         # "emulator"/"loihi2", "spinnaker", ...
    result = nc.run(art, x)                         # x: (T, batch, *input_shape)

snnTorch modules can also be imported directly with
``neurocompile.frontends.snntorch.from_snntorch``. Where things live: ``docs/architecture.md``.
"""
from neurocompile import _compat
from neurocompile._version import __version__

_compat.install()

from neurocompile.api import compile, load_model, run  # noqa: E402  (re-exported API)

__all__ = ["compile", "load_model", "run", "__version__"]
