"""neurocompile: compile trained spiking neural networks for neuromorphic hardware.

The Python API in one place::

    import neurocompile as nc
    graph = nc.load_model("model.nir")              # or an snnTorch module via nc.from_snntorch
    art = nc.compile(graph, target="float")         # "emulator"/"loihi2", "spinnaker", ...
    result = nc.run(art, x)                         # x: (T, batch, *input_shape)
"""
__version__ = "0.1.0"

from .api import compile, load_model, run  # noqa: E402,F401  (re-exported API)
