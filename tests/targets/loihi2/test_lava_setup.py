"""`neurocompile setup loihi`: finding Python 3.10 and checking a Lava environment."""
import shutil
import subprocess
import sys

import pytest

from neurocompile.errors import BackendError
from neurocompile.targets.loihi2.lava.setup_env import check_env, find_python310


def test_finds_a_python_310():
    py = find_python310()
    if py is None and shutil.which("pyenv") is None and shutil.which("python3.10") is None:
        pytest.skip("no Python 3.10 on this machine")
    assert py is not None
    out = subprocess.run([py, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True)
    assert out.stdout.strip() == "(3, 10)"


def test_override_that_is_not_310_is_ignored(monkeypatch):
    monkeypatch.setenv("NEUROCOMPILE_PY310", sys.executable)  # 3.11+: not usable for Lava
    py = find_python310()
    assert py != sys.executable


def test_interpreter_without_lava_is_reported():
    with pytest.raises(BackendError, match="cannot import Lava"):
        check_env(sys.executable)


def test_configured_lava_env_passes_check():
    from lava_util import require_lava

    assert check_env(require_lava()).startswith("3.10")


def test_hardware_run_config_without_lava_loihi_fails_clearly():
    """The Loihi2HwCfg path of the runner refuses cleanly where lava-loihi is absent."""
    import numpy as np

    from lava_util import require_lava
    from neurocompile.targets.loihi2.lava.host import run_in_lava
    from neurocompile.targets.loihi2.program import LoihiDense, LoihiLIF, LoihiProgram

    require_lava()
    p = LoihiProgram(1, [LoihiLIF("a", 1, 4095, 0, 10, np.zeros(1, dtype=np.int64))],
                     [LoihiDense("d", "input", "a", np.array([[100]]))])
    with pytest.raises(RuntimeError, match="lava-loihi"):
        run_in_lava(p, np.ones((3, 1), dtype=bool), hardware=True)
