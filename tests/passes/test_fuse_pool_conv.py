"""fuse-pool-conv: pooling + conv -> one strided conv, exactly; the CNN keeps all convs on Loihi."""
import numpy as np
import pytest

from conftest import NIR_PAPER
from neurocompile import api
from neurocompile.frontends.nir import read_nir
from neurocompile.ir import nodes as N
from neurocompile.ir import sequential
from neurocompile.ir.interpreter import run
from neurocompile.passes import NORMALIZE, Pipeline
from neurocompile.passes.fuse_pool_conv import FusePoolIntoConv


@pytest.mark.parametrize("pool", [N.SumPool2d, N.AvgPool2d])
@pytest.mark.parametrize("stride,padding", [(1, 1), (2, 0), (1, 0)])
def test_fused_conv_is_exact(pool, stride, padding):
    rng = np.random.default_rng(3)
    g = sequential([("in", N.Input(shape=(3, 8, 12))), ("p", pool(kernel_size=2)),
                    ("c", N.Conv2d(weight=rng.normal(size=(4, 3, 3, 3)), bias=rng.normal(size=4),
                                   stride=stride, padding=padding)),
                    ("o", N.Output())])
    fused = Pipeline([FusePoolIntoConv()]).run(g)
    assert "p" not in fused.nodes and fused.nodes["c"].stride == (2 * stride,) * 2
    x = rng.normal(size=(2, 3, 3, 8, 12))
    np.testing.assert_allclose(run(fused, x).output, run(g, x).output, rtol=1e-12, atol=1e-12)


def test_not_fused_when_pooling_drops_a_remainder():
    g = sequential([("in", N.Input(shape=(1, 7, 8))), ("p", N.SumPool2d(kernel_size=2)),
                    ("c", N.Conv2d(weight=np.ones((1, 1, 3, 3)), padding=1)), ("o", N.Output())])
    assert "p" in Pipeline([FusePoolIntoConv()]).run(g).nodes


def test_cnn_keeps_every_conv_on_loihi():
    g = Pipeline(NORMALIZE).run(read_nir(NIR_PAPER / "cnn_sinabs.nir"))
    x = (np.random.default_rng(0).random((12, 1, 2, 34, 34)) < 0.2).astype(float)
    fused = Pipeline([FusePoolIntoConv()]).run(g)
    a, b = run(g, x, record_spikes=True), run(fused, x, record_spikes=True)
    for k in a.probes:
        np.testing.assert_array_equal(a.probes[k], b.probes[k], err_msg=k)
    art = api.compile(g, target="loihi2")
    kinds = {d.name: type(d).__name__ for d in art.payload["program"].synapses}
    assert kinds["0"] == kinds["2"] == kinds["5"] == "LoihiConv"
