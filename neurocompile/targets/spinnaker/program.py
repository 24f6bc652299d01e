"""A SpiNNaker program: PyNN populations, spike sources and projections, with the raw words sPyNNaker
7.x puts on the chip for them.

It is the common input of the fixed-point emulator (:mod:`.emulator`), of the PyNN script generator
and of the real-board runner (``neurocompile.targets.spinnaker``). On disk: ``program.json``
(scalars, names, the report) and ``program.npz`` (arrays), loaded with ``allow_pickle=False``.

Version 2 adds ``host_input`` (absent, ``null``, in programs that take spikes): the first synapse
layer computed on the host for a direct (analog) input, one :class:`HostDrive` per population it
drives (``program.json`` ``host_input.entries[k]``, arrays ``hin<k>.*``); :mod:`.host_input` says
what the host computes from it. Version-1 programs (spike input only) load unchanged.

Version 3 adds ``conv`` to a projection (absent or ``null`` in list projections): a convolution
kept as its kernel of 16-bit words and its geometry (:mod:`.conv`), so that a program holds
O(kernel) for it instead of one (pre, post, word) triple per synapse.

The ring-buffer left shift of each population and synapse type, and the 16-bit weights, are
predicted with the same rules as sPyNNaker's host code (``PopulationVertex.get_ring_buffer_shifts``
and ``get_weight_scales``, ``SynapseDynamicsStatic.get_static_synaptic_data``) for projections
that use a ``FromListConnector`` with one delay each:

* per synapse type, ``max_weight = sum over projections of spikes_per_tick * max|w| * n``, with
  ``n`` the largest number of connections any one target neuron receives from that projection
  and ``spikes_per_tick = max(1, spikes_per_second / steps_per_second)`` (30 Hz by default);
  when the delays of a projection vary sPyNNaker uses a statistical bound instead, which this
  module does not reproduce (the quantizer never produces such projections);
* ``shift = ceil(log2(max_weight))`` clamped at 0, plus one when ``2**shift <= max_weight``;
* a weight becomes ``rint(|w| * 2**(15 - shift)) & 0xFFFF`` (numpy's rint: half to even); on
  the chip the ring buffer adds these words (saturating at 0xFFFF) and hands ``word << shift`` to
  the neuron as an accum (``neuron.c`` ``neuron_transfer``).
"""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from neurocompile.errors import NeuroCompileError
from neurocompile.targets.spinnaker import conv as C
from neurocompile.utils.atomic import load_npz, write_json, write_npz
from neurocompile.utils.files import read_text

FORMAT = "neurocompile.spinnaker_program"
VERSION = 3
JSON_NAME = "program.json"
NPZ_NAME = "program.npz"

#: the raw S1615 parameter words of an ``IF_curr_exp``/``IF_curr_delta`` neuron, in PyNN names
RAW_FIELDS = ("v", "v_rest", "cm", "tau_m", "i_offset", "v_reset", "tau_refrac", "v_thresh",
              "tau_syn_E", "tau_syn_I", "isyn_exc", "isyn_inh")
RECEPTORS = ("excitatory", "inhibitory")
DEFAULT_SPIKES_PER_SECOND = 30.0   # sPyNNaker's [Simulation] spikes_per_second


@dataclasses.dataclass
class Population:
    """One PyNN population of ``IF_curr_exp`` (CubaLIF) or ``IF_curr_delta`` (LIF, IF) neurons.

    ``raw`` holds per-neuron raw S1615 words (``RAW_FIELDS``) and ``refract_timer`` the initial
    refractory count (used to hold a group still until its first step, see the quantizer).
    ``scale``/``offset`` map the graph's float membrane to the chip's: ``V = offset + scale*v``;
    ``cur_scale`` maps a CubaLIF's float current: ``I_syn = cur_scale * i``.
    """
    name: str
    model: str
    kind: str
    size: int
    latency: int
    raw: dict[str, np.ndarray]
    refract_timer: np.ndarray
    scale: np.ndarray
    offset: np.ndarray
    cur_scale: np.ndarray
    compare: str = "ge"
    #: a channel of a graph group cut by channel (:mod:`.local_only`): ``[H, W, tile_x, tile_y]``,
    #: a ``Grid2D`` population with that many neurons a core per dimension
    grid: list | None = None
    #: sPyNNaker's ``max_expected_summed_weight`` [exc, inh] (nA) when the compiler sets it: the
    #: shifts then follow it instead of the worst-case rule (see ``predict_shifts``)
    max_summed: list | None = None


