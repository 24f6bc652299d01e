"""Linear nodes without dense identity matrices: conv algebra, synapse lists, sparse chains."""
import numpy as np
import pytest

from neurocompile.errors import NeuroCompileError
from neurocompile.ir import nodes as N
from neurocompile.ir.linear_maps import (
    chain_as_conv,
    compose_chain,
    compose_convs,
    conv_fan_out,
    conv_out_shape,
    conv_pair_chunks,
    conv_pairs,
    conv_synapse_count,
    conv_tap_sums,
)
from neurocompile.ir.semantics import OPS, Context


def apply(nodes, x, in_shape):
    """The reference ops of ``nodes`` on a batch ``x`` (B, *in_shape)."""
    ctx = Context(1.0, "euler")
    y, shape = x, tuple(in_shape)
    for node in nodes:
        shape = node.infer_shape(shape)
        state = {"out_shape": shape} if isinstance(node, N.Flatten) else {}
        y = OPS[type(node)](node, y, state, ctx)
    return y


def random_conv(rng, c_in, groups=1, padding=None):
    co = groups * int(rng.integers(1, 4))
    k = tuple(int(v) for v in rng.integers(1, 4, 2))
    return N.Conv2d(weight=rng.normal(size=(co, c_in // groups) + k), bias=rng.normal(size=co),
                    stride=tuple(int(v) for v in rng.integers(1, 3, 2)),
                    padding=tuple(int(v) for v in rng.integers(0, 2, 2)) if padding is None else padding,
                    dilation=tuple(int(v) for v in rng.integers(1, 3, 2)), groups=groups)


@pytest.mark.parametrize("seed", range(30))
def test_composed_convs_compute_the_chain_exactly(seed):
    rng = np.random.default_rng(seed)
    while True:  # draw until the second conv fits the first one's output (every seed tests a chain)
        shape = (2, int(rng.integers(6, 14)), int(rng.integers(6, 14)))
        a = random_conv(rng, 2, groups=int(rng.choice([1, 2])))
        mid = a.infer_shape(shape)
        b = random_conv(rng, mid[0], padding=(0, 0))
        try:
            b.infer_shape(mid)
            break
        except Exception:
            continue
    c = compose_convs(a, b, shape)
    assert c is not None
    x = rng.normal(size=(3,) + shape)
    np.testing.assert_allclose(apply([c], x, shape), apply([a, b], x, shape), rtol=1e-10, atol=1e-10)


def test_padded_conv_after_a_block_sum_composes_and_after_a_conv_does_not():
    rng = np.random.default_rng(0)
    shape = (3, 8, 8)
    pool = N.SumPool2d(kernel_size=2)
    conv = N.Conv2d(weight=rng.normal(size=(4, 3, 3, 3)), bias=rng.normal(size=4), padding=1)
    fused = chain_as_conv([pool, conv], shape)
    assert fused is not None and fused.stride == (2, 2) and fused.padding == (2, 2)
    x = rng.normal(size=(2,) + shape)
    np.testing.assert_allclose(apply([fused], x, shape), apply([pool, conv], x, shape), atol=1e-12)
    assert compose_convs(N.Conv2d(weight=np.ones((3, 3, 3, 3))), conv, (3, 10, 10)) is None   # padding lost
    assert chain_as_conv([N.SumPool2d(kernel_size=2), conv], (3, 9, 9)) is None                # 9 % 2 != 0


def test_pooling_scale_and_avg_become_one_conv():
    rng = np.random.default_rng(1)
    shape = (2, 12, 12)
    chains = [
        [N.AvgPool2d(kernel_size=2)],                                                  # depthwise
        [N.Conv2d(weight=rng.normal(size=(3, 2, 3, 3)), bias=np.ones(3), stride=2, padding=1),
         N.SumPool2d(kernel_size=2)],
        [N.Scale(scale=np.array([2.0, -1.0]).reshape(2, 1, 1)), N.Conv2d(weight=rng.normal(size=(4, 2, 3, 3))),
         N.Scale(scale=0.5), N.AvgPool2d(kernel_size=2)],
    ]
    for chain in chains:
        conv = chain_as_conv(chain, shape)
        assert conv is not None
        x = rng.normal(size=(2,) + shape)
        np.testing.assert_allclose(apply([conv], x, shape), apply(chain, x, shape), atol=1e-12)
    assert chain_as_conv(chains[0], shape).groups == 2
    assert chain_as_conv([N.Flatten()], shape) is None
    assert chain_as_conv([N.Scale(scale=np.arange(144.0).reshape(1, 12, 12)), chains[1][0]], shape) is None


@pytest.mark.parametrize("seed", range(40))
def test_synapse_lists_and_closed_forms_agree(seed):
    rng = np.random.default_rng(seed)
    while True:  # draw until the output is not empty (every seed tests a convolution)
        g = int(rng.choice([1, 2]))
        cin, co = 2 * g, 2 * g
        w = rng.integers(-2, 3, (co, cin // g) + tuple(int(v) for v in rng.integers(1, 4, 2))).astype(float)
        shape = (cin,) + tuple(int(v) for v in rng.integers(3, 9, 2))
        st, pad, dil = (tuple(int(v) for v in rng.integers(lo, hi, 2)) for lo, hi in ((1, 3), (0, 3), (1, 3)))
        out = conv_out_shape(w.shape, shape, st, pad, dil)
        if min(out[1:]) >= 1:
            break
    src, dst, tap = conv_pairs(w, shape, st, pad, dil, g)
    chunks = list(conv_pair_chunks(w, shape, st, pad, dil, g, max_pairs=7))
    assert len(chunks) == co and sum(c[0].size for c in chunks) == src.size
    n_in, n_out = int(np.prod(shape)), int(np.prod(out))
    np.testing.assert_array_equal(np.rint(conv_tap_sums(w, shape, st, pad, dil, g, values=w != 0)),
                                  np.bincount(dst, minlength=n_out))
    np.testing.assert_array_equal(conv_fan_out(w, shape, st, pad, dil, g), np.bincount(src, minlength=n_in))
    np.testing.assert_allclose(conv_tap_sums(w, shape, st, pad, dil, g),
                               np.bincount(dst, weights=w.ravel()[tap], minlength=n_out))
    assert conv_synapse_count(w, shape, st, pad, dil, g) == src.size
    # the sparse matrix of the conv is the conv
    node = N.Conv2d(weight=w, stride=st, padding=pad, dilation=dil, groups=g)
    M, c = compose_chain([node], [out], shape, what="conv", sparse_below=1.0)
    x = rng.normal(size=(2,) + shape)
    np.testing.assert_allclose((M @ x.reshape(2, -1).T).T + c, apply([node], x, shape).reshape(2, -1), atol=1e-12)


def test_flatten_is_an_index_map():
    w = np.ones((10, 4 * 8 * 8))
    M, c = compose_chain([N.Flatten(), N.Affine(weight=w, bias=np.ones(10))], [(256,), (10,)], (4, 8, 8), what="x")
    assert M is w and np.all(c == 1)                      # the Linear's own matrix, not a copy
    assert compose_chain([N.Flatten(), N.Identity()], [(256,), (256,)], (4, 8, 8), what="x") is None


def test_fold_over_budget_names_node_and_size(monkeypatch):
    monkeypatch.setenv("NEUROCOMPILE_MEMORY_BUDGET", "4M")
    conv = N.Conv2d(weight=np.ones((1, 1, 3, 3)), padding=1)
    with pytest.raises(NeuroCompileError, match=r"dense 4096x4096 matrix.*budget 4\.0 MiB") as e:
        compose_chain([conv], [(1, 64, 64)], (1, 64, 64), what="in -> conv", node_name="conv")
    assert e.value.node == "conv"
    M, _ = compose_chain([conv], [(1, 64, 64)], (1, 64, 64), what="in -> conv", sparse_below=0.25)
    assert M.nnz == conv_synapse_count(conv.weight, (1, 64, 64), (1, 1), (1, 1), (1, 1), 1)
