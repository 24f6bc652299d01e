"""Versioned serialization of a Graph: ``graph.json`` (structure, scalars) + ``graph.npz`` (arrays).

No pickles: arrays load with ``allow_pickle=False``; node types are looked up by op name in
``NODE_TYPES``. ``FORMAT_VERSION`` goes up when the meaning of a field changes; older files are
read by the migrations in ``_upgrade``.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from neurocompile.errors import NeuroCompileError
from neurocompile.utils.atomic import load_npz, write_json, write_npz
from neurocompile.ir.graph import Graph
from neurocompile.ir.nodes import NODE_TYPES

FORMAT = "neurocompile.graph"
FORMAT_VERSION = 1


def graph_to_dict(graph: Graph) -> tuple[dict, dict[str, np.ndarray]]:
    """Split a graph into a JSON-able dict and a dict of arrays (keys ``node/field``)."""
    arrays: dict[str, np.ndarray] = {}
    nodes = []
    for name, node in graph.nodes.items():
        attrs, refs = {}, {}
        for f in dataclasses.fields(node):
            value = getattr(node, f.name)
            if isinstance(value, np.ndarray):
                key = f"{name}/{f.name}"
                arrays[key] = value
                refs[f.name] = key
            elif isinstance(value, tuple):
                attrs[f.name] = list(value)
            else:
                attrs[f.name] = value
        nodes.append({"name": name, "op": type(node).op, "attrs": attrs, "arrays": refs})
    doc = {
        "format": FORMAT, "version": FORMAT_VERSION,
        "dt": graph.dt, "discretization": graph.discretization,
        "nodes": nodes, "edges": [list(e) for e in graph.edges],
        "assumptions": graph.assumptions, "metadata": graph.metadata,
    }
    return doc, arrays


def graph_from_dict(doc: dict, arrays: dict[str, np.ndarray], source: str = "graph") -> Graph:
    doc = _upgrade(doc, source)
    g = Graph(dt=doc.get("dt"), discretization=doc.get("discretization", "euler"),
              assumptions=list(doc.get("assumptions", [])), metadata=dict(doc.get("metadata", {})))
    for entry in doc["nodes"]:
        name, op = entry["name"], entry["op"]
        cls = NODE_TYPES.get(op)
        if cls is None:
            raise NeuroCompileError(f"unknown op '{op}'", file=source, node=name)
        kwargs = dict(entry.get("attrs", {}))
        for field, key in entry.get("arrays", {}).items():
            if key not in arrays:
                raise NeuroCompileError(f"array '{key}' is missing from the npz", file=source, node=name)
            kwargs[field] = arrays[key]
        try:
            g.add(name, cls(**kwargs))
        except TypeError as err:
            raise NeuroCompileError(f"bad fields for {op}: {err}", file=source, node=name) from None
    g.edges = [tuple(e) for e in doc["edges"]]
    return g


def _upgrade(doc: dict, source: str) -> dict:
    if doc.get("format") != FORMAT:
        raise NeuroCompileError(f"not a neurocompile graph (format {doc.get('format')!r})", file=source)
    version = doc.get("version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise NeuroCompileError(
            f"graph format version {version} is newer than this neurocompile reads ({FORMAT_VERSION})",
            file=source)
    return doc


def save_graph(graph: Graph, directory: str | Path, stem: str = "graph") -> None:
    directory = Path(directory)
    doc, arrays = graph_to_dict(graph)
    write_npz(directory / f"{stem}.npz", arrays)
    write_json(directory / f"{stem}.json", doc)


def load_graph(directory: str | Path, stem: str = "graph") -> Graph:
    directory = Path(directory)
    jpath = directory / f"{stem}.json"
    try:
        doc = json.loads(jpath.read_text())
        arrays = load_npz(directory / f"{stem}.npz")
    except FileNotFoundError as err:
        raise NeuroCompileError(f"missing {Path(err.filename).name}", file=str(directory)) from None
    except (json.JSONDecodeError, ValueError, OSError) as err:
        raise NeuroCompileError(f"cannot read the graph: {err}", file=str(jpath)) from None
    return graph_from_dict(doc, arrays, source=str(jpath))
