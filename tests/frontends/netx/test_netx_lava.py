"""Agreement with lava-dl itself: netx.hdf5.Network on Lava's fixed_pt models vs the emulator.

Every output spike must be equal, and u/v of the probed layers (first and last)."""
from pathlib import Path

import numpy as np
import pytest
from netx_compare import assert_emulator_equals_netx
from netx_files import random_conv, random_dense

import neurocompile as nc
from neurocompile.frontends.loader import load_model

DATA = Path(__file__).resolve().parents[2] / "data" / "netx"


def _compare(path, T=60, p=0.2, seed=0):
    g = load_model(path)
    prog = nc.compile(g, target="emulator").payload["program"]
    out, t_em, r = assert_emulator_equals_netx(prog, path, T, p, seed)
    print(f"{Path(path).name}: {int(out.sum())} output spikes equal; emulator {t_em:.3f} s, "
          f"netx on Lava {float(r['seconds']):.3f} s")
    return out


@pytest.mark.parametrize("name,T,p", [("mnist_dense.net", 80, 0.15), ("oxford_dense.net", 100, 0.1)])
def test_shipped_dense_networks_agree_with_netx(name, T, p):
    out = _compare(DATA / name, T=T, p=p)
    assert out.sum() > 0


@pytest.mark.parametrize("seed", [0, 1])
def test_random_dense_with_delays_and_bias_agree(tmp_path, seed):
    rng = np.random.default_rng(seed)
    _compare(random_dense(tmp_path / "d.net", rng, sizes=(24, 32, 12), delays=True, bias=True), T=50, p=0.3,
             seed=seed)


def test_random_conv_agrees(tmp_path):
    _compare(random_conv(tmp_path / "c.net", np.random.default_rng(5)), T=40, p=0.4)
