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


def load(cls, dirpath: str):
    """Read a program written by :func:`save` (version 1 or 2) as a
    ``cls`` (:class:`~.program.LoihiProgram`) and validate it."""
    with open(os.path.join(dirpath, JSON_NAME), "rb") as f:
        doc = json.loads(f.read().decode())
    if doc.get("format") != FORMAT_NAME:
        raise ValueError(f"{dirpath}: not a {FORMAT_NAME} file")
    if doc.get("version") not in SUPPORTED_VERSIONS:
        raise ValueError(f"{dirpath}: unsupported version "
                         f"{doc.get('version')!r} (want one of "
                         f"{SUPPORTED_VERSIONS})")
    with open(os.path.join(dirpath, NPZ_NAME), "rb") as f:
        blob = f.read()
    want = doc.get("arrays_sha256")
    if want is not None and hashlib.sha256(blob).hexdigest() != want:
        raise ValueError(f"{dirpath}: {NPZ_NAME} does not match "
                         f"{JSON_NAME} (checksum)")
    with np.load(io.BytesIO(blob), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
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
        else:
            raise ValueError(f"{dirpath}: unknown neuron kind {kind!r}")
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
        else:
            raise ValueError(f"{dirpath}: unknown synapse kind {kind!r}")
    prog = cls(n_inputs=doc["n_inputs"], neurons=neurons,
               synapses=synapses,
               input_message_bits=doc.get("input_message_bits", 0))
    prog.validate()
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


__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "SUPPORTED_VERSIONS",
           "JSON_NAME", "NPZ_NAME", "to_json_and_arrays", "save", "load"]
