"""Optional dependencies: which extra of ``neurocompile`` brings each one.

A missing optional package is a set-up problem, not a bug: :func:`missing_extra` turns the
``ModuleNotFoundError`` into the command that installs it.
"""
from __future__ import annotations

from neurocompile.errors import NeuroCompileError

#: top-level module -> the extra that installs it
EXTRAS = {
    "torch": "torch", "snntorch": "torch", "sklearn": "zoo", "matplotlib": "reports",
    "pyNN": "spinnaker", "spynnaker": "spinnaker", "spinn_front_end_common": "spinnaker",
    "numba": "fast", "distributed": "scale", "dask": "scale", "nest": "nest", "hypothesis": "test",
}

CPU_TORCH = ("pip install torch --index-url https://download.pytorch.org/whl/cpu  (the CPU build; "
             "plain `pip install torch` may fetch the CUDA build)")


def missing_extra(err: ModuleNotFoundError) -> NeuroCompileError | None:
    """The one-line error for a missing optional package, or None when ``err`` is about another
    module (a real bug)."""
    top = (err.name or "").split(".")[0]
    extra = EXTRAS.get(top)
    if extra is None:
        return None
    hint = f"pip install 'neurocompile[{extra}]'"
    if extra == "torch":
        hint = f"{CPU_TORCH}, then {hint}"
    return NeuroCompileError(f"this needs the optional package '{top}': {hint}")
