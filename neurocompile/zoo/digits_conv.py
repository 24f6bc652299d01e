"""The shipped convolutional digits model: an snnTorch CNN for scikit-learn's 8x8 digits, fed
the image directly (analog input, no spike encoding).

Network (:func:`build_net`), input shape ``(1, 8, 8)``::

    Conv2d(1, 8, 3, padding=1)            -> Leaky(beta=0.9, reset "zero")   # 8 x 8 x 8
    Conv2d(8, 16, 3, stride=2, padding=1) -> Leaky(beta=0.9, reset "zero")   # 16 x 4 x 4
    Flatten -> Linear(256, 10)            -> Leaky(beta=0.9, reset "zero")   # 10

All layers have biases; there is no pooling. Zero reset is what Loihi 2's LIF does;
``reset_delay`` is snnTorch's default (True), which for Leaky with zero reset has the same
dynamics as resetting within the step.

Input (:func:`encode`): direct (analog) input over ``T = 16`` steps. Pixel intensities ``0..16``
become ``x/16`` in [0, 1] (multiples of 1/16, exact in float32) and that same image is the
input current of the first convolution at every step: the first layer's neurons integrate
``conv1(x)`` each step and only the later layers see spikes.

Output: the class is the argmax of the output layer's spike counts over the 16 steps; ties go to
the lowest class index (:func:`predict`, the same rule as :mod:`.digits`).

Data: the split of :mod:`.digits` (scikit-learn's ``load_digits``, 75/25 stratified,
``random_state=0``): 1347 training and 450 held-out images. :func:`calibration_data` comes from
the training split only.

The weights ``digits_conv_snn.pt`` (a state dict) are written by ``scripts/train_digits_conv.py``:
surrogate-gradient backpropagation through time (snnTorch's arctan surrogate), Adam, cross
entropy on the output spike counts, on the training split; regularised for fixed-point targets
(weight decay; uniform weight noise of one 8-bit quantization step of each layer and Gaussian noise
of 0.01 thresholds on every input current during training; a penalty on hidden firing rates
above 0.5). Held-out accuracy: 98.0 % (441/450) in float. torch and snntorch are imported only by
the functions that need them.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from neurocompile.zoo.digits import load_digits_split, load_trained, predict, run_snntorch

#: number of time steps the image is presented for
T = 16
#: membrane decay of all Leaky layers
BETA = 0.9
#: one input sample (channels, height, width), the channels of the two convolutions, the classes
INPUT_SHAPE = (1, 8, 8)
C1, C2, N_OUT = 8, 16, 10
#: the shipped weights (state dict)
WEIGHTS = Path(__file__).with_name("digits_conv_snn.pt")
SEED = 0

__all__ = ["T", "BETA", "INPUT_SHAPE", "WEIGHTS", "build_net", "load_model", "encode", "predict",
           "run_snntorch", "load_graph", "test_data", "calibration_data", "load_digits_split"]


def encode(images: np.ndarray, steps: int = T) -> np.ndarray:
    """(N, 64) pixel values in [0, 16] -> (steps, N, 1, 8, 8) float32 ``x/16``, the same at
    every step (direct input; no randomness)."""
    p = np.clip(np.asarray(images, dtype=np.float64) / 16.0, 0.0, 1.0)
    p = p.reshape((-1,) + INPUT_SHAPE).astype(np.float32)
    return np.broadcast_to(p, (steps,) + p.shape).copy()


def build_net():
    """The untrained snnTorch network (``nn.Sequential``; neurons keep their own state)."""
    import snntorch as snn
    from torch import nn

    def lif():
        return snn.Leaky(beta=BETA, reset_mechanism="zero", init_hidden=True)

    return nn.Sequential(
        nn.Conv2d(INPUT_SHAPE[0], C1, 3, padding=1),
        lif(),
        nn.Conv2d(C1, C2, 3, stride=2, padding=1),
        lif(),
        nn.Flatten(),
        nn.Linear(C2 * 4 * 4, N_OUT),
        lif(),
    )


def load_model(path: str | Path | None = None):
    """The trained network with the shipped weights (or those in ``path``), in eval mode."""
    return load_trained(build_net, path or WEIGHTS, "scripts/train_digits_conv.py")


def load_graph(dt: float = 1.0):
    """The shipped model as a neurocompile Graph (via :func:`from_snntorch`)."""
    from neurocompile.frontends.snntorch import from_snntorch

    g = from_snntorch(load_model(), INPUT_SHAPE, dt=dt)
    g.metadata["zoo"] = "digits-conv"
    g.assume(f"digits-conv input: direct analog input, the 8x8 image scaled to [0, 1] (x/16) fed unchanged "
             f"as the first convolution's input at each of {T} steps (see neurocompile.zoo.digits_conv)")
    return g


def test_data(seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """The held-out split, encoded: (T, N, 1, 8, 8) float32 and labels (N,) int64."""
    split = load_digits_split(seed)
    return encode(split.X_test), split.y_test


def calibration_data(n: int = 256, seed: int = SEED) -> np.ndarray:
    """The first ``n`` training images, encoded (T, n, 1, 8, 8): for choosing fixed-point scales
    (never the held-out split)."""
    split = load_digits_split(seed)
    return encode(split.X_train[:n])
