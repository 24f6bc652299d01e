"""Shared helpers of the fuzz suite: run the CLI in-process with a time limit and check the
one-line error contract (exit 2, one ``error:`` line naming the file, no traceback)."""
from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

from click.testing import CliRunner

from neurocompile.cli.main import cli

DATA = Path(__file__).resolve().parents[1] / "data"
NIR_PAPER = DATA / "nir-paper"
LIF_NIR = NIR_PAPER / "lif_norse.nir"
CNN_NIR = NIR_PAPER / "cnn_sinabs.nir"
TIME_LIMIT = float(os.environ.get("NEUROCOMPILE_FUZZ_TIME_LIMIT", "30"))

_lock = threading.Lock()  # CliRunner swaps sys.stdout: one invocation at a time


class Hang(AssertionError):
    pass


def invoke(*args, limit: float = TIME_LIMIT, env=None):
    """CliRunner().invoke in a daemon thread; a call still running after ``limit`` s fails the
    test (a hang: e.g. a FIFO opened for reading) instead of blocking the suite."""
    box = {}

    def target():
        try:
            box["result"] = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False, env=env)
        except BaseException as err:  # noqa: BLE001 - re-raised in the test's thread
            box["error"] = err

    with _lock:
        t = threading.Thread(target=target, daemon=True)
        t.start()
        t.join(limit)
    if t.is_alive():
        raise Hang(f"neurocompile {' '.join(map(str, args))} still running after {limit} s")
    if "error" in box:
        raise box["error"]
    return box["result"]


def assert_clean(r) -> None:
    """No traceback and no internal error, whatever the exit code."""
    assert "Traceback" not in r.output, r.output
    assert "internal error" not in r.output, r.output
    assert r.exit_code in (0, 2), (r.exit_code, r.output)


def assert_refused(r, name, *, only_line: bool = True) -> str:
    """Exit 2 with exactly one ``error:`` line naming ``name``; with ``only_line`` nothing else
    is printed. Returns the line."""
    assert_clean(r)
    assert r.exit_code == 2, r.output
    lines = [line for line in r.output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1, r.output
    if only_line:
        assert len(lines) == 1, r.output
    assert str(name) in errors[0], (name, errors[0])
    return errors[0]


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst
