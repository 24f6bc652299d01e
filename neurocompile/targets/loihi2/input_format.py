"""The fixed-point format of a direct (current) input on Loihi 2: graded spikes from the host.

Lava's ``num_message_bits`` on the synapses from the input makes them multiply each weight by
the integer payload instead of adding it once per spike. The host sends ``x_int = round(x *
scale)`` (numpy's half-to-even) in the signed ``message_bits`` range. ``scale`` is the largest
power of two at which the calibration samples' largest |x| fits that range: a power of two keeps
dyadic inputs (pixels k/16, 8-bit images k/256) exact, and leaves up to 2x headroom for run-time
inputs above the calibrated range. The first layer's weights absorb ``1/scale``, so the chip
computes ``W (x_int / scale)``; the only new error is the input's rounding, reported on the
calibration samples.
"""
from __future__ import annotations

import math

import numpy as np

from neurocompile.errors import NeuroCompileError
from neurocompile.ir.graph import Graph
from neurocompile.targets.input_encoding import input_range

#: payload bits of the host's graded input spikes (Loihi 2 carries up to 24)
DEFAULT_INPUT_BITS = 8
MAX_INPUT_BITS = 24


def current_input_format(graph: Graph, calibration, bits: int | None) -> tuple[dict, dict]:
    """(io, report) for a current input: the host encoding the runner applies, and its figures."""
    bits = DEFAULT_INPUT_BITS if bits is None else int(bits)
    if not 2 <= bits <= MAX_INPUT_BITS:
        raise NeuroCompileError(f"input_bits must be in 2..{MAX_INPUT_BITS} (Loihi 2's graded spikes), not {bits}")
    x_max = input_range(graph, calibration)
    lim = (1 << (bits - 1)) - 1
    scale = 2.0 ** math.floor(math.log2(lim / x_max))
    x = np.asarray(calibration, dtype=np.float64)
    err = float(np.abs(np.round(x * scale) / scale - x).max()) if x.size else 0.0
    io = {"encoding": "current", "scale": scale, "message_bits": bits}
    rep = {"encoding": "current", "message_bits": bits, "scale": scale, "resolution": 1.0 / scale,
           "range": lim / scale, "calibrated_max_abs": x_max, "max_abs_error": err,
           "rel_error": err / x_max}
    return io, rep
