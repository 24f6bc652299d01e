"""Loihi 2 programs from integers a frontend recorded (no requantization).

Some models arrive already in Loihi's fixed-point units: lava-dl netx files
(:mod:`neurocompile.frontends.netx`) hold ``iDecay``, ``vDecay``, ``vThMant``, integer biases and
8-bit weights with exponents. Their graph carries the float parameters (for the float reference
and SpiNNaker) and ``graph.metadata["loihi2_fixed"]["groups"]``: per neuron group ``du``, ``dv``,
``vth``, ``bias`` (per neuron, per channel or one value; ``bias_exp``), and for its incoming
synapse the kind (``dense``/``conv``), ``weight_exp`` and ``num_weight_bits``. The graph's synapse
weights are exactly ``W_eff * 2**weight_exp`` (dense) or the integer kernel (conv), so the
integers are recovered without rounding; anything else is an error naming the group (a pass or an
edit changed the graph so that the recorded integers no longer describe it).

The float units of such a graph are the chip's divided by 64 (``v = v_int / 64``), so every
group's scale is 64.
"""
from __future__ import annotations

import numpy as np

from neurocompile.errors import UnsupportedError
from neurocompile.ir.graph import Graph
from neurocompile.targets.loihi2.connections import incoming
from neurocompile.targets.loihi2.program import LoihiConv, LoihiDense, LoihiLIF, LoihiProgram
from neurocompile.targets.loihi2.weights import LayerQuant

FIXED_KEY = "loihi2_fixed"
V_UNIT = 64.0  # integer v per float v unit


def has_fixed(graph: Graph) -> bool:
    return bool((graph.metadata.get(FIXED_KEY) or {}).get("groups"))


def _ints(values: np.ndarray, what: str, node: str) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    r = np.round(v)
    if not np.array_equal(v, r):
        raise UnsupportedError(f"{what} are no longer the recorded Loihi integers (the graph was changed after "
                               f"import)", node=node)
    return r.astype(np.int64)


def _bias(rec: dict, size: int, node: str) -> np.ndarray:
    b = np.asarray(rec.get("bias") or [0], dtype=np.int64).reshape(-1)
    if b.size == size:
        return b
    if b.size == 1 or size % b.size == 0:  # one value, or per channel of a (C, H, W) group (C order)
        return np.repeat(b, size // b.size)
    raise UnsupportedError(f"recorded bias of {b.size} values does not fit a group of {size}", node=node)


def fixed_program(graph: Graph, supported: tuple, input_message_bits: int = 0):
    """(program, layers, report) built from the recorded integers (see the module docstring).
    ``supported``: the group node types (the caller, :mod:`.quantize`, has checked the graph)."""
    groups = graph.metadata[FIXED_KEY]["groups"]
    shapes = graph.infer_shapes()
    (inp,) = graph.inputs
    neurons, synapses, layers, rep = [], [], {}, {}
    for name, node in graph.nodes.items():
        if not isinstance(node, supported):
            continue
        rec = groups.get(name)
        if rec is None:
            raise UnsupportedError("no recorded Loihi integers for this group (the graph was changed after "
                                   "import)", node=name)
        size = int(np.prod(shapes[name]))
        du, dv, vth = int(rec["du"]), int(rec["dv"]), int(rec["vth"])
        neurons.append(LoihiLIF(name=name, size=size, du=du, dv=dv, vth=vth, bias_mant=_bias(rec, size, name),
                                bias_exp=int(rec.get("bias_exp", 6))))
        for c in incoming(graph, name, shapes):
            nmb = int(input_message_bits) if c.src == "input" else 0
            if c.is_conv:
                if rec.get("synapse") != "conv":
                    raise UnsupportedError("recorded as a dense synapse but the graph holds a conv", node=c.name)
                syn = c.node
                synapses.append(LoihiConv(name=c.name, src=c.src, dst=name,
                                          weights=_ints(syn.weight, "conv weights", c.name),
                                          in_shape=tuple(shapes[c.src_node]), stride=tuple(syn.stride),
                                          padding=tuple(syn.padding), dilation=tuple(syn.dilation),
                                          groups=int(syn.groups), num_message_bits=nmb))
                rep[c.name] = {"fixed": True, "kind": "conv"}
                continue
            if rec.get("synapse") != "dense":
                raise UnsupportedError("a netx conv was folded into a dense matrix (Lava's Conv keeps the kernel "
                                       "exact; an 8-bit Dense cannot): it is not expressible as recorded",
                                       node=c.name)
            exp, nwb = int(rec["weight_exp"]), int(rec["num_weight_bits"])
            w = _ints(np.asarray(c.node.weight) / 2.0 ** exp, "weights", c.name)
            d = LoihiDense(name=c.name, src=c.src, dst=name, weights=w, weight_exp=exp, num_weight_bits=nwb,
                           delays=c.delays, num_message_bits=nmb)
            if not np.array_equal(d.effective_weights(), w):
                raise UnsupportedError("the recorded weights change under Lava's sign-mode truncation", node=c.name)
            synapses.append(d)
            rep[c.name] = {"fixed": True, "kind": "dense", "weight_exp": exp, "num_weight_bits": nwb,
                           **({"max_delay": int(c.delays.max())} if c.delays is not None else {})}
        lrep = {"vth": vth, "du": du, "dv": dv, "fixed": True, "source": graph.metadata[FIXED_KEY].get("format")}
        rep[name] = lrep
        layers[name] = LayerQuant(name=name, scale=np.full(size, V_UNIT), vth=vth, du=du, dv=dv, report=lrep)
    program = LoihiProgram(n_inputs=int(np.prod(shapes[inp])), neurons=neurons, synapses=synapses,
                           input_message_bits=int(input_message_bits))
    return program, layers, rep
