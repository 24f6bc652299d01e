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
from pathlib import Path
from typing import Any

from neurocompile import __version__
from neurocompile.ir.graph import Graph
from neurocompile.ir.serialize import load_graph, save_graph
from neurocompile.errors import NeuroCompileError
from neurocompile.utils.atomic import atomic_path
from neurocompile.utils.outputs import claim_output

FORMAT = "neurocompile.targets.artifact"
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
        }

    def save(self, path: str | Path, *, force: bool = False, inputs=()) -> Path:
        """Write the artifact directory atomically.

        ``path`` must be absent, empty or an earlier artifact (``force``: any earlier neurocompile
        output); it may not be or contain one of ``inputs`` (see ``utils.outputs``).
        """
        from neurocompile.targets.registry import get_backend

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
    return (Path(path) / "manifest.json").is_file()


def load_artifact(path: str | Path) -> Artifact:
    from neurocompile.targets.registry import get_backend

    path = Path(path)
    mpath = path / "manifest.json"
    if not mpath.is_file():
        raise NeuroCompileError("not a compiled artifact (no manifest.json)", file=str(path))
    try:
        manifest = json.loads(mpath.read_text())
    except json.JSONDecodeError as err:
        raise NeuroCompileError(f"corrupt manifest: {err}", file=str(mpath)) from None
    if manifest.get("format") != FORMAT:
        raise NeuroCompileError("not a neurocompile artifact manifest", file=str(mpath))
    if not isinstance(manifest.get("version"), int) or manifest["version"] > VERSION:
        raise NeuroCompileError(f"artifact version {manifest.get('version')} is newer than this "
                                f"neurocompile reads ({VERSION})", file=str(mpath))
    graph = load_graph(path)
    backend = get_backend(manifest["target"])
    payload = backend.load_payload(path)
    return Artifact(target=manifest["target"], graph=graph, report=manifest.get("report", {}),
                    payload=payload, path=path)
