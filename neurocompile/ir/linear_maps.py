"""Stateless linear nodes as what they are: index maps, convolutions and sparse matrices.

Chips and passes need the matrix of a chain of linear nodes (Linear, Affine, Scale, Conv, pooling,
Flatten) or, better, to keep it structured. Building that matrix by applying the chain to the unit
vectors costs ``n_in x n_in`` floats (a 65,536-value Flatten becomes a 32 GiB identity matrix);
everything here costs what the connectivity really holds:

* ``Flatten`` and ``Identity`` are index maps. In the flat C-order layout every target uses, a
  flatten moves no element, so it is the identity and is skipped (:func:`index_map`).
* ``Conv1d``/``Conv2d`` and ``SumPool2d``/``AvgPool2d`` (a depthwise convolution with a box kernel:
  :func:`pool_as_conv`) are *synapse lists*: :func:`conv_pairs` enumerates the (source,
  destination, tap) triples of the nonzero taps, in chunks of output channels
  (:func:`conv_pair_chunks`) so that no step holds more than a bounded slice of them;
  :func:`conv_tap_sums` gives per-destination sums over the taps in closed form (no pairs at all).
* Two convolutions in a row (pooling included) are one convolution when that is exact
  (:func:`compose_convs`, :func:`chain_as_conv`): the second must have no padding, or the first
  must be a bias-free block sum (kernel = stride, no padding) that tiles its input exactly.
* Anything else becomes a ``scipy.sparse`` matrix (:func:`node_matrix`) and chains are multiplied
  sparse (:func:`compose_chain`); a product is checked against the memory budget *before* it is
  formed, from an upper bound on its stored entries.
"""
from __future__ import annotations

import math

import numpy as np

from neurocompile.ir import nodes as N
from neurocompile.utils.budget import check_alloc, fmt_bytes

#: nodes that move values without changing them (identity in the flat C-order layout)
INDEX_MAPS = (N.Flatten, N.Identity)
#: at most this many (src, dst, tap) triples are built at once by :func:`conv_pair_chunks`
PAIR_CHUNK = 1 << 22


def index_map(node: N.Node) -> bool:
    """True for nodes that only reshape (Flatten, Identity): no matrix, no copy."""
    return isinstance(node, INDEX_MAPS)


# ------------------------------------------------------------------------------ geometry
def _as_2d(weight, in_shape, stride, padding, dilation):
    """Conv1d arguments as a Conv2d of height 1 (``(C, L)`` -> ``(C, 1, L)``)."""
    w = np.asarray(weight)
    if w.ndim == 3:
        return (w[:, :, None, :], (int(in_shape[0]), 1, int(in_shape[1])), (1, int(stride[0])),
                (0, int(padding[0])), (1, int(dilation[0])))
    return w, tuple(int(v) for v in in_shape), tuple(stride), tuple(padding), tuple(dilation)


