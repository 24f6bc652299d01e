"""The compiled artifact: a directory readable without the source model.

Layout::

    ARTIFACT/
      manifest.json   format, version, target, dt, input/output shapes, assumptions, report
      graph.json/npz  the lowered graph (float parameters; the reference semantics)
      <payload>/      whatever the target's backend adds (e.g. the Loihi 2 integer program)

The whole directory is written atomically.
"""
from __future__ import annotations

import dataclasses
import json
import os
import zipfile
from pathlib import Path
from typing import Any

from neurocompile._version import __version__
from neurocompile.errors import BackendError, NeuroCompileError
from neurocompile.ir.graph import Graph
from neurocompile.ir.serialize import load_graph, save_graph
from neurocompile.targets.registry import get_backend
from neurocompile.utils.atomic import atomic_path
from neurocompile.utils.budget import check_alloc
from neurocompile.utils.files import check_tree, read_text
from neurocompile.utils.npfiles import check_npz_file
from neurocompile.utils.outputs import claim_output

FORMAT = "neurocompile.artifact"
VERSION = 1


@dataclasses.dataclass
class Artifact:
    target: str
    graph: Graph
    report: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: target-specific objects, saved and loaded by the backend (``save_payload``/``load_payload``)
    payload: Any = None
    path: Path | None = None

    def manifest(self) -> dict:
        shapes = self.graph.infer_shapes()
        return {
            "format": FORMAT, "version": VERSION, "neurocompile": __version__,
            "target": self.target, "dt": self.graph.dt, "discretization": self.graph.discretization,
            "inputs": {n: list(shapes[n]) for n in self.graph.inputs},
            "outputs": {n: list(shapes[n]) for n in self.graph.outputs},
            "assumptions": self.graph.assumptions, "report": self.report,
            # how the program takes its input (chips: "spikes" or "current"; float: any values)
            "input": {k: v for k, v in self.report.get("input", {"encoding": "values"}).items()
                      if k in ("encoding", "message_bits", "scale", "range")},
        }

    def save(self, path: str | Path, *, force: bool = False, inputs=()) -> Path:
        """Write the artifact directory atomically.

        ``path`` must be absent, empty or an earlier artifact (``force``: any earlier neurocompile
        output); it may not be or contain one of ``inputs`` (see ``utils.outputs``).
        """
        path = claim_output(path, "artifact", force=force, inputs=inputs)
        backend = get_backend(self.target)
        with atomic_path(path) as tmp:
            tmp.mkdir()
            save_graph(self.graph, tmp)
            if self.payload is not None:
                backend.save_payload(self.payload, tmp)
            (tmp / "manifest.json").write_text(json.dumps(self.manifest(), indent=2, default=_jsonable) + "\n")
        self.path = path
        return path


def _jsonable(obj):
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def is_artifact(path: str | Path) -> bool:
    """``path`` is a directory holding a ``manifest.json`` entry (of any kind: ``load_artifact``
    refuses one that is not a regular file)."""
    p = Path(path)
    return p.is_dir() and os.path.lexists(p / "manifest.json")


#: manifest field -> (JSON types accepted, required)
MANIFEST_FIELDS = {
    "format": ((str,), True), "version": ((int,), True), "target": ((str,), True),
    "neurocompile": ((str,), False), "dt": ((int, float, type(None)), False),
    "discretization": ((str,), False), "inputs": ((dict,), False), "outputs": ((dict,), False),
    "assumptions": ((list,), False), "report": ((dict,), False), "input": ((dict,), False),
}
_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", dict: "an object", list: "a list",
               type(None): "null"}


