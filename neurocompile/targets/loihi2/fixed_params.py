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

netx SDNN graphs (``metadata["loihi2_fixed"]["kind"] == "sigma_delta"``) become
``LoihiSigmaDelta`` groups with the recorded ``vth``, ``bias``, ``spike_exp``/``state_exp``, graded
Dense and Conv synapses (``num_message_bits`` of the source; dense form keeps the convs of these
graphs) and the input layer's Delta encoder run by the host (:func:`sdn_fixed_program`); a group's
scale is its message unit (64, or 4096 for a ``sigma_output`` layer).
"""
from __future__ import annotations

import numpy as np

from neurocompile.errors import UnsupportedError
from neurocompile.ir import nodes as N
from neurocompile.ir.graph import Graph
from neurocompile.targets.loihi2.connections import incoming
from neurocompile.targets.loihi2.program import LoihiConv, LoihiDense, LoihiLIF, LoihiProgram, LoihiSigmaDelta
from neurocompile.targets.loihi2.sigma_delta import check_sdn
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


def fixed_program(graph: Graph, supported: tuple, check=None, input_message_bits: int = 0):
    """(program, layers, io, report) built from the recorded integers (see the module docstring).
    ``supported``: the LIF group node types; ``check(graph)`` (:func:`.quantize.check_supported`)
    is run on LIF graphs, :func:`.sigma_delta.check_sdn` on sigma-delta graphs."""
    if graph.metadata[FIXED_KEY].get("kind") == "sigma_delta":
        return sdn_fixed_program(graph)
    if check is not None:
        check(graph)
    program, layers, rep = _lif_fixed_program(graph, supported, input_message_bits)
    return program, layers, {"encoding": "spikes"}, rep


def _lif_fixed_program(graph: Graph, supported: tuple, input_message_bits: int = 0):
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


# ------------------------------------------------------------------ sigma-delta (netx SDNN)
def _check_sdn(graph: Graph) -> None:
    """:func:`.sigma_delta.check_sdn` with the convs dense form kept (netx SDNN conv layers, which
    Lava runs as Conv; :mod:`.sigma_delta`'s own lowering folds them)."""
    convs = {n: node for n, node in graph.nodes.items() if isinstance(node, N.Conv2d)}
    if not convs:
        return check_sdn(graph)
    view = Graph(dt=graph.dt, discretization=graph.discretization)
    for n, node in graph.nodes.items():  # the same structure, each kept conv seen as a synapse matrix
        view.add(n, N.Linear(weight=np.zeros((1, 1))) if n in convs else node)
    for s, d in graph.edges:
        view.connect(s, d)
    check_sdn(view)


def sdn_fixed_program(graph: Graph):
    """(program, layers, io, report) of a netx SDNN graph from its recorded integers.

    Per sigma-delta group (``kind = "sigma_delta"``): ``vth``, ``bias`` (Lava's SigmaDelta scales
    both by ``2**(spike_exp + state_exp)``), ``act``, ``spike_exp``, ``state_exp``; its incoming
    Dense: ``weight_exp``, ``num_weight_bits``, the source's message bits ``in_message_bits`` and
    the units that relate the graph's float weight to the integers: ``w * 2**weight_exp =
    weight * state_unit / in_unit``. The input layer's Delta encoder (``metadata[...]["encoder"]``,
    ``kind = "delta"``) runs on the host exactly as Lava's ``PyDeltaModelFixed``: the input ``x``
    (netx's integers) is sent as ``delta(64 x)`` with threshold ``vth << spike_exp``, which are
    Lava's messages (``(delta(x << 12) with vth << 12) >> 6``) whenever ``x << 12`` fits int32."""
    meta = graph.metadata[FIXED_KEY]
    groups = meta["groups"]
    _check_sdn(graph)
    shapes = graph.infer_shapes()
    (inp,) = graph.inputs
    n_in = int(np.prod(shapes[inp]))
    enc = meta.get("encoder")
    if enc:
        erec = groups[enc]
        s = int(erec["spike_exp"])
        io = {"encoding": "delta", "scale": float(1 << s), "vth": [int(erec["vth"]) << s] * n_in,
              "cum_error": False, "message_bits": int(erec["num_message_bits"]), "encoder": enc}
        in_bits = int(erec["num_message_bits"])
        rep = {enc: {"host_delta": True, "vth": int(erec["vth"]), "spike_exp": s, "fixed": True,
                     "message_bits": in_bits}, "input": {"encoding": "delta", "message_unit": float(1 << s)}}
    else:
        io, in_bits, rep = {"encoding": "spikes"}, 0, {"input": {"encoding": "spikes"}}
    neurons, synapses, layers = [], [], {}
    for name, node in graph.nodes.items():
        if not isinstance(node, N.SigmaDelta):
            continue
        rec = groups.get(name)
        if rec is None or rec.get("kind") != "sigma_delta":
            raise UnsupportedError("no recorded Loihi integers for this group (the graph was changed after "
                                   "import)", node=name)
        size = int(np.prod(shapes[name]))
        vth, se, st = int(rec["vth"]), int(rec["spike_exp"]), int(rec["state_exp"])
        bias = _bias(rec, size, name)
        if not np.allclose(np.ravel(node.vth), vth) or not np.array_equal(
                np.broadcast_to(node.bias, shapes[name]).reshape(-1), bias.astype(np.float64)):
            raise UnsupportedError("vth/bias are no longer the recorded Loihi integers (the graph was changed "
                                   "after import)", node=name)
        neurons.append(LoihiSigmaDelta(name=name, size=size, vth=vth, bias=bias, act_mode=str(rec["act"]),
                                       cum_error=False, spike_exp=se, state_exp=st))
        for c in incoming(graph, name, shapes):
            unit = float(rec["state_unit"]) / float(rec["in_unit"])
            nmb = in_bits if c.src == "input" else int(rec["in_message_bits"])
            if c.is_conv and rec.get("synapse") == "conv":
                syn = c.node
                synapses.append(LoihiConv(name=c.name, src=c.src, dst=name,
                                          weights=_ints(np.asarray(syn.weight) * unit, "conv weights", c.name),
                                          in_shape=tuple(shapes[c.src_node]), stride=tuple(syn.stride),
                                          padding=tuple(syn.padding), dilation=tuple(syn.dilation),
                                          groups=int(syn.groups), num_message_bits=nmb))
                rep[c.name] = {"fixed": True, "kind": "conv", "num_message_bits": nmb}
                continue
            if c.is_conv or rec.get("synapse") != "dense":
                raise UnsupportedError("a netx conv into a sigma-delta layer was folded into a dense matrix (Lava's "
                                       "Conv keeps the integer kernel and wraps its sums to 24 bits; an 8-bit Dense "
                                       "cannot): it is not expressible as recorded", node=c.name)
            exp, nwb = int(rec["weight_exp"]), int(rec["num_weight_bits"])
            w = _ints(np.asarray(c.node.weight) * unit / 2.0 ** exp, "weights", c.name)
            d = LoihiDense(name=c.name, src=c.src, dst=name, weights=w, weight_exp=exp, num_weight_bits=nwb,
                           delays=c.delays, num_message_bits=nmb)
            if not np.array_equal(d.effective_weights(), w):
                raise UnsupportedError("the recorded weights change under Lava's sign-mode truncation", node=c.name)
            synapses.append(d)
            rep[c.name] = {"fixed": True, "kind": "dense", "weight_exp": exp, "num_weight_bits": nwb,
                           "num_message_bits": nmb,
                           **({"max_delay": int(c.delays.max())} if c.delays is not None else {})}
        lrep = {"kind": "sigma_delta", "vth": vth, "state_exp": st, "spike_exp": se, "act": str(rec["act"]),
                "fixed": True, "source": meta.get("format"), "message_unit": float(rec["message_unit"]),
                **({"sigma_output": True} if rec.get("sigma_output") else {})}
        rep[name] = lrep
        layers[name] = LayerQuant(name=name, scale=np.full(size, float(rec["message_unit"])), vth=vth, du=0, dv=0,
                                  report=lrep)
    program = LoihiProgram(n_inputs=n_in, neurons=neurons, synapses=synapses, input_message_bits=in_bits)
    return program, layers, io, rep
