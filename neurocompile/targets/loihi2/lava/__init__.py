"""Run a :class:`~neurocompile.targets.loihi2.program.LoihiProgram` in Lava.

``run_program`` is executed by the (separate) Lava interpreter; ``host``
is the main-interpreter side that starts it.  Nothing here imports Lava at
package import time.
"""
