"""Read and write NIR (Neuromorphic Intermediate Representation) 1.0 files.

NIR describes neurons in continuous time and has no time step, no reset mode and no threshold
comparison. Reading therefore needs three choices, each taken from the caller or defaulted and
recorded as a graph assumption (shown by ``neurocompile inspect``):

* ``dt``: default 1e-4 s, the value the NIR paper and the snnTorch/Norse exporters use;
* ``reset``: default ``"zero"`` (NIR's equations: ``v = v_reset`` after a spike), reset applied
  within the spiking step (``reset_delay=False``);
* ``discretization``: default ``"euler"`` (forward Euler, as in the paper's simulators).

Files written by neurocompile keep these choices in NIR metadata (keys ``neurocompile.*``), so a
round trip restores every field. Nested subgraphs are flattened with dotted names
(``block.lif``); their own Input/Output nodes become Identity nodes that the ``remove-identity``
pass removes.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from neurocompile.errors import NeuroCompileError, UnsupportedError
from neurocompile.frontends.exported import apply_convention, drop_batch_dims, sniff_container
from neurocompile.frontends.hdf5_safe import MAX_DEPTH, MAX_OBJECTS, check_hdf5  # noqa: F401 (re-exported)
from neurocompile.ir import nodes as N
from neurocompile.ir.graph import Graph
from neurocompile.ir.time_units import check_time_units
from neurocompile.utils.atomic import atomic_path
from neurocompile.utils.files import open_regular
from neurocompile.utils.outputs import claim_output, mark_hdf5

DEFAULT_DT = 1e-4
META = "neurocompile."


def _nir():
    try:
        import nir
    except ImportError as err:  # pragma: no cover - nir is a core dependency
        raise NeuroCompileError("the 'nir' package is needed to read NIR files") from err
    return nir


def _meta(node) -> dict:
    out = {}
    for k, v in (getattr(node, "metadata", None) or {}).items():
        if isinstance(v, bytes):
            v = v.decode()
        elif isinstance(v, np.ndarray) and v.ndim == 0:
            v = v.item()
        out[k] = v
    return out


def read_nir(path: str | Path, *, dt: float | None = None, reset: str | None = None,
             discretization: str | None = None, convention: str | None = None) -> Graph:
    """Load a ``.nir`` file into a Graph (see the module docstring for the defaults;
    ``convention`` names the exporter's update, :mod:`neurocompile.frontends.conventions`)."""

    nir = _nir()
    path = Path(path)

    with open_regular(path, "NIR file") as fh:
        sniff_container(fh, str(path))
        check_hdf5(fh, str(path))
        try:
            try:
                fh.seek(0)
                ng = nir.read(fh)
            except NeuroCompileError:
                raise
            except Exception:  # older graphs can fail NIR's own type check; read without it
                fh.seek(0)
                ng = nir.read(fh, type_check=False)
        except NeuroCompileError:
            raise
        except Exception as err:
            msg = " ".join(str(err).split())[:300]
            raise NeuroCompileError(f"cannot read NIR (corrupt or not HDF5/NIR): {msg}", file=str(path)) from None
    gmeta = _meta(ng)
    g = Graph(dt=None, discretization="euler")
    g.metadata["source"] = str(path)
    try:
        _add_graph(g, ng, prefix="", top=True)
    except NeuroCompileError as err:
        raise err.with_context(file=str(path))
    _fix_input_shapes(g)
    try:
        drop_batch_dims(g)
        by_convention = apply_convention(g, gmeta, convention, dt, reset, discretization)
    except NeuroCompileError as err:
        raise err.with_context(file=str(path))
    if not by_convention:
        _choose(g, "dt", dt, gmeta.get(META + "dt"), DEFAULT_DT,
                "NIR has no time step: dt = 1e-4 s assumed (the NIR paper's value); set it with --dt")
        _choose(g, "discretization", discretization, gmeta.get(META + "discretization"), "euler",
                "discretization 'euler' assumed (beta = 1 - dt/tau, as in the NIR paper)")
    _apply_reset(g, reset)
    _delays_to_steps(g)
    try:
        g.validate()

        for w in check_time_units(g):
            g.assume(f"WARNING {w}")
    except NeuroCompileError as err:
        raise err.with_context(file=str(path))
    return g


def _choose(g: Graph, attr: str, given, stored, default, note: str) -> None:
    if given is not None:
        setattr(g, attr, given)
    elif stored is not None:
        setattr(g, attr, stored)
    else:
        setattr(g, attr, default)
        if attr != "dt" or g.needs_dt() or any(isinstance(n, N.Delay) for n in g.nodes.values()):
            g.assume(note)


def _apply_reset(g: Graph, reset: str | None) -> None:
    spiking = [n for n in g.nodes.values() if n.has_reset]
    unset = [n for n in spiking if getattr(n, "_from_meta", False) is False]
    for node in unset:
        node.reset = reset or "zero"
    if unset and reset is None:
        g.assume("NIR has no reset mode: reset to v_reset ('zero') assumed; set it with --reset")
    for node in spiking:
        node.__dict__.pop("_from_meta", None)


def _delays_to_steps(g: Graph) -> None:
    for name, node in g.nodes.items():
        if isinstance(node, N.Delay) and not getattr(node, "_in_steps", False):
            steps = node.delay / g.dt
            if np.any(np.abs(steps - np.round(steps)) > 1e-6 * np.maximum(1, steps)):
                raise NeuroCompileError(
                    f"delay {node.delay.ravel()[:4]} s is not a whole number of steps of dt={g.dt}", node=name)
            node.delay = np.round(steps)
        node.__dict__.pop("_in_steps", None)


def _add_graph(g: Graph, ng, prefix: str, top: bool) -> tuple[list[str], list[str]]:
    """Add the nodes of NIRGraph ``ng`` under ``prefix``; return its input and output names."""
    nir = _nir()
    sub_io: dict[str, tuple[list[str], list[str]]] = {}
    ins, outs = [], []
    for key, node in ng.nodes.items():
        name = prefix + key
        if isinstance(node, nir.NIRGraph):
            sub_io[key] = _add_graph(g, node, name + ".", top=False)
            continue
        if isinstance(node, nir.Input):
            if top:
                shape = node.input_type.get("input")
                g.add(name, N.Input(shape=() if shape is None else tuple(int(s) for s in np.atleast_1d(shape))))
            else:
                g.add(name, N.Identity())
            ins.append(name)
            continue
        if isinstance(node, nir.Output):
            g.add(name, N.Output() if top else N.Identity())
            outs.append(name)
            continue
        try:
            g.add(name, _convert(node))
        except NeuroCompileError as err:
            raise err.with_context(node=name)
        except (TypeError, ValueError) as err:
            raise NeuroCompileError(f"bad parameters: {err}", node=name) from None

    def resolve(ref: str, as_src: bool) -> str:
        head, _, port = ref.partition(".")
        if ref in ng.nodes and head in sub_io and ref == head:
            sub_ins, sub_outs = sub_io[head]
            cands = sub_outs if as_src else sub_ins
            if len(cands) != 1:
                raise NeuroCompileError(f"edge to subgraph '{ref}' is ambiguous: it has ports {cands}")
            return cands[0]
        if prefix + ref in g.nodes:
            return prefix + ref
        if head in sub_io:
            return prefix + ref
        raise NeuroCompileError(f"edge refers to unknown node '{ref}'")

    for src, dst in ng.edges:
        g.connect(resolve(src, True), resolve(dst, False))
    return ins, outs


def _spiking_fields(node) -> dict:
    meta = _meta(node)
    out = {}
    if META + "reset" in meta:
        out["reset"] = str(meta[META + "reset"])
        out["reset_delay"] = bool(meta.get(META + "reset_delay", False))
        out["compare"] = str(meta.get(META + "compare", "gt"))
    return out


def _convert(node) -> N.Node:
    """One NIR node to one graph node."""
    nir = _nir()
    t = type(node).__name__
    if isinstance(node, nir.Affine):
        return N.Affine(weight=node.weight, bias=node.bias)
    if isinstance(node, nir.Linear):
        return N.Linear(weight=node.weight)
    if isinstance(node, nir.Scale):
        return N.Scale(scale=node.scale)
    if isinstance(node, (nir.Conv1d, nir.Conv2d)):
        cls = N.Conv1d if isinstance(node, nir.Conv1d) else N.Conv2d
        padding = node.padding if isinstance(node.padding, str) else np.asarray(node.padding)
        groups = np.asarray(node.groups)
        if groups.size != 1 or not np.issubdtype(groups.dtype, np.number) or int(groups.item()) < 1:
            raise NeuroCompileError(f"conv groups must be a positive integer, got {node.groups!r}")
        out = cls(weight=node.weight, bias=node.bias, stride=node.stride, padding=padding,
                  dilation=node.dilation, groups=int(node.groups))
        if node.input_shape is not None:
            out.__dict__["_spatial"] = tuple(int(s) for s in np.atleast_1d(node.input_shape))
        return out
    if isinstance(node, nir.SumPool2d):
        return N.SumPool2d(kernel_size=node.kernel_size, stride=node.stride, padding=node.padding)
    if isinstance(node, nir.AvgPool2d):
        return N.AvgPool2d(kernel_size=node.kernel_size, stride=node.stride, padding=node.padding)
    if isinstance(node, nir.Flatten):
        return N.Flatten(start_dim=int(node.start_dim), end_dim=int(node.end_dim))
    if isinstance(node, nir.Delay):
        d = N.Delay(delay=node.delay)
        if _meta(node).get(META + "delay_unit") == "steps":
            d.__dict__["_in_steps"] = True
        return d
    if type(node).__name__ == "Identity":  # not exported by every nir release
        return N.Identity()
    if isinstance(node, nir.Threshold):
        return N.Threshold(threshold=node.threshold)
    if isinstance(node, nir.CubaLIF):
        return _spiking(N.CubaLIF(tau_syn=node.tau_syn, tau_mem=node.tau_mem, r=node.r, v_leak=node.v_leak,
                                  v_threshold=node.v_threshold, v_reset=node.v_reset, w_in=node.w_in), node)
    if isinstance(node, nir.LIF):
        return _spiking(N.LIF(tau=node.tau, r=node.r, v_leak=node.v_leak, v_threshold=node.v_threshold,
                              v_reset=node.v_reset), node)
    if isinstance(node, nir.IF):
        return _spiking(N.IF(r=node.r, v_threshold=node.v_threshold, v_reset=node.v_reset), node)
    if isinstance(node, nir.CubaLI):
        return N.CubaLI(tau_syn=node.tau_syn, tau_mem=node.tau_mem, r=node.r, v_leak=node.v_leak, w_in=node.w_in)
    if isinstance(node, nir.LI):
        return N.LI(tau=node.tau, r=node.r, v_leak=node.v_leak)
    if isinstance(node, nir.I):
        return N.Integrator(r=node.r)
    raise UnsupportedError(f"NIR node type {t} is not supported")


def _spiking(out: N.Node, node) -> N.Node:
    fields = _spiking_fields(node)
    for k, v in fields.items():
        setattr(out, k, v)
    out.__dict__["_from_meta"] = bool(fields)
    return out


def _fix_input_shapes(g: Graph) -> None:
    """Give shapeless Inputs (some exporters write none) the shape their first consumer needs."""
    for name in g.inputs:
        node = g.nodes[name]
        if node.shape:
            continue
        for dst in g.successors(name):
            consumer = g.nodes[dst]
            if isinstance(consumer, (N.Conv1d, N.Conv2d)) and "_spatial" in consumer.__dict__:
                c_in = consumer.weight.shape[1] * consumer.groups
                node.shape = (c_in,) + consumer.__dict__["_spatial"]
            elif isinstance(consumer, N.Linear):
                node.shape = (consumer.weight.shape[1],)
            if node.shape:
                g.assume(f"input '{name}' has no shape in the file: {node.shape} taken from '{dst}'")
                break
        if not node.shape:
            raise NeuroCompileError("the Input node has no shape and none can be derived", node=name)
    for node in g.nodes.values():
        node.__dict__.pop("_spatial", None)


# -- writing ----------------------------------------------------------------------------------
def to_nir(graph: Graph):
    """Convert a Graph to a ``nir.NIRGraph`` (every parameter kept; choices in metadata)."""
    nir = _nir()
    shapes = graph.validate()
    nodes = {}
    for name, node in graph.nodes.items():
        in_shape = None
        preds = graph.predecessors(name)
        if preds:
            in_shape = shapes[preds[0]]
        try:
            nodes[name] = _to_nir_node(nir, node, shapes[name], in_shape, graph.dt)
        except NeuroCompileError as err:
            raise err.with_context(node=name)
    meta = {META + "discretization": graph.discretization}
    if graph.dt is not None:
        meta[META + "dt"] = float(graph.dt)
    return nir.NIRGraph(nodes=nodes, edges=[tuple(e) for e in graph.edges], metadata=meta, type_check=False)


def _full(value, shape) -> np.ndarray:
    return np.array(np.broadcast_to(np.asarray(value, dtype=np.float64), shape))


def _to_nir_node(nir, node: N.Node, shape, in_shape, dt):
    if isinstance(node, N.Input):
        return nir.Input(input_type={"input": np.array(node.shape)})
    if isinstance(node, N.Output):
        return nir.Output(output_type={"output": np.array(shape)})
    if isinstance(node, N.Affine):
        return nir.Affine(weight=node.weight, bias=_full(node.bias, shape))
    if isinstance(node, N.Linear):
        return nir.Linear(weight=node.weight)
    if isinstance(node, N.Scale):
        return nir.Scale(scale=_full(node.scale, shape))
    if isinstance(node, (N.Conv1d, N.Conv2d)):
        cls = nir.Conv1d if isinstance(node, N.Conv1d) else nir.Conv2d
        spatial = tuple(in_shape[1:]) if in_shape else None
        return cls(input_shape=spatial if isinstance(node, N.Conv2d) else (spatial[0] if spatial else None),
                   weight=node.weight, stride=np.array(node.stride), padding=np.array(node.padding),
                   dilation=np.array(node.dilation), groups=node.groups,
                   bias=_full(node.bias, (node.weight.shape[0],)))
    if isinstance(node, N.MaxPool2d):
        raise UnsupportedError("MaxPool2d has no NIR 1.0 equivalent (use AvgPool2d or SumPool2d)")
    if isinstance(node, (N.SumPool2d, N.AvgPool2d)):
        cls = nir.SumPool2d if isinstance(node, N.SumPool2d) else nir.AvgPool2d
        return cls(kernel_size=np.array(node.kernel_size), stride=np.array(node.stride),
                   padding=np.array(node.padding))
    if isinstance(node, N.Flatten):
        return nir.Flatten(input_type={"input": np.array(in_shape)}, start_dim=node.start_dim, end_dim=node.end_dim)
    if isinstance(node, N.Delay):
        if dt is None:
            raise NeuroCompileError("writing a Delay to NIR needs dt (NIR delays are in seconds)")
        return nir.Delay(delay=_full(node.delay * dt, shape))
    if isinstance(node, N.Identity):
        raise NeuroCompileError("Identity nodes are removed before writing (run the normalize passes)")
    if isinstance(node, N.Threshold):
        return nir.Threshold(threshold=_full(node.threshold, shape))
    meta = {}
    if node.has_reset:
        meta = {META + "reset": node.reset, META + "reset_delay": int(node.reset_delay),
                META + "compare": node.compare}
    f = lambda attr: _full(getattr(node, attr), shape)  # noqa: E731
    if isinstance(node, N.CubaLIF):
        return nir.CubaLIF(tau_syn=f("tau_syn"), tau_mem=f("tau_mem"), r=f("r"), v_leak=f("v_leak"),
                           v_threshold=f("v_threshold"), v_reset=f("v_reset"), w_in=f("w_in"), metadata=meta)
    if isinstance(node, N.LIF):
        return nir.LIF(tau=f("tau"), r=f("r"), v_leak=f("v_leak"), v_threshold=f("v_threshold"),
                       v_reset=f("v_reset"), metadata=meta)
    if isinstance(node, N.IF):
        return nir.IF(r=f("r"), v_threshold=f("v_threshold"), v_reset=f("v_reset"), metadata=meta)
    if isinstance(node, N.CubaLI):
        return nir.CubaLI(tau_syn=f("tau_syn"), tau_mem=f("tau_mem"), r=f("r"), v_leak=f("v_leak"), w_in=f("w_in"))
    if isinstance(node, N.LI):
        return nir.LI(tau=f("tau"), r=f("r"), v_leak=f("v_leak"))
    if isinstance(node, N.Integrator):
        return nir.I(r=f("r"))
    raise UnsupportedError(f"{type(node).op} cannot be written to NIR")


def write_nir(graph: Graph, path: str | Path) -> None:
    """Write ``graph`` to a ``.nir`` file atomically."""
    nir = _nir()

    path = claim_output(path, "nir")
    ng = to_nir(graph)
    with atomic_path(path) as tmp:
        nir.write(str(tmp), ng)
        mark_hdf5(tmp, "nir")
