"""sPyNNaker 7.4's local-only convolution cores (``ConvolutionConnector``) for kept convolutions.

Where it applies -- a group whose every input is a kept stride-1 convolution with an odd square
kernel, no dilation, ``groups == 1``, a delay of at most :data:`MAX_DELAY` ticks, not recurrent,
from the spike input or a group that the host does not drive -- the group becomes *local-only*:
one PyNN population per channel (``Grid2D``, neuron id ``y*W + x``, the C-order index of a torch
(H, W) map), each fed by one ``ConvolutionConnector`` projection per (source channel, destination
channel) with that channel pair's kernel, flipped (sPyNNaker computes a true convolution:
``local_only_conv_impl.c`` ``do_convolution_operation``), and the same zero padding. The sources
of those projections are split by channel as well (a ``SpikeSourceArray`` per input channel, or a
group's channel populations). The PyNN script merges the excitatory and inhibitory projection of
a channel pair into one connector (the sign of a word picks the receptor on the chip).

Rules that differ from a ``FromListConnector`` (see ``docs/spinnaker-conv.md``):

* the ring-buffer shift counts ``min(kH*kW, n_pre)`` connections per projection and synapse type
  whatever the kernel's zeros and the borders (``ConvolutionConnector.
  get_n_connections_to_post_vertex_maximum``); :meth:`Projection.fan_in_max` gives it for the
  ``"conv"`` connector;
* only ``IF_curr_exp`` has a local-only binary, so a LIF group becomes ``IF_curr_exp`` with
  ``tau_syn`` raw :data:`TAU_SYN_RAW`, where the chip's synaptic decay is exactly 0: each tick's
  input acts in that tick only, scaled by ``init`` (the quantizer divides the weights by it);
* a local-only population takes no other projection (biases are ``i_offset``, as everywhere).

The words and sums are those of the equivalent synapse list (the emulator runs both alike);
:func:`chip_conv_reference` replays the C loop itself, for the tests.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from neurocompile.ir import nodes as N
from neurocompile.targets.spinnaker.program import Population, Projection, Source

#: tau_syn (raw S1615) of a local-only LIF: expulr(-ts/tau) == 0 exactly, init = 413007871 / 2**32
TAU_SYN_RAW = 3151
#: delays a local-only core keeps exactly (max_support_delay >= 8 for <= 256 neurons a core)
MAX_DELAY = 8
#: tile (x, y) of a SpikeSourceArray channel on one core
SOURCE_TILE = 32


def conv_applies(s) -> bool:
    """A kept conv the ConvolutionConnector computes exactly (module docstring)."""
    c = s.conv
    if c is None or s.recurrent or len(s.in_shape) != 3:
        return False
    k = np.asarray(c.weight).shape
    return (k[2] == k[3] and k[2] % 2 == 1 and tuple(c.stride) == (1, 1) and tuple(c.dilation) == (1, 1)
            and int(c.groups) == 1 and c.padding[0] == c.padding[1] and max(s.in_shape[1:]) < 32768)


def local_only_groups(graph, syns, delays: dict, host_driven: set, inp: str, enabled: bool = True) -> set[str]:
    """The groups that become local-only conv populations."""
    if not enabled:
        return set()
    into: dict[str, list] = {}
    for s in syns:
        into.setdefault(s.post, []).append(s)
    out = set()
    for g, ss in into.items():
        node = graph.nodes[g]
        if not isinstance(node, (N.LIF, N.CubaLIF)) or g in host_driven:
            continue
        if all(conv_applies(s) and delays[id(s)] <= MAX_DELAY and s.pre not in host_driven
               and (s.pre == inp or isinstance(graph.nodes[s.pre], (N.LIF, N.CubaLIF, N.IF))) for s in ss):
            out.add(g)
    return out


def tile(H: int, W: int, per_core: int) -> tuple[int, int]:
    """Neurons per core of a channel population as sPyNNaker's per-dimension maximum (x, y)."""
    tw = min(W, 1 << int(math.log2(max(1, math.isqrt(per_core)))))
    return tw, max(1, min(H, per_core // tw))


def n_tiles(H: int, W: int, t: tuple[int, int]) -> int:
    return math.ceil(W / t[0]) * math.ceil(H / t[1])


def channel_name(node: str, c: int) -> str:
    return f"{node}[{c}]"


def split_parts(pops: list[Population], projs: list[Projection], sources: list[Source], split: dict,
                local: set[str], per_core: int):
    """The program's populations, projections and sources with every node of ``split`` ({name:
    (C, H, W)}) cut into one population (or source) per channel. Projections into ``local``
    groups become ``"conv"``-connector kernels per channel pair; others are cut by channel (a
    conv sub-kernel per channel, or the synapse list's part)."""
    new_pops = []
    for p in pops:
        if p.name not in split:
            new_pops.append(p)
            continue
        C, H, W = split[p.name]
        t = tile(H, W, per_core)
        for c in range(C):
            sl = slice(c * H * W, (c + 1) * H * W)
            new_pops.append(dataclasses.replace(
                p, name=channel_name(p.name, c), size=H * W, raw={k: v[sl] for k, v in p.raw.items()},
                refract_timer=p.refract_timer[sl], scale=p.scale[sl], offset=p.offset[sl],
                cur_scale=np.broadcast_to(p.cur_scale, (C * H * W,))[sl].copy(), grid=[H, W, t[0], t[1]]))
    new_sources = []
    for s in sources:
        if s.name not in split:
            new_sources.append(s)
            continue
        C, H, W = split[s.name]
        t = (min(W, SOURCE_TILE), min(H, SOURCE_TILE))
        for c in range(C):
            new_sources.append(dataclasses.replace(s, name=channel_name(s.name, c), size=H * W, offset=c * H * W,
                                                   grid=[H, W, t[0], t[1]]))
    new_projs = []
    for pr in projs:
        if pr.pre not in split and pr.post not in split:
            new_projs.append(pr)
        elif pr.conv is not None and (pr.post in local or pr.conv["groups"] == 1):
            new_projs += _split_conv(pr, split, pr.post in local)
        else:
            new_projs += _split_list(pr, split)
    return new_pops, new_projs, new_sources


def _channels(name: str, split: dict, shape) -> list[tuple[str, slice, tuple]]:
    """[(population name, channel slice, (1, H, W) or the whole shape)] of one side."""
    if name not in split:
        return [(name, slice(None), tuple(shape))]
    C, H, W = split[name]
    return [(channel_name(name, c), slice(c, c + 1), (1, H, W)) for c in range(C)]


def _split_conv(pr: Projection, split: dict, local: bool) -> list[Projection]:
    geo = pr.conv
    out = []
    for pre, ci, in_shape in _channels(pr.pre, split, geo["in_shape"]):
        for post, co, out_shape in _channels(pr.post, split, geo["out_shape"]):
            w, k = pr.w_int[co, ci], pr.weight[co, ci]
            if not np.any(k):
                continue
            g = dict(geo, in_shape=list(in_shape), out_shape=list(out_shape),
                     connector="conv" if local else geo["connector"])
            tag = f"[{ci.start if ci.start is not None else ''}>{co.start if co.start is not None else ''}]"
            base, _, sign = pr.name.rpartition(".")
            out.append(dataclasses.replace(pr, name=f"{base}{tag}.{sign}", pre=pre, post=post, conv=g,
                                           w_int=np.ascontiguousarray(w), weight=np.ascontiguousarray(k)))
    return out


def _split_list(pr: Projection, split: dict) -> list[Projection]:
    """A synapse list cut by source and destination channel (indices made channel-local)."""
    pre, post, w_int, weight = pr.synapses()
    hw_pre = split[pr.pre][1] * split[pr.pre][2] if pr.pre in split else None
    hw_post = split[pr.post][1] * split[pr.post][2] if pr.post in split else None
    cp = pre // hw_pre if hw_pre else np.zeros_like(pre)
    cq = post // hw_post if hw_post else np.zeros_like(post)
    out = []
    base, _, sign = pr.name.rpartition(".")
    for a in np.unique(cp):
        for b in np.unique(cq[cp == a]):
            m = (cp == a) & (cq == b)
            name_pre = channel_name(pr.pre, int(a)) if hw_pre else pr.pre
            name_post = channel_name(pr.post, int(b)) if hw_post else pr.post
            tag = f"[{int(a) if hw_pre else ''}>{int(b) if hw_post else ''}]"
            out.append(dataclasses.replace(
                pr, name=f"{base}{tag}.{sign}", pre=name_pre, post=name_post, conv=None,
                pre_idx=pre[m] - (a * hw_pre if hw_pre else 0), post_idx=post[m] - (b * hw_post if hw_post else 0),
                w_int=w_int[m], weight=weight[m]))
    return out


def local_only_bound(kernel: np.ndarray, n_pre_channel: int, spikes_per_tick: float = 1.0) -> float:
    """sPyNNaker's worst-case ring-buffer sum of the channels of a local-only group fed by
    ``kernel`` (C_out, C_in, k, k) nA: per output channel and sign, ``sum over input channels of
    max weight * min(k*k, n_pre)``; the largest."""
    k = np.asarray(kernel, dtype=np.float64)
    n = min(k.shape[2] * k.shape[3], n_pre_channel)
    pos = np.clip(k, 0, None).max(axis=(2, 3)).sum(axis=1)
    neg = np.clip(-k, 0, None).max(axis=(2, 3)).sum(axis=1)
    return float(max(pos.max(initial=0), neg.max(initial=0))) * n * spikes_per_tick


def connector_kernel(exc: Projection | None, inh: Projection | None) -> np.ndarray:
    """The float kernel (nA) the script passes to ``ConvolutionConnector`` for a channel pair:
    ``exc - inh`` (one (1, 1, k, k) kernel each), flipped in both axes, as (k, k)."""
    k = 0.0
    if exc is not None:
        k = k + exc.weight[0, 0]
    if inh is not None:
        k = k - inh.weight[0, 0]
    return np.asarray(k)[::-1, ::-1]


def chip_conv_reference(spikes: np.ndarray, kernel_words: np.ndarray, H: int, W: int, padding: int) -> np.ndarray:
    """``do_convolution_operation`` of local_only_conv_impl.c, literally, for one connector
    (stride 1, no pool): the signed words each destination (raster index ``row*W' + col``)
    receives from the spiking sources (``spikes`` (H*W,) bool) with ``kernel_words`` (k, k) the
    flipped kernel as written on the chip. Positive words go to the excitatory ring buffer,
    negative ones (negated) to the inhibitory one; returns (exc, inh) sums."""
    k = kernel_words.shape[0]
    h = k // 2
    Ho, Wo = H - (k - 1) + 2 * padding, W - (k - 1) + 2 * padding
    exc = np.zeros(Ho * Wo, dtype=np.int64)
    inh = np.zeros(Ho * Wo, dtype=np.int64)
    flat = kernel_words.reshape(-1)
    for src in np.flatnonzero(spikes):
        pre_row, pre_col = divmod(int(src), W)
        pr, pc = pre_row - h + padding, pre_col - h + padding
        for r in range(-h, h + 1):
            o_r = pr + r
            if not 0 <= o_r <= Ho - 1:
                continue
            for q in range(-h, h + 1):
                o_c = pc + q
                if not 0 <= o_c <= Wo - 1:
                    continue
                w = int(flat[(r + h) * k + (q + h)])
                if w > 0:
                    exc[o_r * Wo + o_c] += w
                elif w < 0:
                    inh[o_r * Wo + o_c] += -w
    return exc, inh