@dataclasses.dataclass
class Source:
    """A ``SpikeSourceArray``: ``kind`` is ``"input"`` (the graph's input, step t sent at tick t)
    or ``"bias"`` (neuron k spikes at every tick from ``first_tick[k]`` on)."""
    name: str
    kind: str
    size: int
    first_tick: list = dataclasses.field(default_factory=list)
    #: the first input element this source sends (a channel of the input, see ``grid``)
    offset: int = 0
    grid: list | None = None


@dataclasses.dataclass
class Projection:
    """A ``FromListConnector`` projection with one receptor and one delay (whole ticks).

    With ``conv`` set (:mod:`.conv`) ``pre_idx``/``post_idx`` are empty and ``weight``/``w_int``
    are the kernel of this sign, (C_out, C_in/groups, kH, kW): the synapse list is implied."""
    name: str
    pre: str
    post: str
    receptor: str
    delay: int
    pre_idx: np.ndarray
    post_idx: np.ndarray
    weight: np.ndarray          # nA, exactly w_int * 2**(shift - 15)
    w_int: np.ndarray           # the predicted 16-bit synaptic weights
    conv: dict | None = None    # a kept convolution's geometry (see .conv)

    def fan_in_max(self) -> int:
        """The most synapses any one target neuron receives from this projection (sPyNNaker's
        ``get_n_connections_to_post_vertex_maximum`` for a FromList of these synapses)."""
        if self.conv is not None:
            if self.conv["connector"] == "conv":   # ConvolutionConnector: the kernel area
                k = self.weight.shape
                return int(min(k[2] * k[3], C.n_pre(self.conv)))
            return int(C.fan_in(self.weight, self.conv).max(initial=0))
        if len(self.post_idx) == 0:
            return 0
        return int(np.bincount(np.asarray(self.post_idx, dtype=np.int64)).max())

    def fan_out(self, n_pre: int) -> np.ndarray:
        """Synapses per source neuron (row lengths)."""
        if self.conv is not None:
            return C.fan_out(self.weight, self.conv)
        return np.bincount(np.asarray(self.pre_idx, dtype=np.int64), minlength=n_pre)

    @property
    def n_synapses(self) -> int:
        if self.conv is not None:
            return C.n_synapses(self.weight, self.conv)
        return int(len(self.pre_idx))

    def synapses(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(pre, post, w_int, weight)`` of every synapse (a conv expanded: small programs only)."""
        if self.conv is None:
            return self.pre_idx, self.post_idx, self.w_int, self.weight
        pre, post, w = C.expand_all(self.w_int, self.conv)
        _, _, wf = C.expand_all(self.weight, self.conv)
        return pre, post, w, wf


@dataclasses.dataclass
class HostDrive:
    """The host's share of one population's input (see :mod:`.host_input`): row ``j`` of the first
    synapse layer as its nonzero weights ``w[j]`` (float64, graph units) from inputs ``pre[j]``
    (ascending, padded with zero weights), and the factors to chip words: ``gain`` (nA per unit of
    the injected value: the summed input for LIF/IF, the filtered current for CubaLIF),
    ``g_off``/``g_syn`` (offset mode: ``I_offset`` and, for CubaLIF, the synaptic start value per
    unit of a constant summed input), for ``filter == "exp"`` the graph's filter ``i[t] = a
    i[t-1] + c u[t]``, and ``limit``, the largest |word| the neuron takes."""
    pop: str
    latency: int
    filter: str                 # "none" (LIF, IF) or "exp" (CubaLIF: the host filters)
    pre: np.ndarray             # (n, m) int64
    w: np.ndarray               # (n, m) float64
    gain: np.ndarray            # (n,)
    g_off: np.ndarray           # (n,)
    g_syn: np.ndarray           # (n,)
    a: np.ndarray               # (n,)
    c: np.ndarray               # (n,)
    limit: np.ndarray           # (n,) largest |word| (raw nA) the neuron takes, see host_input.LIMIT

    ARRAYS = ("pre", "w", "gain", "g_off", "g_syn", "a", "c", "limit")


@dataclasses.dataclass
class HostInput:
    """The graph input as a host-computed current into the first populations."""
    size: int
    entries: list[HostDrive]
    rounding: str = ""
    bias: str = ("an input Affine's bias stays in the driven population's raw i_offset (and, for "
                 "IF_curr_exp, isyn_exc) words; the host adds the input's words to them")


@dataclasses.dataclass
class Program:
    timestep_ms: float
    time_scale_factor: int
    graph_dt: float | None
    populations: list[Population]
    sources: list[Source]
    projections: list[Projection]
    shifts: dict[str, list[int]]             # predicted ring-buffer left shifts [exc, inh]
    outputs: dict[str, str]                  # graph Output node -> population
    input_name: str
    report: dict[str, Any] = dataclasses.field(default_factory=dict)
    host_input: HostInput | None = None
    #: graph group -> its channel populations, in channel order (groups cut by channel)
    groups: dict[str, list[str]] = dataclasses.field(default_factory=dict)

    def group_members(self, node: str) -> list[str]:
        """The program populations (or sources) that hold graph node ``node``, in C order."""
        return self.groups.get(node, [node])

    def gather(self, arrays: dict, node: str) -> np.ndarray:
        """``arrays[pop]`` of the populations of ``node`` joined along the last axis."""
        names = self.group_members(node)
        return arrays[names[0]] if len(names) == 1 else np.concatenate([arrays[n] for n in names], axis=-1)

    def group_attr(self, node: str, field: str) -> np.ndarray:
        """A per-neuron field (scale, offset, cur_scale...) of ``node``'s populations, joined."""
        return self.gather({n: np.asarray(getattr(self.population(n), field)) for n in self.group_members(node)},
                           node)

    # -- queries ----------------------------------------------------------------------------
    def population(self, name: str) -> Population:
        for p in self.populations:
            if p.name == name:
                return p
        raise KeyError(name)

    def source(self, name: str) -> Source:
        for s in self.sources:
            if s.name == name:
                return s
        raise KeyError(name)

    def size_of(self, name: str) -> int:
        for p in self.populations:
            if p.name == name:
                return p.size
        return self.source(name).size

    @property
    def input_size(self) -> int:
        """Elements of the graph input (a spike source's size, or the host input's)."""
        if self.host_input is not None:
            return self.host_input.size
        return sum(self.source(n).size for n in self.group_members(self.input_name))

    def host_entries(self) -> list[dict]:
        """The host input as :func:`.host_input.plan` takes it (the script builds the same dicts
        from program.json/npz): one dict per driven population, with its bias words."""
        if self.host_input is None:
            return []
        out = []
        for e in self.host_input.entries:
            pop = self.population(e.pop)
            d = {f: getattr(e, f) for f in HostDrive.ARRAYS}
            d.update(pop=e.pop, latency=e.latency, filter=e.filter,
                     i_offset_raw=pop.raw["i_offset"], isyn_raw=pop.raw["isyn_exc"])
            out.append(d)
        return out

    @property
    def max_latency(self) -> int:
        return max((p.latency for p in self.populations), default=0)

    @property
    def max_delay(self) -> int:
        return max((pr.delay for pr in self.projections), default=1)

    # -- disk -------------------------------------------------------------------------------
    def save(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {}
        pops = []
        for i, p in enumerate(self.populations):
            for f in RAW_FIELDS:
                arrays[f"pop{i}.raw.{f}"] = np.asarray(p.raw[f], dtype=np.int64)
            for f in ("refract_timer", "scale", "offset", "cur_scale"):
                arrays[f"pop{i}.{f}"] = np.asarray(getattr(p, f))
            pops.append({"name": p.name, "model": p.model, "kind": p.kind, "size": p.size,
                         "latency": p.latency, "compare": p.compare, "grid": p.grid,
                         "max_summed": p.max_summed})
        projs = []
        for i, pr in enumerate(self.projections):
            for f in ("pre_idx", "post_idx", "weight", "w_int"):
                arrays[f"proj{i}.{f}"] = np.asarray(getattr(pr, f))
            projs.append({"name": pr.name, "pre": pr.pre, "post": pr.post, "receptor": pr.receptor,
                          "delay": pr.delay, "conv": pr.conv})
        host = None
        if self.host_input is not None:
            entries = []
            for k, e in enumerate(self.host_input.entries):
                for f in HostDrive.ARRAYS:
                    arrays[f"hin{k}.{f}"] = np.asarray(getattr(e, f))
                entries.append({"pop": e.pop, "latency": e.latency, "filter": e.filter})
            host = {"size": self.host_input.size, "entries": entries, "rounding": self.host_input.rounding,
                    "bias": self.host_input.bias}
        doc = {"format": FORMAT, "version": VERSION, "timestep_ms": self.timestep_ms,
               "time_scale_factor": self.time_scale_factor, "graph_dt": self.graph_dt,
               "populations": pops, "sources": [dataclasses.asdict(s) for s in self.sources],
               "projections": projs, "shifts": self.shifts, "outputs": self.outputs,
               "input_name": self.input_name, "host_input": host, "report": _plain(self.report),
               "groups": self.groups}
        write_npz(directory / NPZ_NAME, arrays)
        write_json(directory / JSON_NAME, doc)

    @classmethod
    def load(cls, directory: str | Path) -> "Program":
        """Read ``program.json`` + ``program.npz``; every field is checked (presence, JSON type,
        arrays present) before use. Failures are NeuroCompileErrors naming the file and field."""
        directory = Path(directory)
        jpath = directory / JSON_NAME
        file = str(jpath)
        try:
            doc = json.loads(read_text(jpath, "SpiNNaker program", limit=256 << 20))
        except (ValueError, RecursionError) as err:
            raise NeuroCompileError(f"not valid JSON: {err}", file=file) from None
        if not isinstance(doc, dict):
            raise NeuroCompileError("the program must be a JSON object", file=file)
        version = doc.get("version", 0)
        if doc.get("format") != FORMAT:
            raise NeuroCompileError(f"field 'format': not a {FORMAT} file", file=file)
        if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= VERSION:
            raise NeuroCompileError(f"field 'version': version {version!r} is not one this neurocompile reads "
                                    f"(1..{VERSION})", file=file)
        arrays = load_npz(directory / NPZ_NAME)
        _check_fields(doc, _PROGRAM_FIELDS, "", file)
        pop_fields = {f.name for f in dataclasses.fields(Population)} - {"raw", "refract_timer", "scale", "offset",
                                                                           "cur_scale"}
        proj_fields = {f.name for f in dataclasses.fields(Projection)} - {"pre_idx", "post_idx", "weight", "w_int"}
        sizes = {d.get("name"): d.get("size") for d in doc["populations"] + doc["sources"] if isinstance(d, dict)}

        def arr(key: str, where: str):
            if key not in arrays:
                raise NeuroCompileError(f"field '{where}': array '{key}' is missing from {NPZ_NAME}", file=file)
            a = arrays[key]
            if a.dtype.kind not in "biuf":
                raise NeuroCompileError(f"field '{where}': array '{key}' has dtype {a.dtype}", file=file)
            return a

        pops = []
        for i, d in enumerate(doc["populations"]):
            _check_fields(d, _POP_FIELDS, f"populations[{i}].", file)
            _no_extra(d, pop_fields, f"populations[{i}]", file)
            pops.append(Population(
                raw={f: arr(f"pop{i}.raw.{f}", f"populations[{i}]") for f in RAW_FIELDS},
                refract_timer=arr(f"pop{i}.refract_timer", f"populations[{i}]"),
                scale=arr(f"pop{i}.scale", f"populations[{i}]"),
                offset=arr(f"pop{i}.offset", f"populations[{i}]"),
                cur_scale=arr(f"pop{i}.cur_scale", f"populations[{i}]"), **d))
        projs = []
        for i, d in enumerate(doc["projections"]):
            _check_fields(d, _PROJ_FIELDS, f"projections[{i}].", file)
            _no_extra(d, proj_fields, f"projections[{i}]", file)
            pr = Projection(**{f: arr(f"proj{i}.{f}", f"projections[{i}]")
                               for f in ("pre_idx", "post_idx", "weight", "w_int")}, **d)
            if pr.conv is not None:
                _check_conv(pr, sizes, f"projections[{i}].conv", file)
            projs.append(pr)
        sources = []
        for i, d in enumerate(doc["sources"]):
            _check_fields(d, _SOURCE_FIELDS, f"sources[{i}].", file)
            _no_extra(d, {f.name for f in dataclasses.fields(Source)}, f"sources[{i}]", file)
            sources.append(Source(**d))
        for where, items in (("populations", pops), ("sources", sources)):
            for i, p in enumerate(items):
                g = p.grid
                if g is not None and not (len(g) == 4 and all(isinstance(v, int) and not isinstance(v, bool)
                                                              and v >= 1 for v in g) and g[0] * g[1] == p.size):
                    raise NeuroCompileError(f"field '{where}[{i}].grid' must be [H, W, tile_x, tile_y] with "
                                            f"H*W = size {p.size}", file=file)
        for k, v in doc["shifts"].items():
            if not (isinstance(v, list) and all(isinstance(x, int) and not isinstance(x, bool) for x in v)):
                raise NeuroCompileError(f"field 'shifts.{k}' must be a list of integers", file=file)
        if not all(isinstance(v, str) for v in doc["outputs"].values()):
            raise NeuroCompileError("field 'outputs' must map output names to population names", file=file)
        host = None
        if doc.get("host_input") is not None:
            h = doc["host_input"]
            _check_fields(h, _HOST_FIELDS, "host_input.", file)
            entries = []
            names = {p.name: p for p in pops}
            for k, d in enumerate(h["entries"]):
                where = f"host_input.entries[{k}]"
                _check_fields(d, _HOST_ENTRY_FIELDS, where + ".", file)
                _no_extra(d, set(_HOST_ENTRY_FIELDS), where, file)
                if d["pop"] not in names:
                    raise NeuroCompileError(f"field '{where}.pop': no population '{d['pop']}'", file=file)
                if d["filter"] not in ("none", "exp"):
                    raise NeuroCompileError(f"field '{where}.filter' must be 'none' or 'exp'", file=file)
                e = HostDrive(**d, **{f: arr(f"hin{k}.{f}", where) for f in HostDrive.ARRAYS})
                n = names[d["pop"]].size
                if (e.pre.ndim != 2 or e.pre.shape != e.w.shape or e.pre.shape[0] != n
                        or any(getattr(e, f).shape != (n,) for f in HostDrive.ARRAYS[2:])):
                    raise NeuroCompileError(f"field '{where}': arrays do not match population size {n}", file=file)
                if e.pre.size and (e.pre.min() < 0 or e.pre.max() >= h["size"]):
                    raise NeuroCompileError(f"field '{where}': input index outside 0..{h['size'] - 1}", file=file)
                entries.append(e)
            host = HostInput(size=h["size"], entries=entries, rounding=h.get("rounding", ""),
                             **({"bias": h["bias"]} if "bias" in h else {}))
        return cls(timestep_ms=doc["timestep_ms"], time_scale_factor=doc["time_scale_factor"],
                   graph_dt=doc["graph_dt"], populations=pops,
                   sources=sources, projections=projs,
                   shifts={k: list(v) for k, v in doc["shifts"].items()}, outputs=doc["outputs"],
                   input_name=doc["input_name"], report=doc.get("report", {}), host_input=host,
                   groups=_groups(doc, pops, sources, file))


_NUM = (int, float)
#: field -> (JSON types, required) of program.json and its entries
_PROGRAM_FIELDS = {"timestep_ms": (_NUM, True), "time_scale_factor": ((int,), True),
                   "graph_dt": (_NUM + (type(None),), True), "populations": ((list,), True),
                   "sources": ((list,), True), "projections": ((list,), True), "shifts": ((dict,), True),
                   "outputs": ((dict,), True), "input_name": ((str,), True), "report": ((dict,), False),
                   "host_input": ((dict, type(None)), False), "groups": ((dict,), False)}
_HOST_FIELDS = {"size": ((int,), True), "entries": ((list,), True), "rounding": ((str,), False),
                "bias": ((str,), False)}
_HOST_ENTRY_FIELDS = {"pop": ((str,), True), "latency": ((int,), True), "filter": ((str,), True)}
_POP_FIELDS = {"name": ((str,), True), "model": ((str,), True), "kind": ((str,), True), "size": ((int,), True),
               "latency": ((int,), True), "compare": ((str,), False), "grid": ((list, type(None)), False),
               "max_summed": ((list, type(None)), False)}
_PROJ_FIELDS = {"name": ((str,), True), "pre": ((str,), True), "post": ((str,), True),
                "receptor": ((str,), True), "delay": ((int,), True), "conv": ((dict, type(None)), False)}
_CONV_FIELDS = {"in_shape": 3, "out_shape": 3, "stride": 2, "padding": 2, "dilation": 2}
_SOURCE_FIELDS = {"name": ((str,), True), "kind": ((str,), True), "size": ((int,), True),
                  "first_tick": ((list,), False), "offset": ((int,), False), "grid": ((list, type(None)), False)}


def _check_fields(d, fields: dict, prefix: str, file: str) -> None:
    if not isinstance(d, dict):
        raise NeuroCompileError(f"field '{prefix.rstrip('.') or 'program'}' must be an object, got "
                                f"{type(d).__name__}", file=file)
    for name, (types, required) in fields.items():
        if name not in d:
            if required:
                raise NeuroCompileError(f"field '{prefix}{name}' is missing", file=file)
            continue
        v = d[name]
        if (isinstance(v, bool) and bool not in types) or not isinstance(v, types):
            raise NeuroCompileError(f"field '{prefix}{name}' must be {types[0].__name__}, got {type(v).__name__}",
                                    file=file)
        if types == (int,) and name in ("size", "latency", "delay", "time_scale_factor") and v < 0:
            raise NeuroCompileError(f"field '{prefix}{name}' must be >= 0, got {v}", file=file)


def _groups(doc: dict, pops: list, sources: list, file: str) -> dict[str, list[str]]:
    """``groups``: graph node -> names of existing populations/sources."""
    names = {p.name for p in pops} | {s.name for s in sources}
    out = {}
    for k, v in doc.get("groups", {}).items():
        if not (isinstance(v, list) and v and all(isinstance(x, str) and x in names for x in v)):
            raise NeuroCompileError(f"field 'groups.{k}' must list populations of the program", file=file)
        out[k] = list(v)
    return out


def _check_conv(pr: "Projection", sizes: dict, where: str, file: str) -> None:
    """A conv projection's geometry: the fields, integer lists of the right lengths, a kernel
    matching them, and populations of the sizes it implies."""
    geo = pr.conv
    for k, n in _CONV_FIELDS.items():
        v = geo.get(k)
        if not (isinstance(v, list) and len(v) == n and all(isinstance(x, int) and not isinstance(x, bool)
                                                           and x >= 0 for x in v)):
            raise NeuroCompileError(f"field '{where}.{k}' must be a list of {n} non-negative integers", file=file)
    g = geo.get("groups")
    if not isinstance(g, int) or isinstance(g, bool) or g < 1 or geo.get("connector") not in C.CONNECTORS:
        raise NeuroCompileError(f"field '{where}': groups must be an integer >= 1 and connector one of "
                                f"{list(C.CONNECTORS)}", file=file)
    extra = sorted(set(geo) - set(_CONV_FIELDS) - {"groups", "connector"})
    if extra:
        raise NeuroCompileError(f"field '{where}' has unknown fields {extra}", file=file)
    k = pr.w_int
    ci, co = geo["in_shape"][0], geo["out_shape"][0]
    if (k.ndim != 4 or pr.weight.shape != k.shape or k.shape[0] != co or co % g or ci % g or k.shape[1] * g != ci
            or min(geo["stride"] + geo["dilation"]) < 1):
        raise NeuroCompileError(f"field '{where}': kernel {list(k.shape)} does not match the geometry", file=file)
    want = list(C.conv_out_shape(k.shape, geo["in_shape"], geo["stride"], geo["padding"], geo["dilation"]))
    if want != geo["out_shape"] or min(want[1:]) < 1:
        raise NeuroCompileError(f"field '{where}': out_shape {geo['out_shape']} is not the conv's {want}", file=file)
    if sizes.get(pr.pre) != C.n_pre(geo) or sizes.get(pr.post) != C.n_post(geo):
        raise NeuroCompileError(f"field '{where}': the shapes do not match populations '{pr.pre}' and "
                                f"'{pr.post}'", file=file)


def _no_extra(d: dict, allowed: set, where: str, file: str) -> None:
    extra = sorted(set(d) - allowed)
    if extra:
        raise NeuroCompileError(f"field '{where}' has unknown fields {extra}", file=file)


def _plain(obj):
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return obj


# -- sPyNNaker's host-side rules ----------------------------------------------------------------
def spikes_per_tick(timestep_ms: float, spikes_per_second: float = DEFAULT_SPIKES_PER_SECOND) -> float:
    return max(1.0, spikes_per_second / (1000.0 / timestep_ms))


def shift_for(max_weight: float) -> int:
    """``get_ring_buffer_shifts``' power rule for one synapse type."""
    if max_weight <= 0:
        return 0
    p = int(math.ceil(max(0.0, math.log2(max_weight))))
    return p + 1 if 2.0 ** p <= max_weight else p


def max_summed_weight(weights: list[tuple[np.ndarray, np.ndarray]], timestep_ms: float) -> float:
    """Worst-case ring-buffer sum of one synapse type: ``[(abs weights, post indices), ...]`` one
    entry per projection into it."""
    pairs = []
    for w, post in weights:
        if len(w) == 0:
            continue
        pairs.append((float(np.max(np.abs(w))), int(np.bincount(np.asarray(post, dtype=np.int64)).max())))
    return summed_bound(pairs, timestep_ms)


def summed_bound(pairs: list[tuple[float, int]], timestep_ms: float) -> float:
    """``sum spikes_per_tick * max|w| * n`` over ``[(max |w|, largest fan-in n), ...]``, one entry
    per projection (the same sum as :func:`max_summed_weight`, from sparse or conv structures)."""
    total = 0.0
    for wmax, n in pairs:
        if n:
            total += spikes_per_tick(timestep_ms) * float(wmax) * n
    return total


def weight_words(weight_nA: np.ndarray, shift: int) -> np.ndarray:
    """The 16-bit synaptic weights sPyNNaker writes for float weights (nA) and a shift."""
    scaled = np.abs(np.asarray(weight_nA, dtype=np.float64)) * 2.0 ** (15 - shift)
    return (np.rint(scaled).astype(np.int64) & 0xFFFF).astype(np.int64)


def predict_shifts(program_like_projections: list[Projection], populations: list[str],
                   timestep_ms: float, max_summed: dict | None = None) -> dict[str, list[int]]:
    """Predicted [excitatory, inhibitory] left shifts of every population; a population in
    ``max_summed`` ({name: [exc, inh] nA}, its ``max_expected_summed_weight``) takes the power
    rule of those values (``get_ring_buffer_shifts``; the global weight scale of current and
    delta inputs is 1)."""
    out = {}
    for pop in populations:
        if max_summed and pop in max_summed:
            out[pop] = [shift_for(float(w)) for w in max_summed[pop]]
            continue
        shifts = []
        for rec in RECEPTORS:
            ws = [(float(np.max(np.abs(pr.weight))), pr.fan_in_max()) for pr in program_like_projections
                  if pr.post == pop and pr.receptor == rec and np.size(pr.weight)]
            shifts.append(shift_for(summed_bound(ws, timestep_ms)))
        out[pop] = shifts
    return out
