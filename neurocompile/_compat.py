"""Old import paths (before the 0.2 layout) keep working for one release, with a warning.

``import neurocompile.compiler.graph`` and the like are redirected to the module's new home
(``neurocompile.ir.graph``) by a meta-path finder, and a :class:`DeprecationWarning` names the
new path. Remove in 0.3.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

#: old module (under ``neurocompile.``) -> its new home
MOVED = {
    "artifact": "targets.artifact",
    "backends": "targets",
    "backends.base": "targets.base",
    "backends.float_ref": "targets.float",
    "backends.lava_runner": "targets.loihi2.lava",
    "backends.lava_runner.__init__": "targets.loihi2.lava.__init__",
    "backends.lava_runner.host": "targets.loihi2.lava.host",
    "backends.lava_runner.run_program": "targets.loihi2.lava.run_program",
    "backends.lava_runner.setup_env": "targets.loihi2.lava.setup_env",
    "backends.loihi2": "targets.loihi2.target",
    "backends.registry": "targets.registry",
    "backends.spinnaker.__init__": "targets.spinnaker.__init__",
    "backends.spinnaker.backend": "targets.spinnaker.target",
    "backends.spinnaker.board": "targets.spinnaker.board",
    "backends.spinnaker.check": "targets.spinnaker.check",
    "backends.spinnaker.pynn_script": "targets.spinnaker.pynn_script",
    "compiler": "ir",
    "compiler.graph": "ir.graph",
    "compiler.latency": "ir.latency",
    "compiler.nodes": "ir.nodes",
    "compiler.partition": "targets",
    "compiler.partition.loihi2": "targets.loihi2.partition",
    "compiler.passes": "passes",
    "compiler.quantize": "targets",
    "compiler.quantize.calibration": "passes.activity",
    "compiler.quantize.loihi2": "targets.loihi2.quantize",
    "compiler.quantize.loihi2_connections": "targets.loihi2.connections",
    "compiler.quantize.loihi2_conv": "targets.loihi2.conv",
    "compiler.quantize.loihi2_sdn": "targets.loihi2.sigma_delta",
    "compiler.quantize.loihi2_stats": "targets.loihi2.stats",
    "compiler.quantize.spinnaker": "targets.spinnaker.lowering",
    "compiler.serialize": "ir.serialize",
    "emulator": "targets",
    "emulator.loihi": "targets.loihi2.emulator",
    "emulator.loihi_fast": "targets.loihi2.emulator_fast",
    "emulator.loihi_program": "targets.loihi2.program",
    "emulator.reference": "ir.interpreter",
    "emulator.reference.executor": "ir.interpreter",
    "emulator.reference.ops": "ir.semantics",
    "emulator.sdn_fixed": "targets.loihi2.sdn_fixed",
    "emulator.spinnaker": "targets.spinnaker",
    "emulator.spinnaker.core": "targets.spinnaker.emulator",
    "emulator.spinnaker.fixed": "targets.spinnaker.fixed",
    "emulator.spinnaker.program": "targets.spinnaker.program",
    "models": "frontends",
    "models.loader": "frontends.loader",
    "models.nir_io": "frontends.nir",
    "models.onnx": "frontends.onnx",
    "models.onnx_import": "frontends.onnx",
    "models.snntorch": "frontends.snntorch",
    "models.snntorch_import": "frontends.snntorch",
    "models.zoo": "zoo",
    "readout": "ir.readout",
}


class _Alias(importlib.abc.Loader):
    def __init__(self, new: str):
        self.new = new

    def create_module(self, spec):
        return importlib.import_module(self.new)

    def exec_module(self, module):
        return None


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if not fullname.startswith("neurocompile."):
            return None
        old = fullname[len("neurocompile."):]
        new = MOVED.get(old)
        if new is None:                      # a submodule of a moved package
            head = max((k for k in MOVED if old.startswith(k + ".")), key=len, default=None)
            if head is None:
                return None
            new = MOVED[head] + old[len(head):]
        warnings.warn(f"neurocompile.{old} moved to neurocompile.{new}; the old path goes in 0.3",
                      DeprecationWarning, stacklevel=3)
        return importlib.util.spec_from_loader(fullname, _Alias(f"neurocompile.{new}"), is_package=True)


def install() -> None:
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())   # before the path finder, so no module loads twice
