"""Fixtures of tests/scale (a module, not a conftest.py: the tree's own conftest is imported by name)."""
import numpy as np
import pytest

import neurocompile as nc


@pytest.fixture(scope="session")
def digits_data():
    from neurocompile.zoo import digits

    x, y = digits.test_data()
    return np.asarray(x[:, :24]), np.asarray(y[:24])


@pytest.fixture(scope="session")
def emu_artifact(tmp_path_factory, digits_data):
    path = tmp_path_factory.mktemp("scale") / "digits-emu"
    art = nc.compile("zoo:digits", target="emulator")
    art.save(path)
    return path


@pytest.fixture(scope="session")
def spin_artifact(tmp_path_factory, digits_data):
    path = tmp_path_factory.mktemp("scale") / "digits-spin"
    art = nc.compile("zoo:digits", target="spinnaker")
    art.save(path)
    return path

