"""Loading an snnTorch model named on the command line (``file.py:factory``), weights_only."""
from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from neurocompile.errors import NeuroCompileError
from neurocompile.frontends.snntorch.common import _libs
from neurocompile.utils.files import regular_file

if TYPE_CHECKING:  # pragma: no cover
    import torch

def load_snntorch_reference(spec: str, weights: str | None = None) -> "torch.nn.Module":
    """Load the module named by ``spec``: ``path/to/file.py:factory`` or ``package.module:factory``.

    ``factory`` (dots allowed: ``Net.build``) is either an ``nn.Module`` instance or a callable
    taking no arguments that returns one (a function, or the module class itself). ``weights``, if
    given, is a state-dict file read with ``torch.load(..., weights_only=True)`` (a dict holding
    the state dict under ``"state_dict"`` or ``"model_state_dict"`` is also accepted) and loaded
    with ``strict=True``. The module is returned in eval mode.
    """
    torch, nn, _ = _libs()
    text = str(spec)
    source, sep, attr = text.rpartition(":")
    if not sep or not source or not attr:
        raise NeuroCompileError(
            "expected path/to/file.py:factory or package.module:factory", file=text)
    is_file = source.endswith(".py") or "/" in source or "\\" in source
    if not is_file and not _importable(source) and Path(source.replace(".", "/") + ".py").is_file():
        source = source.replace(".", "/") + ".py"  # a file under the current directory
        is_file = True
    where = source
    if is_file:

        path = regular_file(source, "Python file")
        pymod = _import_file(path)
    else:
        try:
            pymod = importlib.import_module(source)
        except ImportError as err:
            raise NeuroCompileError(f"cannot import module '{source}': {err}", file=text) from err
        except Exception as err:  # the user's module raised while importing
            raise NeuroCompileError(
                f"importing '{source}' failed: {type(err).__name__}: {err}", file=text) from err
        where = getattr(pymod, "__file__", None) or source
    obj: Any = pymod
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise NeuroCompileError(f"has no attribute '{attr}'", file=str(where))
        obj = getattr(obj, part)
    if isinstance(obj, nn.Module):
        net = obj
    elif callable(obj):
        try:
            net = obj()
        except Exception as err:
            raise NeuroCompileError(
                f"calling '{attr}()' failed: {type(err).__name__}: {err}", file=str(where)) from err
        if not isinstance(net, nn.Module):
            raise NeuroCompileError(
                f"'{attr}()' returned {type(net).__name__}, not a torch.nn.Module", file=str(where))
    else:
        raise NeuroCompileError(
            f"'{attr}' is a {type(obj).__name__}, neither an nn.Module nor a function returning one",
            file=str(where))
    if weights is not None:

        wpath = regular_file(weights, "weights file")
        try:
            state = torch.load(str(wpath), map_location="cpu", weights_only=True)
        except Exception as err:
            raise NeuroCompileError(
                f"cannot read a state dict (torch.load, weights_only=True): {type(err).__name__}: "
                f"{_summary(err)}", file=str(weights)) from err
        if isinstance(state, dict):
            for key in ("state_dict", "model_state_dict"):
                if isinstance(state.get(key), dict):
                    state = state[key]
                    break
        if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
            raise NeuroCompileError(
                f"holds a {type(state).__name__}, not a state dict of tensors", file=str(weights))
        try:
            net.load_state_dict(state, strict=True)
        except Exception as err:
            msg = " ".join(str(err).split())
            raise NeuroCompileError(f"does not fit the model: {msg}", file=str(weights)) from err
    net.eval()
    return net


def _summary(err: Exception) -> str:
    """One line of a library message: torch's refusal of a pickle spans many lines; its useful
    one is the ``WeightsUnpickler error: Unsupported global: ...`` line."""
    lines = [" ".join(line.split()) for line in str(err).splitlines()]
    lines = [line for line in lines if line] or [type(err).__name__]
    best = next((line for line in lines if "WeightsUnpickler error" in line or "Unsupported global" in line), lines[0])
    return best[:300]


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name.split(".")[0]) is not None
    except (ImportError, ValueError):
        return False


def _import_file(path: Path):
    """Execute a Python file as a fresh module (its directory importable while it loads)."""
    name = f"_neurocompile_user_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, str(path))
    if spec is None or spec.loader is None:
        raise NeuroCompileError("cannot load this file as Python", file=str(path))
    pymod = importlib.util.module_from_spec(spec)
    folder = str(path.resolve().parent)
    sys.path.insert(0, folder)
    sys.modules[name] = pymod
    try:
        spec.loader.exec_module(pymod)
    except Exception as err:
        sys.modules.pop(name, None)
        raise NeuroCompileError(
            f"running the file failed: {type(err).__name__}: {err}", file=str(path)) from err
    finally:
        try:
            sys.path.remove(folder)
        except ValueError:
            pass
    return pymod
