"""Target discovery through the ``neurocompile.backends`` entry-point group, loaded lazily.

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
    "float": "neurocompile.targets.float:FloatTarget",
    "loihi2": "neurocompile.targets.loihi2.target:Loihi2Target",
    "emulator": "neurocompile.targets.loihi2.target:EmulatorTarget",
    "lava": "neurocompile.targets.loihi2.target:LavaTarget",
    "loihi2-hw": "neurocompile.targets.loihi2.target:Loihi2HardwareTarget",
    "spinnaker": "neurocompile.targets.spinnaker.target:SpiNNakerTarget",
}

_loaded: dict[str, object] = {}


def backend_specs() -> dict[str, str]:
    """name -> "module:attr" for every registered target (entry points win over BUILTIN)."""
    specs = dict(BUILTIN)
    for ep in metadata.entry_points(group=GROUP):
        specs[ep.name] = ep.value
    return specs


def get_backend(name: str):
    """The target registered as ``name`` (imported on first use)."""
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
        raise BackendError(f"target '{name}' ({spec}) failed to load: {type(err).__name__}: {err}") from err
    target = obj() if isinstance(obj, type) else obj
    _loaded[name] = target
    return target


get_target = get_backend


def resolve_run(name: str):
    """A run request as ``validate`` and the pytest plugin take it -> (target, runner).

    ``TARGET`` means that target's default runner, ``TARGET:RUNNER`` a named runner of its family
    (``spinnaker:board``, ``loihi2:chip``); ``spinnaker-board`` is the older spelling of the latter.
    """
    base, _, runner = name.partition(":")
    if not runner and name.endswith("-board") and name[:-6] in backend_specs():
        base, runner = name[:-6], "board"
    target = get_backend(base)
    if runner and runner not in target.runners:
        raise BackendError(f"target '{base}' has no runner '{runner}' (runners: {', '.join(target.runners)})")
    return target, target.runners[runner or target.default_runner]


def list_backends() -> list[tuple[str, str, bool, str, str]]:
    """(name, description, can_run_here, reason, chip) for every target; load errors become rows.
    ``chip`` says whether the real chip behind a target is reachable ("" when not applicable)."""
    rows = []
    for name in sorted(backend_specs()):
        try:
            t = get_backend(name)
            ok, why = t.available()
            chip = ""
            status = t.chip_status() if name == t.kind() else None
            if status is not None:
                chip = "chip: yes" if status[0] else f"chip: no ({status[1]})"
            rows.append((name, t.description, ok, why, chip))
        except BackendError as err:
            rows.append((name, "(failed to load)", False, str(err), ""))
    return rows
