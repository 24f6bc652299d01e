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


def pytest_addoption(parser):
    group = parser.getgroup("neurocompile")
    group.addoption("--neurocompile-target", default="emulator",
                    help="target for nc_run: emulator (default), lava, float, loihi2, spinnaker, any installed "
                         "target, or TARGET:RUNNER")


@pytest.fixture(scope="session")
def neurocompile_target(request) -> str:
    return request.config.getoption("--neurocompile-target")


@pytest.fixture
def nc_run(neurocompile_target):
    from neurocompile import api
    from neurocompile.errors import BackendError
    from neurocompile.targets.artifact import Artifact, is_artifact, load_artifact
    from neurocompile.targets.registry import resolve_run

    try:
        target, runner = resolve_run(neurocompile_target)
    except BackendError as err:
        pytest.skip(str(err))
    ok, why = runner.available()
    if not ok:
        pytest.skip(f"target '{neurocompile_target}' cannot run here: {why}")

    def run(model, x, *, probes=(), **compile_options):
        if isinstance(model, Artifact):
            art = model
        elif isinstance(model, str) and is_artifact(model):
            art = load_artifact(model)
        else:
            art = api.compile(model, target=target.name, **compile_options)
        return runner.run(art, x, probes=probes)

    return run
