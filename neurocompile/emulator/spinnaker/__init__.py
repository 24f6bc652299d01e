"""Bit-accurate numpy emulator of sPyNNaker 7.x's IF_curr_exp / IF_curr_delta cores.

* :mod:`.fixed` -- the s16.15 / u0.32 arithmetic (GCC accum multiply, decay, kdivk, expk/expulr);
* :mod:`.program` -- the program format (populations, sources, projections, raw words) and
  sPyNNaker's host-side rules for ring-buffer shifts and 16-bit weights;
* :mod:`.core` -- the timer tick, in the order the C code runs it.
"""
from .core import ChipRun, run_program
from .program import Population, Program, Projection, Source

__all__ = ["ChipRun", "run_program", "Population", "Program", "Projection", "Source"]
