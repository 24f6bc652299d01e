"""Turn whatever the user names into a Graph.

* ``*.nir``: a NIR file (``dt``, ``reset``, ``discretization`` options apply);
* ``*.onnx``: an ONNX ANN, converted to a spiking network;
* ``*.net``: a lava-dl netx network (SLAYER's HDF5 export; Loihi integers kept exactly);
* a directory holding ``graph.json`` (a saved graph) or ``manifest.json`` (an artifact);
* ``zoo:NAME``: a model shipped with neurocompile (``zoo:digits``, ``zoo:digits-conv``);
* ``path/to/file.py:factory`` or ``package.module:factory``: an snnTorch ``nn.Module`` (or a
  function returning one), with ``weights=`` a state-dict file and ``input_shape=``;
* a ``torch.nn.Module`` object (Python API), with ``input_shape=``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from neurocompile.errors import NeuroCompileError
from neurocompile.ir.graph import Graph

ZOO = {"digits": "neurocompile.zoo.digits", "digits-conv": "neurocompile.zoo.digits_conv"}


def load_model(source: Any, *, dt: float | None = None, reset: str | None = None,
               discretization: str | None = None, convention: str | None = None,
               input_shape=None, weights: str | None = None,
               calibration=None, input_encoding: str | None = None, readout: str | None = None) -> Graph:
    if isinstance(source, Graph):
        return source
    if not isinstance(source, (str, Path)):
        from neurocompile.frontends.snntorch import from_snntorch

        if input_shape is None:
            raise NeuroCompileError("an snnTorch module needs input_shape=(...) (one sample, no batch)")
        return from_snntorch(source, input_shape=tuple(input_shape), **({"dt": dt} if dt else {}))
    text = str(source)
    path = Path(text)
    if text.startswith("zoo:"):
        return _zoo(text[4:])
    if path.suffix in (".nir", ".onnx", ".net"):
        from neurocompile.frontends.lfs import refuse_lfs_pointer

        refuse_lfs_pointer(path)
    if path.suffix == ".net":
        from neurocompile.frontends.netx import read_netx

        return read_netx(path)
    if path.suffix == ".nir":
        from neurocompile.frontends.nir import read_nir

        return read_nir(path, dt=dt, reset=reset, discretization=discretization, convention=convention)
    if path.suffix == ".onnx":
        from neurocompile.frontends.onnx import from_onnx  # provided by the ONNX frontend

        kw = {k: v for k, v in dict(calibration=calibration, reset=reset, input_encoding=input_encoding,
                                    readout=readout).items() if v is not None}
        return from_onnx(path, **kw)
    if path.is_dir():
        if os.path.lexists(path / "graph.json"):   # a saved graph, or an artifact (api.load_model checks those)
            from neurocompile.ir.serialize import load_graph

            return load_graph(path)
        raise NeuroCompileError("directory holds neither graph.json nor manifest.json", file=text)
    if ":" in text and not path.exists():
        from neurocompile.frontends.snntorch import from_snntorch, load_snntorch_reference

        module = load_snntorch_reference(text, weights)
        shape = input_shape or getattr(module, "input_shape", None)
        if shape is None:
            raise NeuroCompileError("give --input-shape for an snnTorch model (one sample, no batch)", file=text)
        return from_snntorch(module, input_shape=tuple(shape), **({"dt": dt} if dt else {}))
    if not path.exists():
        raise NeuroCompileError("no such file", file=text)
    raise NeuroCompileError(
        "unknown model format (expected .nir, .onnx, .net, a graph/artifact directory, zoo:NAME or file.py:factory)",
        file=text)


def _zoo(name: str) -> Graph:
    import importlib

    if name not in ZOO:
        raise NeuroCompileError(f"no shipped model '{name}' (available: {', '.join(ZOO)})")
    return importlib.import_module(ZOO[name]).load_graph()
