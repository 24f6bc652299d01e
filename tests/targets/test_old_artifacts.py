"""Artifacts written by neurocompile 0.1 (before the targets/ layout) still load and run.

``tests/data/artifacts-0.1/`` holds the NIR paper's single LIF neuron compiled by the 0.1 release
(commit 8dfe06d) for the emulator (Loihi 2 program format v2) and for SpiNNaker; both must
still give the spikes the paper published.
"""
import numpy as np
import pytest

import neurocompile as nc
from conftest import DATA, paper_lif_input


@pytest.mark.parametrize("name", ["lif-emulator", "lif-spinnaker"])
def test_artifact_of_release_0_1_runs(name):
    art = DATA / "artifacts-0.1" / name
    out = nc.run(art, paper_lif_input()).output
    assert np.flatnonzero(out[:, 0, 0]).tolist() == [460, 510, 710, 760]
