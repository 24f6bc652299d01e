"""Backend discovery through the ``neurocompile.backends`` entry-point group, loaded lazily.

The built-in backends are listed in ``pyproject.toml`` like any third-party one; ``BUILTIN``
repeats them so a source checkout that was never installed still finds them. A backend that
fails to import is reported with its entry point and the error, never silently skipped.
"""
from __future__ import annotations

import importlib
from importlib import metadata

from neurocompile.errors import BackendError

GROUP = "neurocompile.backends"

BUILTIN = {
    "float": "neurocompile.targets.float:FloatBackend",
    "loihi2": "neurocompile.targets.loihi2.target:Loihi2Backend",
    "emulator": "neurocompile.targets.loihi2.target:EmulatorBackend",
    "lava": "neurocompile.targets.loihi2.target:LavaBackend",
    "loihi2-hw": "neurocompile.targets.loihi2.target:Loihi2HardwareBackend",
    "spinnaker": "neurocompile.targets.spinnaker:SpiNNakerBackend",
}

_loaded: dict[str, object] = {}


def backend_specs() -> dict[str, str]:
    """name -> "module:attr" for every registered backend (entry points win over BUILTIN)."""
    specs = dict(BUILTIN)
    for ep in metadata.entry_points(group=GROUP):
        specs[ep.name] = ep.value
    return specs


def get_backend(name: str):
    if name in _loaded:
        return _loaded[name]
    specs = backend_specs()
    if name not in specs:
        raise BackendError(f"unknown target '{name}' (installed: {', '.join(sorted(specs))})")
    spec = specs[name]
    module_name, _, attr = spec.partition(":")
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except Exception as err:  # noqa: BLE001 - reported, not swallowed
        raise BackendError(f"backend '{name}' ({spec}) failed to load: {type(err).__name__}: {err}") from err
    backend = obj() if isinstance(obj, type) else obj
    _loaded[name] = backend
    return backend


def list_backends() -> list[tuple[str, str, bool, str, str]]:
    """(name, description, can_run_here, reason, chip) for every backend; load errors become rows.
    ``chip`` says whether the real chip behind a target is reachable ("" when not applicable)."""
    rows = []
    for name in sorted(backend_specs()):
        try:
            b = get_backend(name)
            ok, why = b.available()
            chip = ""
            if getattr(b, "chip_target", False):
                c_ok, c_why = b.chip_status()
                chip = "chip: yes" if c_ok else f"chip: no ({c_why})"
            rows.append((name, b.description, ok, why, chip))
        except BackendError as err:
            rows.append((name, "(failed to load)", False, str(err), ""))
    return rows
