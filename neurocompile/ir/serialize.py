"""Versioned serialization of a Graph: ``graph.json`` (structure, scalars) + ``graph.npz`` (arrays).

No pickles: arrays load with ``allow_pickle=False``; node types are looked up by op name in
``NODE_TYPES``. ``FORMAT_VERSION`` goes up when the meaning of a field changes; older files are
read by the migrations in ``_upgrade``.
"""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np

from neurocompile.errors import NeuroCompileError
from neurocompile.ir.graph import Graph
from neurocompile.ir.nodes import NODE_TYPES
from neurocompile.utils.atomic import load_npz, write_json, write_npz
from neurocompile.utils.files import read_text

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
    check_doc(doc, source)
    g = Graph(dt=doc.get("dt"), discretization=doc.get("discretization", "euler"),
              assumptions=list(doc.get("assumptions", [])), metadata=dict(doc.get("metadata", {})))
    for i, entry in enumerate(doc["nodes"]):
        name, op = entry["name"], entry["op"]
        cls = NODE_TYPES.get(op)
        if cls is None:
            raise NeuroCompileError(f"field 'nodes[{i}].op': unknown op '{op}'", file=source, node=name)
        kwargs = dict(entry.get("attrs", {}))
        for field, key in entry.get("arrays", {}).items():
            if key not in arrays:
                raise NeuroCompileError(f"array '{key}' is missing from the npz", file=source, node=name)
            arr = arrays[key]
            if arr.dtype.kind not in "biuf":
                raise NeuroCompileError(f"array '{key}' has dtype {arr.dtype} (expected bool, integer or float)",
                                        file=source, node=name)
            kwargs[field] = arr
        try:
            node = cls(**kwargs)
        except (TypeError, ValueError) as err:
            raise NeuroCompileError(f"bad fields for {op}: {_one_line(err)}", file=source, node=name) from None
        if name in g.nodes:
            raise NeuroCompileError(f"field 'nodes[{i}].name': a node of this name already exists",
                                    file=source, node=name)
        g.add(name, node)
    for i, (s, d) in enumerate(doc["edges"]):
        for end in (s, d):
            if end not in g.nodes:
                raise NeuroCompileError(f"field 'edges[{i}]': edge {s} -> {d} refers to node '{end}', which "
                                        f"does not exist", file=source)
    g.edges = [tuple(e) for e in doc["edges"]]
    return g


def _one_line(err: Exception) -> str:
    return " ".join(str(err).split())[:300] or type(err).__name__


def _field_error(source: str, field: str, want: str, value) -> NeuroCompileError:
    return NeuroCompileError(f"field '{field}' must be {want}, got {type(value).__name__}", file=source)


def check_doc(doc, source: str) -> None:
    """The structure of a ``graph.json`` document; each failure names the file and the field."""
    if "dt" in doc and doc["dt"] is not None:
        dt = doc["dt"]
        if isinstance(dt, bool) or not isinstance(dt, (int, float)):
            raise _field_error(source, "dt", "a number or null", dt)
        if not (math.isfinite(dt) and dt > 0):
            raise NeuroCompileError(f"field 'dt' must be a finite time step > 0, got {dt}", file=source)
    for field, types, want in (("discretization", (str,), "a string"), ("assumptions", (list,), "a list"),
                               ("metadata", (dict,), "an object"), ("nodes", (list,), "a list"),
                               ("edges", (list,), "a list")):
        if field in ("nodes", "edges") and field not in doc:
            raise NeuroCompileError(f"field '{field}' is missing", file=source)
        if field in doc and not isinstance(doc[field], types):
            raise _field_error(source, field, want, doc[field])
    if not all(isinstance(a, str) for a in doc.get("assumptions", [])):
        raise NeuroCompileError("field 'assumptions' must be a list of strings", file=source)
    for i, entry in enumerate(doc["nodes"]):
        where = f"nodes[{i}]"
        if not isinstance(entry, dict):
            raise _field_error(source, where, "an object", entry)
        for field in ("name", "op"):
            if not isinstance(entry.get(field), str) or not entry[field]:
                raise NeuroCompileError(f"field '{where}.{field}' must be a non-empty string, got "
                                        f"{entry.get(field)!r}"[:300], file=source)
        for field in ("attrs", "arrays"):
            if field in entry and not isinstance(entry[field], dict):
                raise _field_error(source, f"{where}.{field}", "an object", entry[field])
        if not all(isinstance(v, str) for v in entry.get("arrays", {}).values()):
            raise NeuroCompileError(f"field '{where}.arrays' must map fields to array names", file=source)
    for i, edge in enumerate(doc["edges"]):
        if not (isinstance(edge, list) and len(edge) == 2 and all(isinstance(e, str) for e in edge)):
            raise NeuroCompileError(f"field 'edges[{i}]' must be a pair of node names, got {edge!r}"[:300],
                                    file=source)


def _upgrade(doc: dict, source: str) -> dict:
    if not isinstance(doc, dict):
        raise NeuroCompileError(f"the graph must be a JSON object, not {type(doc).__name__}", file=source)
    if doc.get("format") != FORMAT:
        raise NeuroCompileError(f"not a neurocompile graph (format {doc.get('format')!r})", file=source)
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise NeuroCompileError(f"field 'version' must be a format version >= 1, got {version!r}", file=source)
    if version > FORMAT_VERSION:
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
    """Read ``<stem>.json`` + ``<stem>.npz`` from ``directory`` and validate the graph.

    Both must be regular files; the JSON is checked by :func:`check_doc`, the npz headers against
    the file and the memory budget (:mod:`neurocompile.utils.npfiles`); the graph must pass
    ``Graph.validate``. Every failure is a NeuroCompileError naming the file.
    """
    directory = Path(directory)
    jpath = directory / f"{stem}.json"
    try:
        doc = json.loads(read_text(jpath, "graph file", limit=256 << 20))
    except json.JSONDecodeError as err:
        raise NeuroCompileError(f"cannot read the graph: {err}", file=str(jpath)) from None
    except RecursionError:
        raise NeuroCompileError("cannot read the graph: nested too deeply", file=str(jpath)) from None
    arrays = load_npz(directory / f"{stem}.npz")
    g = graph_from_dict(doc, arrays, source=str(jpath))
    try:
        g.validate()
    except NeuroCompileError as err:
        raise err.with_context(file=str(jpath))
    except (TypeError, ValueError, AttributeError, IndexError, KeyError, ZeroDivisionError, OverflowError) as err:
        raise NeuroCompileError(f"the graph is invalid: {type(err).__name__}: {_one_line(err)}",
                                file=str(jpath)) from None
    return g