def check_manifest(manifest: Any, file: str) -> dict:
    """Check ``manifest.json``'s structure; every failure names the file and the field."""
    if not isinstance(manifest, dict):
        raise NeuroCompileError(f"the manifest must be a JSON object, not {type(manifest).__name__}", file=file)
    if manifest.get("format") != FORMAT:
        raise NeuroCompileError(f"field 'format': not a neurocompile artifact manifest "
                                f"(expected {FORMAT!r}, got {manifest.get('format')!r})", file=file)
    for field, (types, required) in MANIFEST_FIELDS.items():
        if field not in manifest:
            if required:
                raise NeuroCompileError(f"field '{field}' is missing", file=file)
            continue
        value = manifest[field]
        if isinstance(value, bool) or not isinstance(value, types):
            want = " or ".join(_TYPE_NAMES[t] for t in types)
            raise NeuroCompileError(f"field '{field}' must be {want}, got {type(value).__name__}", file=file)
    version = manifest["version"]
    if version < 1 or version > VERSION:
        raise NeuroCompileError(f"field 'version': artifact version {version} is "
                                f"{'newer than' if version > VERSION else 'not one'} this neurocompile reads "
                                f"({VERSION})", file=file)
    if not manifest["target"]:
        raise NeuroCompileError("field 'target' is empty", file=file)
    for field in ("inputs", "outputs"):
        for name, shape in manifest.get(field, {}).items():
            if not isinstance(shape, list) or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                                                      for v in shape):
                raise NeuroCompileError(f"field '{field}.{name}' must be a list of sizes, got {shape!r}", file=file)
    return manifest


def load_artifact(path: str | Path) -> Artifact:
    """Read an artifact directory, checking everything it holds before use.

    The manifest is checked against :data:`MANIFEST_FIELDS`; no entry may be a FIFO, device or
    socket; the graph (``graph.json``/``graph.npz``) is validated; the manifest's inputs and
    outputs must be the graph's; the target's payload must load. Any failure is a
    :class:`NeuroCompileError` naming the file (and the field).
    """
    path = Path(path)
    mpath = path / "manifest.json"
    if not path.is_dir():
        if not os.path.lexists(path):
            raise NeuroCompileError("no such artifact directory", file=str(path))
        raise NeuroCompileError("not a compiled artifact (not a directory)", file=str(path))
    if not os.path.lexists(mpath):
        raise NeuroCompileError("not a compiled artifact (no manifest.json)", file=str(path))
    check_tree(path)
    try:
        manifest = json.loads(read_text(mpath, "manifest", limit=64 << 20))
    except json.JSONDecodeError as err:
        raise NeuroCompileError(f"corrupt manifest: {err}", file=str(mpath)) from None
    except RecursionError:
        raise NeuroCompileError("corrupt manifest: nested too deeply", file=str(mpath)) from None
    check_manifest(manifest, str(mpath))
    graph = load_graph(path)
    try:
        backend = get_backend(manifest["target"])
    except BackendError as err:
        raise NeuroCompileError(f"field 'target': {err.reason}", file=str(mpath)) from None
    shapes = graph.infer_shapes()
    for field, names in (("inputs", graph.inputs), ("outputs", graph.outputs)):
        if field in manifest:
            declared = {n: tuple(v) for n, v in manifest[field].items()}
            actual = {n: tuple(shapes[n]) for n in names}
            if declared != actual:
                raise NeuroCompileError(f"field '{field}' is {declared}, but the graph's are {actual}",
                                        file=str(mpath))
    _check_payload_files(path)
    try:
        payload = backend.load_payload(path)
    except NeuroCompileError:
        raise
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError, EOFError,
            zipfile.BadZipFile, RecursionError) as err:
        # backends' own readers: name the file (and field) when the error knows them
        if isinstance(getattr(err, "file", None), str) and isinstance(getattr(err, "reason", None), str):
            raise NeuroCompileError(err.reason, file=err.file) from None
        where = getattr(err, "filename", None) or getattr(err, "file", None) or str(path)
        msg = " ".join(str(err).split())[:300] or type(err).__name__
        raise NeuroCompileError(f"cannot read the {manifest['target']} payload: {type(err).__name__}: {msg}",
                                file=str(where)) from None
    return Artifact(target=manifest["target"], graph=graph, report=manifest.get("report", {}),
                    payload=payload, path=path)


def _check_payload_files(path: Path) -> None:
    """Before a backend reads its payload: every file fits the memory budget, every npz's headers
    are consistent with their members and every .json parses (backends' readers load whole
    files and do not all name the file in their errors)."""
    for dirpath, _, filenames in os.walk(path):
        for name in filenames:
            p = Path(dirpath) / name
            if not p.is_file():
                continue
            check_alloc(p.stat().st_size, f"reading {name}", file=str(p))
            if name.endswith(".npz"):
                check_npz_file(p)
            elif name.endswith(".json"):
                try:
                    json.loads(read_text(p, "payload file", limit=256 << 20))
                except (ValueError, RecursionError) as err:
                    raise NeuroCompileError(f"not valid JSON: {err}", file=str(p)) from None
