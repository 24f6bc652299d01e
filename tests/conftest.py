from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).parent / "data"
NIR_PAPER = DATA / "nir-paper"

# The NIR paper's single-neuron input: inter-spike gaps -> 0/1 train, cut to 100, each entry
# followed by 9 zeros (10x upsampling) = 1000 steps (see tests/data/nir-paper/README.md).
PAPER_GAPS = [6, 15, 4, 3, 0, 2, 1, 2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 13, 0, 0, 0, 0, 0, 0, 0,
              0, 0, 0, 0, 5, 0, 14]


def paper_lif_input() -> np.ndarray:
    train = np.concatenate([[0] * g + [1] for g in PAPER_GAPS])[:100]
    x = np.zeros((1000, 1))
    x[::10, 0] = train
    return x


@pytest.fixture
def lif_input():
    return paper_lif_input()


@pytest.fixture(autouse=True)
def _no_user_config(tmp_path, monkeypatch):
    """Tests never read files left in the user's home (e.g. ~/.spynnaker.cfg)."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    yield


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny torch tensors: one thread is faster and does not stall on a busy machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
