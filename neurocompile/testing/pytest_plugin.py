"""pytest plugin: run a user's own tests of a compiled model on the target they choose.

    pytest --neurocompile-target=emulator    # default: the bit-accurate emulator
    pytest --neurocompile-target=lava        # Lava's fixed_pt models (Loihi 2 stand-in)
    pytest --neurocompile-target=float       # the float64 reference

Fixtures:

* ``neurocompile_target``: the chosen target name;
* ``nc_run(model, x, **compile_options)``: compiles ``model`` (anything ``neurocompile.load_model``
  takes, a Graph, or an artifact path) for the target and runs it on ``x``; returns a RunResult.
  A test is skipped, with the reason, when the target cannot run on this machine.
"""
from __future__ import annotations

import pytest

#: which artifact a run target needs
COMPILE_TARGET = {"emulator": "loihi2", "lava": "loihi2", "loihi2": "loihi2", "float": "float",
                  "spinnaker": "spinnaker"}


def pytest_addoption(parser):
    group = parser.getgroup("neurocompile")
    group.addoption("--neurocompile-target", default="emulator",
                    help="target for nc_run: emulator (default), lava, float, loihi2, spinnaker")


@pytest.fixture(scope="session")
def neurocompile_target(request) -> str:
    return request.config.getoption("--neurocompile-target")


@pytest.fixture
def nc_run(neurocompile_target):
    from neurocompile import api
    from neurocompile.targets.artifact import Artifact, is_artifact, load_artifact
    from neurocompile.targets.registry import get_backend
    from neurocompile.errors import BackendError

    try:
        backend = get_backend(neurocompile_target)
    except BackendError as err:
        pytest.skip(str(err))
    ok, why = backend.available()
    if not ok:
        pytest.skip(f"target '{neurocompile_target}' cannot run here: {why}")

    def run(model, x, *, probes=(), **compile_options):
        if isinstance(model, Artifact):
            art = model
        elif isinstance(model, str) and is_artifact(model):
            art = load_artifact(model)
        else:
            art = api.compile(model, target=COMPILE_TARGET.get(neurocompile_target, neurocompile_target),
                              **compile_options)
        on = None if art.target == neurocompile_target else neurocompile_target
        return api.run(art, x, probes=probes, on=on)

    return run
