"""The shipped digits model: an snnTorch MLP for scikit-learn's 8x8 handwritten digits.

Network (:func:`build_net`)::

    Linear(64, 128) -> Leaky(beta=0.9, reset "zero") -> Linear(128, 10) -> Leaky(beta=0.9, reset "zero")

Zero reset is what Loihi 2's LIF does; ``reset_delay`` is snnTorch's default (True), which for
Leaky with zero reset has the same dynamics as resetting within the step.

Input (:func:`encode`): a deterministic rate code over ``T = 32`` steps. Pixel intensities
``0..16`` become ``p = x/16`` in [0, 1]; each step the pixel's phase grows by ``p`` and the
pixel spikes whenever the phase passes a whole number: ``s[t] = floor((t+1)*p) - floor(t*p)``.
A pixel of intensity 16 spikes at every step, 8 at every other step, 0 never.

Output: the class is the argmax of the output layer's spike counts over the 32 steps; ties go
to the lowest class index (:func:`predict`, same rule as ``neurocompile run --labels``).

Data (:func:`load_digits_split`): scikit-learn's ``load_digits`` (1797 images), split 75/25,
stratified by class, ``random_state=seed`` (0): 1347 training and 450 held-out images.

The weights ``digits_snn.pt`` (a state dict) are written by ``scripts/train_digits.py``.
torch and snntorch are imported only by the functions that need them.
"""
from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

#: number of time steps of the rate code
T = 32
#: membrane decay of both Leaky layers
BETA = 0.9
#: input features (8x8 pixels) and classes
N_IN, N_HIDDEN, N_OUT = 64, 128, 10
#: the shipped weights (state dict)
WEIGHTS = Path(__file__).with_name("digits_snn.pt")
#: held-out fraction and default seed of the split
TEST_SIZE = 0.25
SEED = 0


class DigitsSplit(NamedTuple):
    """Pixel values 0..16 as float64 (N, 64) and integer labels (N,)."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray


def load_digits_split(seed: int = SEED) -> DigitsSplit:
    """scikit-learn's digits split into train and held-out test (25%, stratified, fixed seed)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    X = np.asarray(data.data, dtype=np.float64)
    y = np.asarray(data.target, dtype=np.int64)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=TEST_SIZE, stratify=y, random_state=seed)
    return DigitsSplit(X_tr, y_tr, X_te, y_te)


def encode(images: np.ndarray, steps: int = T) -> np.ndarray:
    """(N, 64) pixel values in [0, 16] -> (steps, N, 64) spikes (float32 0/1), no randomness."""
    p = np.clip(np.asarray(images, dtype=np.float64) / 16.0, 0.0, 1.0)
    t = np.arange(steps + 1, dtype=np.float64).reshape((-1,) + (1,) * p.ndim)
    count = np.floor(t * p)  # spikes emitted up to each step (exact for x in 0..16)
    return np.diff(count, axis=0).astype(np.float32)


def predict(spike_counts: np.ndarray) -> np.ndarray:
    """Class per sample: argmax of the (N, 10) output spike counts; ties -> lowest index."""
    counts = np.asarray(spike_counts)
    return np.argmax(counts, axis=-1)  # numpy returns the first maximum


def build_net():
    """The untrained snnTorch network (``nn.Sequential``; neurons keep their own state)."""
    import snntorch as snn
    from torch import nn

    return nn.Sequential(
        nn.Linear(N_IN, N_HIDDEN),
        snn.Leaky(beta=BETA, reset_mechanism="zero", init_hidden=True),
        nn.Linear(N_HIDDEN, N_OUT),
        snn.Leaky(beta=BETA, reset_mechanism="zero", init_hidden=True),
    )


def load_model(path: str | Path | None = None):
    """The trained network with the shipped weights (or those in ``path``), in eval mode."""
    return load_trained(build_net, path or WEIGHTS, "scripts/train_digits.py")


def load_trained(build, path: str | Path, script: str):
    """``build()`` with the state dict at ``path`` (``torch.load(weights_only=True)``), in eval mode;
    a missing file names the training ``script``."""
    import torch

    from neurocompile.errors import NeuroCompileError

    path = Path(path)
    if not path.is_file():
        raise NeuroCompileError(f"the model weights are missing (run {script})", file=str(path))
    net = build()
    net.load_state_dict(torch.load(str(path), map_location="cpu", weights_only=True))
    net.eval()
    return net


def run_snntorch(net, spikes, dtype=None):
    """snnTorch's own forward pass over a spike train: (T, N, 64) -> (T, N, 10) output spikes.

    Steps the ``nn.Sequential`` one time step at a time from zero state. snnTorch's spike
    functions return float32; spikes are cast to ``dtype`` (default: the weights' dtype) before
    the next layer, which is exact for 0/1 values and lets the net run in float64.
    """
    import snntorch as snn
    import torch

    if dtype is None:
        dtype = next(net.parameters()).dtype
    x = torch.as_tensor(np.asarray(spikes) if not torch.is_tensor(spikes) else spikes).to(dtype)
    for layer in net:
        if isinstance(layer, snn.SpikingNeuron):
            layer.mem = torch.zeros(0, dtype=dtype)  # fresh zero state, sized at the first step
    out = []
    for t in range(x.shape[0]):
        h = x[t]
        for layer in net:
            h = layer(h)
            if isinstance(layer, snn.SpikingNeuron):
                h = h.to(dtype)
        out.append(h)
    return torch.stack(out)


def load_graph(dt: float = 1.0):
    """The shipped model as a neurocompile Graph (via :func:`from_snntorch`)."""
    from neurocompile.frontends.snntorch import from_snntorch

    g = from_snntorch(load_model(), (N_IN,), dt=dt)
    g.metadata["zoo"] = "digits"
    g.assume(f"digits input: {T}-step deterministic rate code of the 8x8 image (see neurocompile.zoo.digits)")
    return g


def test_data(seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """The held-out split, encoded: spikes (T, N, 64) float32 and labels (N,) int64."""
    split = load_digits_split(seed)
    return encode(split.X_test), split.y_test


def calibration_data(n: int = 256, seed: int = SEED) -> np.ndarray:
    """The first ``n`` training images, encoded (T, n, 64): for choosing fixed-point scales
    (never the held-out split)."""
    split = load_digits_split(seed)
    return encode(split.X_train[:n])