def conv_out_shape(w_shape, in_shape, stride, padding, dilation) -> tuple[int, ...]:
    out = [int(w_shape[0])]
    for n, k, s, p, d in zip(in_shape[1:], w_shape[2:], stride, padding, dilation):
        out.append((int(n) + 2 * int(p) - int(d) * (int(k) - 1) - 1) // int(s) + 1)
    return tuple(out)


def _axis_valid(n_in: int, n_out: int, k: int, s: int, p: int, d: int) -> np.ndarray:
    """(k, n_out) bool: tap i of output position o reads an input inside [0, n_in)."""
    pos = np.arange(n_out)[None, :] * s + np.arange(k)[:, None] * d - p
    return (pos >= 0) & (pos < n_in)


def conv_pairs(weight, in_shape, stride, padding, dilation, groups, channels: range | None = None):
    """Every (source, destination, tap) of a conv with a nonzero tap, as flat C-order indices:
    ``(src, dst, tap)`` int64 arrays (``tap`` indexes ``weight.ravel()``). ``channels`` limits
    the output channels (see :func:`conv_pair_chunks`). Conv1d weights (3-D) are accepted."""
    w3 = np.asarray(weight)
    w, in_shape, stride, padding, dilation = _as_2d(w3, in_shape, stride, padding, dilation)
    co, cig, kh, kw = w.shape
    C, H, W = in_shape
    _, Ho, Wo = conv_out_shape(w.shape, in_shape, stride, padding, dilation)
    og = co // int(groups)
    flat = w.reshape(-1)
    if channels is None:
        taps = np.flatnonzero(flat)
    else:
        lo, hi = channels.start * cig * kh * kw, channels.stop * cig * kh * kw
        taps = lo + np.flatnonzero(flat[lo:hi])
    o, rem = np.divmod(taps, cig * kh * kw)
    c, rem = np.divmod(rem, kh * kw)
    i, j = np.divmod(rem, kw)
    cin = (o // og) * cig + c
    oy, ox = (a.reshape(-1) for a in np.meshgrid(np.arange(Ho), np.arange(Wo), indexing="ij"))
    iy = oy[None, :] * stride[0] + i[:, None] * dilation[0] - padding[0]
    ix = ox[None, :] * stride[1] + j[:, None] * dilation[1] - padding[1]
    ok = (iy >= 0) & (iy < H) & (ix >= 0) & (ix < W)
    src = (cin[:, None] * H + iy) * W + ix
    dst = (o[:, None] * Ho + oy[None, :]) * Wo + ox[None, :]
    tap = np.broadcast_to(taps[:, None], ok.shape)
    return src[ok], dst[ok], tap[ok]


def conv_pair_chunks(weight, in_shape, stride, padding, dilation, groups, max_pairs: int = PAIR_CHUNK):
    """:func:`conv_pairs` in slices of whole output channels, each of at most about ``max_pairs``
    triples (one channel at least): memory bounded whatever the layer's size."""
    w, in2, st, pad, dil = _as_2d(weight, in_shape, stride, padding, dilation)
    per_channel = max(1, int(np.prod(w.shape[1:])) * int(np.prod(conv_out_shape(w.shape, in2, st, pad, dil)[1:])))
    step = max(1, max_pairs // per_channel)
    for lo in range(0, w.shape[0], step):
        yield conv_pairs(weight, in_shape, stride, padding, dilation, groups, range(lo, min(w.shape[0], lo + step)))


def conv_tap_sums(weight, in_shape, stride, padding, dilation, groups, values=None) -> np.ndarray:
    """Per destination neuron (flat), the sum of ``values`` (default: the weights; same shape as
    ``weight``) over the taps that read a position inside the input, in closed form: whether a
    tap is inside depends on the row and the column only, not on the channel."""
    w, in2, st, pad, dil = _as_2d(weight, in_shape, stride, padding, dilation)
    v = np.asarray(weight if values is None else values, dtype=np.float64)
    v = v.reshape(w.shape)
    co, _, kh, kw = w.shape
    _, Ho, Wo = conv_out_shape(w.shape, in2, st, pad, dil)
    rv = _axis_valid(in2[1], Ho, kh, st[0], pad[0], dil[0]).astype(np.float64)
    cv = _axis_valid(in2[2], Wo, kw, st[1], pad[1], dil[1]).astype(np.float64)
    per_tap = v.sum(axis=1)                                   # (co, kh, kw)
    return np.einsum("oij,iy,jx->oyx", per_tap, rv, cv).reshape(-1)


def conv_fan_out(weight, in_shape, stride, padding, dilation, groups) -> np.ndarray:
    """Per source neuron (flat), the number of destinations its nonzero taps reach, in closed form
    (a source row ``y`` feeds output row ``oy`` through tap row ``i`` iff ``oy*s + i*d - p = y``)."""
    w, in2, st, pad, dil = _as_2d(weight, in_shape, stride, padding, dilation)
    co, cig, kh, kw = w.shape
    C, H, W = in2
    _, Ho, Wo = conv_out_shape(w.shape, in2, st, pad, dil)

    def reach(n_in, n_out, k, s, p, d):
        pos = np.arange(n_in)[None, :] + p - np.arange(k)[:, None] * d          # (k, n_in) = oy * s
        return ((pos % s == 0) & (pos >= 0) & (pos // s < n_out)).astype(np.float64)

    nz = (w != 0).astype(np.float64)
    g, og = int(groups), co // int(groups)
    per_in = nz.reshape(g, og, cig, kh, kw).sum(axis=1).reshape(g * cig, kh, kw)   # (C, kh, kw)
    out = np.einsum("cij,iy,jx->cyx", per_in, reach(H, Ho, kh, st[0], pad[0], dil[0]),
                    reach(W, Wo, kw, st[1], pad[1], dil[1]))
    return np.rint(out).astype(np.int64).reshape(-1)


def conv_synapse_count(weight, in_shape, stride, padding, dilation, groups) -> int:
    """The number of (source, destination) synapses of a conv with its nonzero taps."""
    nz = (np.asarray(weight) != 0).astype(np.float64)
    return int(round(conv_tap_sums(weight, in_shape, stride, padding, dilation, groups, nz).sum()))


# ------------------------------------------------------------------------------ conv algebra
def pool_as_conv(node: N.Node, channels: int) -> N.Conv2d:
    """``SumPool2d``/``AvgPool2d`` as the depthwise conv it is (box kernel, ``groups=C``)."""
    kh, kw = node.kernel_size
    value = 1.0 / (kh * kw) if isinstance(node, N.AvgPool2d) else 1.0
    return N.Conv2d(weight=np.full((channels, 1, kh, kw), value), stride=tuple(node.stride),
                    padding=tuple(node.padding), dilation=1, groups=channels)


def _full_weight(conv: N.Conv2d) -> np.ndarray:
    """The (C_out, C_in, kH, kW) weight of a grouped conv (zeros between the groups)."""
    w = np.asarray(conv.weight, dtype=np.float64)
    g = int(conv.groups)
    if g == 1:
        return w
    co, cig = w.shape[:2]
    og = co // g
    full = np.zeros((co, cig * g) + w.shape[2:])
    for gi in range(g):
        full[gi * og:(gi + 1) * og, gi * cig:(gi + 1) * cig] = w[gi * og:(gi + 1) * og]
    return full


def _bias(conv: N.Conv2d) -> np.ndarray:
    return np.broadcast_to(np.asarray(conv.bias, dtype=np.float64), (conv.weight.shape[0],)).copy()


def _groups_of(full: np.ndarray) -> tuple[np.ndarray, int]:
    """The grouped form of a full weight: the most groups whose off-diagonal blocks are zero."""
    co, ci = full.shape[:2]
    k = full.shape[2:]
    for g in range(math.gcd(co, ci), 1, -1):
        if co % g or ci % g:
            continue
        og, cig = co // g, ci // g
        blocks = full.reshape(g, og, g, cig, *k).transpose(0, 2, 1, 3, *range(4, 4 + len(k)))  # [a, b]: block
        if not np.any(blocks[~np.eye(g, dtype=bool)]):
            return np.concatenate([blocks[gi, gi] for gi in range(g)], axis=0), g
    return full, 1


def compose_convs(a: N.Conv2d, b: N.Conv2d, in_shape) -> N.Conv2d | None:
    """One Conv2d computing ``b(a(x))`` on inputs of ``in_shape`` exactly, or None.

    With ``a = (Wa, stride sa, padding pa, dilation da)``, ``b = (Wb, sb, pb, db)``::

        K[o, c, m] = sum_{j, q, i : m = sa*db*q + da*i} Wb[o, j, q] * Wa[j, c, i]   (per axis)

    stride ``sa*sb``, padding ``pa``, bias ``bb + sum_{j,q} Wb[o,j,q] ba[j]``. Exact when ``b``
    has no padding (every value ``b`` reads is an output of ``a``), or when ``a`` is a bias-free
    block sum (kernel = stride, no padding, dilation 1) whose stride divides the input, so that
    ``b``'s zero padding ``pb`` is ``pb*sa`` zeros of the input (then padding ``pb*sa``).
    """
    in_shape = tuple(int(v) for v in in_shape)
    if len(in_shape) != 3:
        return None
    ka, kb = a.weight.shape[2:], b.weight.shape[2:]
    if any(b.padding):
        block = (tuple(ka) == tuple(a.stride) and not any(a.padding) and tuple(a.dilation) == (1, 1)
                 and not np.any(a.bias) and all(n % s == 0 for n, s in zip(in_shape[1:], a.stride)))
        if not block:
            return None
        pad = tuple(p * s for p, s in zip(b.padding, a.stride))
    else:
        pad = tuple(a.padding)
    wa, wb = _full_weight(a), _full_weight(b)
    if wb.shape[1] != wa.shape[0]:
        return None
    span = [sa * db * (kbi - 1) + da * (kai - 1) + 1
            for sa, db, kbi, da, kai in zip(a.stride, b.dilation, kb, a.dilation, ka)]
    K = np.zeros((wb.shape[0], wa.shape[1], span[0], span[1]))
    for qh in range(kb[0]):
        for qw in range(kb[1]):
            wq = wb[:, :, qh, qw]                                  # (o, j)
            if not np.any(wq):
                continue
            for ih in range(ka[0]):
                mh = a.stride[0] * b.dilation[0] * qh + a.dilation[0] * ih
                for iw in range(ka[1]):
                    mw = a.stride[1] * b.dilation[1] * qw + a.dilation[1] * iw
                    K[:, :, mh, mw] += wq @ wa[:, :, ih, iw]
    bias = _bias(b) + wb.sum(axis=(2, 3)) @ _bias(a)
    stride = tuple(sa * sb for sa, sb in zip(a.stride, b.stride))
    mid = conv_out_shape(a.weight.shape, in_shape, a.stride, a.padding, a.dilation)
    want = conv_out_shape(b.weight.shape, mid, b.stride, b.padding, b.dilation)
    if conv_out_shape(K.shape, in_shape, stride, pad, (1, 1)) != want or min(want[1:]) < 1:
        return None
    w, g = _groups_of(K)
    return N.Conv2d(weight=w, bias=bias if np.any(bias) else 0.0, stride=stride, padding=pad, dilation=1, groups=g)


def _scaled_conv(conv: N.Conv2d, scale: np.ndarray, after: bool) -> N.Conv2d | None:
    """A conv with a per-channel ``Scale`` folded in (``after``: on its output channels)."""
    w, b = _full_weight(conv), _bias(conv)
    if after:
        w, b = w * scale[:, None, None, None], b * scale
    else:
        w = w * scale[None, :, None, None]
    w, g = _groups_of(w)
    return N.Conv2d(weight=w, bias=b if np.any(b) else 0.0, stride=tuple(conv.stride), padding=tuple(conv.padding),
                    dilation=tuple(conv.dilation), groups=g)


def _channel_scale(node: N.Scale, shape) -> np.ndarray | None:
    s = np.broadcast_to(np.asarray(node.scale, dtype=np.float64), tuple(shape)).reshape(shape[0], -1)
    return s[:, 0].copy() if np.all(s == s[:, :1]) else None


def chain_as_conv(nodes: list[N.Node], in_shape) -> N.Conv2d | None:
    """The single Conv2d a chain of Conv2d, SumPool2d, AvgPool2d and per-channel Scale nodes
    computes on ``in_shape`` = (C, H, W), exactly (per-channel scales alone: a 1x1 depthwise
    conv); None when it is not one (a Flatten, a Linear, a padded conv after a non-block
    conv, ...)."""
    shape = tuple(int(v) for v in in_shape)
    if len(shape) != 3:
        return None
    conv: N.Conv2d | None = None
    pending: np.ndarray | None = None          # a Scale before the first conv
    start = shape
    for node in nodes:
        if isinstance(node, N.Scale):
            s = _channel_scale(node, shape)
            if s is None:
                return None
            if conv is None:
                pending = s if pending is None else pending * s
            else:
                conv = _scaled_conv(conv, s, after=True)
            continue
        if isinstance(node, (N.SumPool2d, N.AvgPool2d)):
            step = pool_as_conv(node, shape[0])
        elif isinstance(node, N.Conv2d):
            step = node
        else:
            return None
        if conv is None:
            conv = step
            if pending is not None:
                conv = _scaled_conv(conv, pending, after=False)
        else:
            conv = compose_convs(conv, step, start)
            if conv is None:
                return None
        shape = conv_out_shape(conv.weight.shape, start, conv.stride, conv.padding, conv.dilation)
        if min(shape[1:]) < 1:
            return None
    if conv is None and pending is not None:     # per-channel scales only: a 1x1 depthwise conv
        conv = N.Conv2d(weight=pending.reshape(-1, 1, 1, 1), stride=1, padding=0, dilation=1, groups=shape[0])
    return conv


# ------------------------------------------------------------------------------ sparse matrices
def _sparse():
    import scipy.sparse as sp

    return sp


def node_matrix(node: N.Node, in_shape, out_shape):
    """``(M, c)`` with ``node(x) = M @ x.ravel() + c``: the dense weight of a Linear/Affine (not
    copied), a ``scipy.sparse`` csr matrix for Scale, Conv and pooling; None for index maps."""
    sp = _sparse()
    n_in, n_out = int(np.prod(in_shape)), int(np.prod(out_shape))
    if index_map(node):
        return None
    if isinstance(node, N.Linear):
        bias = getattr(node, "bias", 0.0)
        return node.weight, np.broadcast_to(np.asarray(bias, dtype=np.float64), (n_out,))
    if isinstance(node, N.Scale):
        d = np.broadcast_to(np.asarray(node.scale, dtype=np.float64), tuple(in_shape)).reshape(-1)
        return sp.diags(d, format="csr"), np.zeros(n_out)
    if isinstance(node, (N.SumPool2d, N.AvgPool2d)):
        node = pool_as_conv(node, int(in_shape[0]))
    if isinstance(node, (N.Conv1d, N.Conv2d)):
        nnz = conv_synapse_count(node.weight, in_shape, node.stride, node.padding, node.dilation, node.groups)
        check_alloc(40 * nnz, f"the {nnz} synapses of a {node.op} as a sparse matrix")
        w = np.asarray(node.weight, dtype=np.float64).reshape(-1)
        rows, cols, vals = [], [], []
        for src, dst, tap in conv_pair_chunks(node.weight, in_shape, node.stride, node.padding, node.dilation,
                                              node.groups):
            rows.append(dst)
            cols.append(src)
            vals.append(w[tap])
        M = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n_out, n_in))
        b = node.bias
        if np.ndim(b):
            per = n_out // int(node.weight.shape[0])
            c = np.repeat(np.asarray(b, dtype=np.float64), per)
        else:
            c = np.full(n_out, float(b))
        return M, c
    raise TypeError(f"{node.op} is not a linear node")


def _product_entries(A, B) -> int:
    """An upper bound on the stored entries of ``A @ B`` (sparse or dense operands)."""
    sp = _sparse()
    if not sp.issparse(A) or not sp.issparse(B):
        return int(A.shape[0]) * int(B.shape[1])
    a_cols = np.diff(A.tocsc().indptr)
    b_rows = np.diff(B.tocsr().indptr)
    return int(min(int(A.shape[0]) * int(B.shape[1]), int(np.dot(a_cols.astype(np.int64), b_rows))))


def compose_chain(nodes: list[N.Node], shapes: list[tuple], in_shape, *, what: str, node_name: str | None = None,
                  sparse_below: float = 0.0):
    """``(M, c)`` with ``chain(x) = M @ x.ravel() + c`` for linear ``nodes`` (their output shapes
    in ``shapes``) applied to inputs of ``in_shape``.

    Index maps are skipped. One Linear/Affine gives its own weight (not copied). Otherwise the
    node matrices are multiplied sparse; each product is checked against the memory budget from
    an upper bound on its entries before it is formed. The result is a ``scipy.sparse`` csr matrix
    when ``sparse_below > 0`` and its density is below ``sparse_below``, else a dense array (its
    size checked too). None for a chain of index maps only (the identity)."""
    sp = _sparse()
    n_in = int(np.prod(in_shape))
    n_out = int(np.prod(shapes[-1])) if shapes else n_in
    linear = [n for n in nodes if not index_map(n)]
    if sparse_below <= 0 and not (len(linear) == 1 and isinstance(linear[0], N.Linear)):
        check_alloc(8 * n_out * n_in, f"folding {what} into a dense {n_out}x{n_in} matrix", node=node_name)
    mats = []
    prev = tuple(in_shape)
    for node, shape in zip(nodes, shapes):
        m = node_matrix(node, prev, shape)
        if m is not None:
            mats.append(m)
        prev = tuple(shape)
    if not mats:
        return None
    if len(mats) == 1 and not sp.issparse(mats[0][0]):
        M, c = mats[0]
        return M, np.array(c, dtype=np.float64)
    M, c = mats[0]
    c = np.array(c, dtype=np.float64)
    for A, b in mats[1:]:
        entries = _product_entries(A, M)
        check_alloc(16 * entries, f"composing {what} ({entries} entries)", node=node_name)
        if sp.issparse(A) and sp.issparse(M):
            M = (A @ M).tocsr()
        elif sp.issparse(M):
            M = np.asarray((M.T @ np.asarray(A).T).T)
        else:
            M = np.asarray(A @ M)
        c = np.asarray(A @ c).reshape(-1) + b
    if sp.issparse(M):
        M.eliminate_zeros()
        density = M.nnz / max(1, n_out * n_in)
        if sparse_below > 0 and density < sparse_below:
            return M, c
        check_alloc(8 * n_out * n_in, f"{what} as a dense {n_out}x{n_in} matrix "
                                      f"({M.nnz} nonzero, {fmt_bytes(12 * M.nnz)} sparse)", node=node_name)
        M = M.toarray()
    return M, c
