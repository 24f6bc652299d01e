"""What exporters really write, handled once for the NIR reader.

* files that are not NIR HDF5 at all: a ``torch.save``d ``NIRGraph`` (a zip or pickle) or a Git
  LFS pointer (:mod:`neurocompile.frontends.lfs`) are named, never unpickled;
* a leading batch dimension of 1 in Input types (rockpool's default ``to_nir``, norse and
  snnTorch 0.9 given batched sample data) is dropped and recorded;
* the exporter's convention (:mod:`neurocompile.frontends.conventions`) is picked and applied.
"""
from __future__ import annotations

from neurocompile.errors import NeuroCompileError
from neurocompile.frontends.conventions import CONVENTIONS, detect, get_convention
from neurocompile.frontends.lfs import refuse_lfs_pointer
from neurocompile.ir.graph import Graph

_ZIP = b"PK\x03\x04"
_HDF5 = b"\x89HDF\r\n\x1a\n"


def sniff_container(fh, file: str) -> None:
    """Refuse, with the fix, files that are not HDF5 but something exporters are known to leave."""
    refuse_lfs_pointer(file)
    fh.seek(0)
    head = fh.read(8)
    fh.seek(0)
    if head.startswith(_HDF5):
        return
    saved = head.startswith(_ZIP) or (head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"))
    if saved:
        kind = "a zip archive (torch.save's format)" if head.startswith(_ZIP) else "a Python pickle"
        raise NeuroCompileError(
            f"this is {kind}, not a NIR (HDF5) file: probably a torch.save'd NIRGraph. It is not "
            f"unpickled here; write it as NIR in Python with nir.write('model.nir', "
            f"torch.load(path, weights_only=False)) from a source you trust", file=file)


def drop_batch_dims(g: Graph) -> None:
    """Drop a leading 1 from Input shapes when the graph only fits without it."""
    try:
        g.infer_shapes()
        return
    except NeuroCompileError as err:
        first = err
    changed = []
    for name in g.inputs:
        node = g.nodes[name]
        if len(node.shape) >= 2 and node.shape[0] == 1:
            changed.append((name, node.shape))
            node.shape = tuple(node.shape[1:])
    if not changed:
        raise first
    try:
        g.infer_shapes()
    except NeuroCompileError:
        for name, shape in changed:
            g.nodes[name].shape = shape
        raise first from None
    for name, shape in changed:
        g.assume(f"input '{name}' has type {shape} in the file: its leading 1 taken as a batch dimension "
                 f"(as exporters given batched sample data write it) and dropped: {shape[1:]}")


def apply_convention(g: Graph, gmeta: dict, convention: str | None, dt: float | None,
                     reset: str | None, discretization: str | None) -> bool:
    """Apply the named (or detected) convention; True when it set dt and the neuron fields."""
    if convention is None:
        found, why = detect(gmeta, list(g.nodes))
        if found is None:
            if not any(str(k).startswith("neurocompile.") for k in gmeta):  # not our own file
                get_convention("nir").apply(g, dt)
            return False
        g.assume(f"convention '{found}' detected from {why}")
        convention = found
    conv = get_convention(convention)
    if conv.name == "nir":
        conv.apply(g, dt)
        return False
    conv.apply(g, dt)
    if discretization is not None:
        g.discretization = discretization
        g.assume(f"discretization '{discretization}' given, replacing convention '{conv.name}''s")
    if reset is not None:
        for node in g.nodes.values():
            if node.has_reset:
                node.reset = reset
        g.assume(f"reset '{reset}' given, replacing convention '{conv.name}''s")
    return True


__all__ = ["CONVENTIONS", "apply_convention", "drop_batch_dims", "sniff_container"]

