"""The Lava subprocess is isolated from the host interpreter and leaves no process behind.

* a host ``PYTHONPATH`` (here: a fake numpy that raises on import, as the main environment's
  numpy 2 would in Lava's numpy 1.x interpreter) never reaches the Lava interpreter;
* every Lava run -- success, timeout, SIGTERM of the host -- ends its whole process group
  (Lava forks its own workers); processes are counted through /proc by a marker variable;
* probing an interpreter has a timeout; the "no Lava" guidance works from a wheel.
"""
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid

import numpy as np
import pytest

from lava_util import require_lava
from neurocompile.targets.loihi2 import emulator
from neurocompile.targets.loihi2.lava import setup_env
from neurocompile.targets.loihi2.lava.host import run_in_lava
from neurocompile.targets.loihi2.program import LoihiDense, LoihiLIF, LoihiProgram

TESTS = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MARK = "NEUROCOMPILE_TEST_MARK"
pytestmark = pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs /proc")


def _program():
    return LoihiProgram(1, [LoihiLIF("a", 1, 4095, 0, 10, np.zeros(1, dtype=np.int64), probe=True)],
                        [LoihiDense("d", "input", "a", np.array([[100]]))])


def _marked(token, cmd_part=None):
    """Live (non-zombie) processes other than this one whose environment holds MARK=token."""
    needle = f"{MARK}={token}".encode()
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = f.read().split(b"\0")
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if state != b"Z" and needle in env and (cmd_part is None or cmd_part.encode() in cmd):
            found.append(int(pid))
    return found


def _wait_none(token, seconds=10.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        left = _marked(token)
        if not left:
            return []
        time.sleep(0.1)
    return _marked(token)


@pytest.fixture
def token(monkeypatch):
    tok = uuid.uuid4().hex
    monkeypatch.setenv(MARK, tok)
    return tok


def test_marker_scan_sees_children(token):
    """The /proc scan itself works: a marked child is seen, and gone once it exits."""
    p = subprocess.Popen(["sleep", "30"], env=dict(os.environ))
    try:
        # until the child has exec'd, /proc shows the environment this process started with
        # (without the token): poll instead of looking once (seen failing once under load in CI)
        deadline = time.monotonic() + 10.0
        while _marked(token) != [p.pid] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _marked(token) == [p.pid]
    finally:
        p.kill()
        p.wait()
    assert _marked(token) == []


def test_host_pythonpath_does_not_reach_lava(tmp_path, monkeypatch, token):
    py = require_lava()
    fake = tmp_path / "site" / "numpy"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('host numpy leaked into Lava')\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "site"))
    monkeypatch.setenv("PYTHONHOME", str(tmp_path / "nohome"))  # would break any interpreter
    x = np.zeros((6, 1), dtype=bool)
    x[[0, 2, 3], 0] = True
    program = _program()
    before = _marked(token)
    got = run_in_lava(program, x, python=py, timeout=120)
    want = emulator.run(program, x)
    np.testing.assert_array_equal(got["a"]["spikes"], want["a"]["spikes"])
    np.testing.assert_array_equal(got["a"]["v"], want["a"]["v"])
    assert before == [] and _wait_none(token, 5) == []


def test_timeout_ends_the_process_group(token):
    py = require_lava()
    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match="exceeded"):
        run_in_lava(_program(), np.ones((200000, 1), dtype=bool), python=py, timeout=4)
    assert time.monotonic() - t0 < 20
    assert _wait_none(token) == []


def test_sigterm_of_the_host_ends_the_process_group(tmp_path, token):
    """SIGTERM to the host while Lava runs (with its workers forked): nothing is left."""
    py = require_lava()
    script = tmp_path / "host.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        import numpy as np
        sys.path[:0] = [{os.path.dirname(__file__)!r}, {TESTS!r}]
        from test_lava_isolation import _program
        from neurocompile.targets.loihi2.lava.host import run_in_lava
        run_in_lava(_program(), np.ones((200000, 1), dtype=bool), python={py!r}, timeout=300)
    """))
    host = subprocess.Popen([sys.executable, str(script)], env=dict(os.environ),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while len(_marked(token, "run_program.py")) < 3:  # the runner and Lava's workers
            assert host.poll() is None, host.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "Lava never started its workers"
            time.sleep(0.1)
        host.send_signal(signal.SIGTERM)
        assert host.wait(timeout=30) == -signal.SIGTERM
    finally:
        if host.poll() is None:
            host.kill()
            host.wait()
        host.stderr.close()
    assert _wait_none(token) == []


def test_probe_of_a_hanging_interpreter_times_out(tmp_path):
    hang = tmp_path / "python"
    hang.write_text("#!/bin/sh\nexec sleep 60\n")
    hang.chmod(0o755)
    t0 = time.monotonic()
    r = setup_env.probe(str(hang), "print(1)", timeout=1)
    assert r.returncode == 124 and "did not answer" in r.stderr
    with pytest.raises(setup_env.BackendError, match="cannot import Lava"):
        setup_env.check_env(str(hang), timeout=1)
    assert time.monotonic() - t0 < 10


def test_no_lava_guidance_names_the_cli_and_the_user_cache(monkeypatch):
    monkeypatch.setattr(setup_env, "checkout_root", lambda: None)  # as installed from a wheel
    assert setup_env.default_env_dir() == setup_env.Path(os.path.expanduser("~/.cache/neurocompile/lava-env"))
    hint = setup_env.no_lava_hint()
    assert "neurocompile setup loihi" in hint and "scripts/" not in hint
