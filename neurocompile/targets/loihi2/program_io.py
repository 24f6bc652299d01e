"""Files of the Loihi 2 program format: ``program.json`` + ``arrays.npz``.

A program directory holds ``program.json`` (scalars, versioned) and
``arrays.npz`` (integer arrays, loaded with ``allow_pickle=False``).
Programs using only LIF + plain Dense with binary input are written as
format version 1 (readable by older code); anything else is version 2.
Both versions load.  :class:`~.program.LoihiProgram` ``save``/``load``/
``to_json_and_arrays`` are these functions (``program`` is the program).

Standard library and numpy only, relative imports only (the Lava
interpreter loads the program layer by path; see :mod:`.program_base`).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from typing import Dict, Tuple

import numpy as np

from .program_neurons import LoihiLIF, LoihiSigmaDelta
from .program_synapses import LoihiConv, LoihiDense

FORMAT_NAME = "neurocompile.loihi_program"
FORMAT_VERSION = 2          # newest version this module writes/reads
SUPPORTED_VERSIONS = (1, 2)
JSON_NAME = "program.json"
NPZ_NAME = "arrays.npz"


def to_json_and_arrays(program) -> Tuple[dict, Dict[str, np.ndarray]]:
    """Split ``program`` into a JSON-able dict and a dict of int64 arrays.

    Version-1 programs (see :meth:`format_version`) produce exactly the
    version-1 layout; version 2 adds ``kind`` to every group and
    connection and the new fields.
    """
    v2 = program.format_version() >= 2
    arrays: Dict[str, np.ndarray] = {}
    neurons = []
    for i, n in enumerate(program.neurons):
        if isinstance(n, LoihiSigmaDelta):
            d = dict(kind="sigma_delta", name=n.name, size=int(n.size),
                     vth=int(n.vth), act_mode=str(n.act_mode),
                     cum_error=bool(n.cum_error),
                     spike_exp=int(n.spike_exp),
                     state_exp=int(n.state_exp), probe=bool(n.probe),
                     bias=None)
            if n.bias is not None:
                d["bias"] = key = f"neuron{i}_bias"
                arrays[key] = np.asarray(n.bias, dtype=np.int64)
            neurons.append(d)
            continue
        key = f"neuron{i}_bias_mant"
        arrays[key] = np.asarray(n.bias_mant, dtype=np.int64)
        d = dict(name=n.name, size=int(n.size), du=int(n.du),
                 dv=int(n.dv), vth=int(n.vth), bias_exp=int(n.bias_exp),
                 probe=bool(n.probe), bias_mant=key)
        if v2:
            d["kind"] = "lif"
        neurons.append(d)
    synapses = []
    for i, s in enumerate(program.synapses):
        key = f"synapse{i}_weights"
        arrays[key] = np.asarray(s.weights, dtype=np.int64)
        if isinstance(s, LoihiConv):
            synapses.append(dict(
                kind="conv", name=s.name, src=s.src, dst=s.dst,
                weights=key, in_shape=[int(v) for v in s.in_shape],
                stride=[int(v) for v in s.stride],
                padding=[int(v) for v in s.padding],
                dilation=[int(v) for v in s.dilation],
                groups=int(s.groups), weight_exp=int(s.weight_exp),
                num_weight_bits=int(s.num_weight_bits),
                num_message_bits=int(s.num_message_bits)))
            continue
        d = dict(name=s.name, src=s.src, dst=s.dst,
                 weight_exp=int(s.weight_exp),
                 num_weight_bits=int(s.num_weight_bits), weights=key)
        if v2:
            d.update(kind="dense", sparse=bool(s.sparse),
                     num_message_bits=int(s.num_message_bits),
                     delays=None)
            if s.delays is not None:
                d["delays"] = dkey = f"synapse{i}_delays"
                arrays[dkey] = np.asarray(s.delays, dtype=np.int64)
        synapses.append(d)
    doc = {"format": FORMAT_NAME, "version": 2 if v2 else 1,
           "n_inputs": int(program.n_inputs), "neurons": neurons,
           "synapses": synapses}
    if v2:
        doc["input_message_bits"] = int(program.input_message_bits)
    return doc, arrays


def save(program, dirpath: str) -> None:
    """Validate, then write ``program.json`` + ``arrays.npz`` atomically.

    Each file is written to a temporary file in ``dirpath`` and moved in
    place with ``os.replace``; the npz goes first and its SHA-256 is
    recorded in the JSON, so a reader never pairs mismatched files.
    """
    program.validate()
    doc, arrays = program.to_json_and_arrays()
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    blob = buf.getvalue()
    doc["arrays_sha256"] = hashlib.sha256(blob).hexdigest()
    os.makedirs(dirpath, exist_ok=True)
    _atomic_write(os.path.join(dirpath, NPZ_NAME), blob)
    text = json.dumps(doc, indent=1, sort_keys=True).encode()
    _atomic_write(os.path.join(dirpath, JSON_NAME), text)


class ProgramFormatError(ValueError):
    """A program directory that does not follow the format; ``file`` and
    ``field`` say where (``str(err)`` names both)."""

    def __init__(self, file: str, reason: str, field: str = ""):
        self.file, self.field = file, field
        self.reason = f"field {field!r}: {reason}" if field else reason
        super().__init__(f"{file}: {self.reason}")


#: kind -> {field: (JSON types, required)}; "array" names an entry of arrays.npz
_INT, _STR, _BOOL, _LIST = (int,), (str,), (bool,), (list,)
_NEURON_FIELDS = {
    "lif": {"name": (_STR, True), "size": (_INT, True), "du": (_INT, True),
            "dv": (_INT, True), "vth": (_INT, True), "bias_mant": ("array", True),
            "bias_exp": (_INT, True), "probe": (_BOOL, True)},
    "sigma_delta": {"name": (_STR, True), "size": (_INT, True),
                    "vth": (_INT, True), "bias": ("array-or-null", False),
                    "act_mode": (_STR, True), "cum_error": (_BOOL, True),
                    "spike_exp": (_INT, True), "state_exp": (_INT, True),
                    "probe": (_BOOL, True)},
}
_SYNAPSE_FIELDS = {
    "dense": {"name": (_STR, True), "src": (_STR, True), "dst": (_STR, True),
              "weights": ("array", True), "weight_exp": (_INT, True),
              "num_weight_bits": (_INT, True),
              "num_message_bits": (_INT, False),
              "delays": ("array-or-null", False), "sparse": (_BOOL, False)},
    "conv": {"name": (_STR, True), "src": (_STR, True), "dst": (_STR, True),
             "weights": ("array", True), "in_shape": (_LIST, True),
             "stride": (_LIST, True), "padding": (_LIST, True),
             "dilation": (_LIST, True), "groups": (_INT, True),
             "weight_exp": (_INT, True), "num_weight_bits": (_INT, True),
             "num_message_bits": (_INT, True)},
}


def _regular(path: str) -> None:
    """Refuse a missing file, a FIFO, a device or a directory before
    opening it (opening a FIFO blocks)."""
    import stat

    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ProgramFormatError(path, "file is missing") from None
    except OSError as err:
        raise ProgramFormatError(path, f"cannot read: {err.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise ProgramFormatError(path, "not a regular file")


def _check_entry(d, fields: dict, where: str, file: str, arrays) -> None:
    if not isinstance(d, dict):
        raise ProgramFormatError(file, f"must be an object, got "
                                 f"{type(d).__name__}", where)
    for field, (types, required) in fields.items():
        name = f"{where}.{field}"
        if field not in d:
            if required:
                raise ProgramFormatError(file, "is missing", name)
            continue
        v = d[field]
        if types in ("array", "array-or-null"):
            if v is None and types == "array-or-null":
                continue
            if not isinstance(v, str) or v not in arrays:
                raise ProgramFormatError(
                    file, f"names array {v!r}, which {NPZ_NAME} does not "
                    f"hold", name)
            if arrays[v].dtype.kind not in "biu":
                raise ProgramFormatError(
                    file, f"array {v!r} has dtype {arrays[v].dtype}, not "
                    f"integer", name)
            continue
        if types is _LIST:
            ok = isinstance(v, list) and all(
                isinstance(x, int) and not isinstance(x, bool) for x in v)
        elif types is _INT:
            ok = isinstance(v, int) and not isinstance(v, bool)
        else:
            ok = isinstance(v, types)
        if not ok:
            raise ProgramFormatError(
                file, f"must be {types[0].__name__}"
                f"{' of ints' if types is _LIST else ''}, got "
                f"{type(v).__name__}", name)


def load(cls, dirpath: str):
    """Read a program written by :func:`save` (version 1 or 2) as a
    ``cls`` (:class:`~.program.LoihiProgram`) and validate it.

    Every field is checked (presence, JSON type, array references, the
    checksum of ``arrays.npz`` when recorded) before use; failures raise
    :class:`ProgramFormatError` (a ValueError) naming the file and field.
    """
    jpath = os.path.join(dirpath, JSON_NAME)
    npath = os.path.join(dirpath, NPZ_NAME)
    _regular(jpath)
    try:
        with open(jpath, "rb") as f:
            doc = json.loads(f.read().decode())
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise ProgramFormatError(jpath, f"not valid JSON: {err}") from None
    if not isinstance(doc, dict):
        raise ProgramFormatError(jpath, "must be a JSON object")
    if doc.get("format") != FORMAT_NAME:
        raise ProgramFormatError(jpath, f"not a {FORMAT_NAME} file", "format")
    version = doc.get("version")
    if isinstance(version, bool) or version not in SUPPORTED_VERSIONS:
        raise ProgramFormatError(jpath, f"unsupported version {version!r} "
                                 f"(want one of {SUPPORTED_VERSIONS})",
                                 "version")
    _regular(npath)
    with open(npath, "rb") as f:
        blob = f.read()
    want = doc.get("arrays_sha256")
    if want is not None and not isinstance(want, str):
        raise ProgramFormatError(jpath, "must be a hex string",
                                 "arrays_sha256")
    if want is not None and hashlib.sha256(blob).hexdigest() != want:
        raise ProgramFormatError(jpath, f"{NPZ_NAME} does not match "
                                 f"{JSON_NAME} (checksum)", "arrays_sha256")
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as err:  # noqa: BLE001 - BadZipFile, EOFError, ...
        raise ProgramFormatError(
            npath, f"corrupt: {type(err).__name__}: {err}") from None
    for field, types in (("n_inputs", _INT), ("neurons", _LIST),
                         ("synapses", _LIST),
                         ("input_message_bits", _INT)):
        if field not in doc:
            if field == "input_message_bits":
                continue
            raise ProgramFormatError(jpath, "is missing", field)
        v = doc[field]
        if isinstance(v, bool) or not isinstance(v, types):
            raise ProgramFormatError(jpath, f"must be {types[0].__name__}",
                                     field)
    for i, d in enumerate(doc["neurons"]):
        kind = d.get("kind", "lif") if isinstance(d, dict) else None
        if kind not in _NEURON_FIELDS:
            raise ProgramFormatError(jpath, f"unknown neuron kind {kind!r}",
                                     f"neurons[{i}].kind")
        _check_entry(d, _NEURON_FIELDS[kind], f"neurons[{i}]", jpath, arrays)
    for i, d in enumerate(doc["synapses"]):
        kind = d.get("kind", "dense") if isinstance(d, dict) else None
        if kind not in _SYNAPSE_FIELDS:
            raise ProgramFormatError(jpath, f"unknown synapse kind {kind!r}",
                                     f"synapses[{i}].kind")
        _check_entry(d, _SYNAPSE_FIELDS[kind], f"synapses[{i}]", jpath,
                     arrays)
    neurons = []
    for d in doc["neurons"]:
        kind = d.get("kind", "lif")
        if kind == "lif":
            neurons.append(LoihiLIF(
                name=d["name"], size=d["size"], du=d["du"], dv=d["dv"],
                vth=d["vth"], bias_mant=arrays[d["bias_mant"]],
                bias_exp=d["bias_exp"], probe=d["probe"]))
        elif kind == "sigma_delta":
            neurons.append(LoihiSigmaDelta(
                name=d["name"], size=d["size"], vth=d["vth"],
                bias=(None if d.get("bias") is None
                      else arrays[d["bias"]]),
                act_mode=d["act_mode"], cum_error=d["cum_error"],
                spike_exp=d["spike_exp"], state_exp=d["state_exp"],
                probe=d["probe"]))
    synapses = []
    for d in doc["synapses"]:
        kind = d.get("kind", "dense")
        if kind == "dense":
            synapses.append(LoihiDense(
                name=d["name"], src=d["src"], dst=d["dst"],
                weights=arrays[d["weights"]],
                weight_exp=d["weight_exp"],
                num_weight_bits=d["num_weight_bits"],
                num_message_bits=d.get("num_message_bits", 0),
                delays=(None if d.get("delays") is None
                        else arrays[d["delays"]]),
                sparse=d.get("sparse", False)))
        elif kind == "conv":
            synapses.append(LoihiConv(
                name=d["name"], src=d["src"], dst=d["dst"],
                weights=arrays[d["weights"]],
                in_shape=tuple(d["in_shape"]),
                stride=tuple(d["stride"]), padding=tuple(d["padding"]),
                dilation=tuple(d["dilation"]), groups=d["groups"],
                weight_exp=d["weight_exp"],
                num_weight_bits=d["num_weight_bits"],
                num_message_bits=d["num_message_bits"]))
    prog = cls(n_inputs=doc["n_inputs"], neurons=neurons,
               synapses=synapses,
               input_message_bits=doc.get("input_message_bits", 0))
    try:
        prog.validate()
    except ValueError as err:
        raise ProgramFormatError(jpath, f"invalid program: {err}") from None
    return prog


def _atomic_write(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same dir + replace."""
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=d)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


__all__ = ["ProgramFormatError", "FORMAT_NAME", "FORMAT_VERSION", "SUPPORTED_VERSIONS",
           "JSON_NAME", "NPZ_NAME", "to_json_and_arrays", "save", "load"]
