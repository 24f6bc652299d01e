"""Main-interpreter side of the Lava harness.

Lava (lava-nc 0.10) needs its own Python (3.10, numpy 1.x), so programs are
run there in a subprocess: the program and its input are saved to a temp
dir, ``run_program.py`` is executed by the Lava interpreter, and the result
npz is loaded back (``allow_pickle=False``) into the same dict layout as
:func:`neurocompile.targets.loihi2.emulator.run`.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from neurocompile.targets.loihi2.lava.setup_env import (
    ISOLATED_FLAGS,
    USER_ENV_DIR,
    checkout_root,
    lava_subprocess_env,
    no_lava_hint,
)
from neurocompile.targets.loihi2.program import LoihiProgram

ENV_VAR = "NEUROCOMPILE_LAVA_PYTHON"
DEFAULT_ENV = USER_ENV_DIR
_RUNNER = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                       "run_program.py")
#: seconds between SIGTERM and SIGKILL when ending the Lava process group
_GRACE_S = 2.0


def _is_executable(path: str) -> bool:
    """True if ``path`` is an existing executable file."""
    return os.path.isfile(path) and os.access(path, os.X_OK)


def find_lava_python() -> Optional[str]:
    """Path of the interpreter that has Lava, or None.

    Looks at ``$NEUROCOMPILE_LAVA_PYTHON`` first (used as given; None if it
    does not name an executable), then the checkout's ``.venv-lava`` (when
    running from a source checkout), then
    ``~/.cache/neurocompile/lava-env/bin/python`` (both made by
    ``neurocompile setup loihi``).  Never starts the interpreter, so it
    cannot hang.
    """
    env = os.environ.get(ENV_VAR)
    if env:
        path = os.path.expanduser(env)
        return path if _is_executable(path) else None
    checkout = checkout_root()
    dirs = ([str(checkout / ".venv-lava")] if checkout is not None else []) + [os.path.expanduser(DEFAULT_ENV)]
    for env_dir in dirs:
        path = os.path.join(env_dir, "bin", "python")
        if _is_executable(path):
            return path
    return None


def _resolve_python(python: Optional[str]) -> str:
    """The interpreter to use, or RuntimeError saying what is missing."""
    if python is not None:
        if not _is_executable(python):
            raise RuntimeError(f"Lava interpreter {python!r} is not an "
                               f"executable file")
        return python
    found = find_lava_python()
    if found is None:
        env = os.environ.get(ENV_VAR)
        where = (f"${ENV_VAR}={env!r} is not an executable file" if env else
                 f"${ENV_VAR} is unset")
        raise RuntimeError(f"No Lava interpreter found ({where}); {no_lava_hint()} "
                           f"(Python 3.10 + lava-nc 0.10.0).")
    return found


def _group_alive(pgid: int) -> bool:
    """True while a non-zombie process of group ``pgid`` exists."""
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:  # killpg also reaches zombies nobody reaps: look for a live member
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    with open(f"/proc/{pid}/stat", "rb") as f:
                        fields = f.read().rsplit(b")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[2]) == pgid and fields[0] != b"Z":
                    return True
        return False
    except OSError:  # no /proc: trust killpg
        return True


def _end_group(proc: subprocess.Popen) -> None:
    """End every process of the group we started for ``proc`` (Lava forks its own workers):
    SIGTERM, then SIGKILL after a short grace period; reap ``proc``."""
    pgid = proc.pid  # start_new_session=True: the child leads its own group
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            break
        deadline = time.monotonic() + (_GRACE_S if sig == signal.SIGTERM else 5.0)
        while time.monotonic() < deadline:
            if proc.poll() is not None and not _group_alive(pgid):
                break
            time.sleep(0.02)
        else:
            continue
        break
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass


class _Terminated(BaseException):
    """SIGTERM arrived while a Lava subprocess was running."""


class _SigtermGuard:
    """Turn SIGTERM into an exception while a Lava run is in progress (main thread only), so
    the process group is ended before this interpreter exits; then re-deliver the signal to
    the previous handler."""

    def __enter__(self):
        self.old = None
        if threading.current_thread() is threading.main_thread():
            try:
                self.old = signal.signal(signal.SIGTERM, self._raise)
            except (ValueError, OSError):
                self.old = None
        return self

    @staticmethod
    def _raise(signum, frame):
        raise _Terminated()

    def __exit__(self, exc_type, exc, tb):
        if self.old is not None:
            signal.signal(signal.SIGTERM, self.old)
        if exc_type is _Terminated:
            if callable(self.old):
                self.old(signal.SIGTERM, None)
                return True
            if self.old == signal.SIG_IGN:
                return True
            signal.raise_signal(signal.SIGTERM)  # default action: terminate
            raise SystemExit(128 + signal.SIGTERM)
        return False


def _run_runner(py: str, args: List[str], tmp: str, env: Dict[str, str], timeout: float) -> None:
    """Run the runner in its own session/process group; end the whole group on every exit path
    (success, failure, timeout, KeyboardInterrupt, SIGTERM). RuntimeError on failure/timeout."""
    log_path = os.path.join(tmp, "lava-stderr.txt")
    with open(log_path, "wb") as log, _SigtermGuard():
        # Files, not pipes: a Lava worker that outlives the runner cannot block the read.
        proc = subprocess.Popen([py, *ISOLATED_FLAGS, _RUNNER] + args, cwd=tmp, env=env,
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                start_new_session=True)
        try:
            try:
                returncode = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                raise RuntimeError(f"Lava run exceeded {timeout} s (killed)") from None
        finally:
            _end_group(proc)
    if returncode != 0:
        with open(log_path, "rb") as f:
            tail = f.read().decode(errors="replace")[-4000:]
        raise RuntimeError(f"Lava run failed (exit {returncode}) "
                           f"with {py}:\n{tail}")


def _to_result(z, program: LoihiProgram) -> Dict:
    """npz written by run_program -> dict shaped like emulator.loihi.run."""
    names = [str(n) for n in z["names"]]
    if names != [n.name for n in program.neurons]:
        raise RuntimeError(f"Lava result names {names} do not match the "
                           f"program")
    out: Dict = {"n_steps": int(z["n_steps"]),
                 "wall_build_run_s": z["wall_build_run_s"].copy(),
                 "wall_readout_s": z["wall_readout_s"].copy()}
    for i, n in enumerate(program.neurons):
        rec = {"spikes": z[f"n{i}_spikes"]}
        for var in type(n).STATE_VARS:
            if f"n{i}_{var}" in z.files:
                rec[var] = z[f"n{i}_{var}"]
        out[n.name] = rec
    return out


def run_many_in_lava(jobs: Sequence[Tuple[LoihiProgram, np.ndarray]],
                     python: Optional[str] = None,
                     timeout: float = 600, hardware: bool = False) -> List[Dict]:
    """Run several (program, spikes_in) pairs in ONE Lava subprocess.

    ``spikes_in`` is (T, n) or (T, B, n): 0/1 spikes, or graded integer
    payloads for programs with ``input_message_bits > 0``.

    Returns one dict per job, laid out like the emulator's ``run`` (plus
    ``wall_build_run_s``/``wall_readout_s`` per batch element).  Raises
    RuntimeError if no interpreter is found, if the subprocess fails (with
    the tail of its stderr) or if it exceeds ``timeout`` seconds (its whole
    process group is then killed). ``hardware=True`` runs the same process
    network with ``Loihi2HwCfg`` (a Loihi host with lava-loihi).
    """
    py = _resolve_python(python)
    tmp = tempfile.mkdtemp(prefix="neurocompile-lava-")
    try:
        args = []
        for k, (program, spikes_in) in enumerate(jobs):
            program.validate()
            x = np.asarray(spikes_in)
            if x.dtype.kind not in "biu":
                raise ValueError(f"job {k}: spikes_in must be int or bool")
            if int(program.input_message_bits) > 0:
                # graded payloads, sent unchanged by Lava's int32 RingBuffer
                x = program.check_input(x).astype(np.int64)
            else:
                x = (x != 0).astype(np.uint8)
            pdir = os.path.join(tmp, f"prog{k}")
            program.save(pdir)
            np.save(os.path.join(tmp, f"in{k}.npy"), x)
            args += [pdir, os.path.join(tmp, f"in{k}.npy"),
                     os.path.join(tmp, f"out{k}.npz")]
        # No host PYTHONPATH and isolated mode (-I): the runner loads
        # run_program.py and the program module(s) by file path, so the Lava
        # interpreter never sees this environment's packages (numpy 2, torch).
        env = lava_subprocess_env({"NEUROCOMPILE_LAVA_CFG": "hw"} if hardware else None)
        _run_runner(py, args, tmp, env, timeout)
        results = []
        for k, (program, _) in enumerate(jobs):
            with np.load(os.path.join(tmp, f"out{k}.npz"),
                         allow_pickle=False) as z:
                results.append(_to_result(z, program))
        return results
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_in_lava(program: LoihiProgram, spikes_in,
                python: Optional[str] = None, timeout: float = 600,
                hardware: bool = False) -> Dict:
    """Run ``program`` on ``spikes_in`` ((T, n) or (T, B, n)) in Lava.

    Same result layout as :func:`neurocompile.targets.loihi2.emulator.run`.
    """
    return run_many_in_lava([(program, spikes_in)], python=python,
                            timeout=timeout, hardware=hardware)[0]


__all__ = ["find_lava_python", "run_in_lava", "run_many_in_lava", "ENV_VAR"]
