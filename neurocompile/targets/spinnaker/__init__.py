"""SpiNNaker target (sPyNNaker 7.x): compile to PyNN populations and projections with the chip's
fixed-point words; run on the bit-accurate emulator (default) or on a configured board."""
from neurocompile.targets.spinnaker.target import SpiNNakerBackend

__all__ = ["SpiNNakerBackend"]
