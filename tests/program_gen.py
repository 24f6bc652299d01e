"""Random Loihi program pieces shared by the emulator tests."""
import numpy as np


def weights(rng: np.random.Generator, shape, mode: str) -> np.ndarray:
    """Random raw weights of one sign mode, over the full 8-bit range."""
    if mode == "mixed":
        return rng.integers(-256, 256, shape)
    if mode == "excitatory":
        return rng.integers(0, 256, shape)
    return rng.integers(-255, 1, shape)
