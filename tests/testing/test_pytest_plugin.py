"""The pytest plugin runs a user's test on the target chosen on the command line."""
pytest_plugins = ["pytester"]

USER_TEST = '''
import numpy as np
from neurocompile.ir import sequential
from neurocompile.ir import nodes as N

def test_user_model(nc_run, neurocompile_target):
    g = sequential([("in", N.Input(shape=(2,))), ("fc", N.Linear(weight=[[1.0, 0.0], [0.0, 2.0]])),
                    ("l", N.IF(v_threshold=1.5)), ("o", N.Output())], dt=1.0)
    x = np.ones((6, 2))
    out = nc_run(g, x).output[:, 0]
    # hand trace: neuron 0 gets 1 per step (fires every 2nd step), neuron 1 gets 2 (every step)
    assert out[:, 0].tolist() == [0, 1, 0, 1, 0, 1]
    assert out[:, 1].tolist() == [1, 1, 1, 1, 1, 1]
    print("TARGET", neurocompile_target)
'''


def _run(pytester, target):
    pytester.makepyfile(test_user=USER_TEST)
    return pytester.runpytest_subprocess(f"--neurocompile-target={target}", "-s", "-p", "no:cacheprovider")


def test_emulator_target(pytester):
    res = _run(pytester, "emulator")
    res.assert_outcomes(passed=1)
    res.stdout.fnmatch_lines(["*TARGET emulator*"])


def test_float_target(pytester):
    res = _run(pytester, "float")
    res.assert_outcomes(passed=1)


def test_lava_target(pytester, monkeypatch):
    from lava_util import require_lava

    monkeypatch.setenv("NEUROCOMPILE_LAVA_PYTHON", require_lava())
    res = _run(pytester, "lava")
    res.assert_outcomes(passed=1)
    res.stdout.fnmatch_lines(["*TARGET lava*"])


def test_unknown_target_skips_with_reason(pytester):
    res = _run(pytester, "nochip")
    res.assert_outcomes(skipped=1)
