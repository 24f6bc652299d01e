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
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from neurocompile.targets.loihi2.program import LoihiProgram

ENV_VAR = "NEUROCOMPILE_LAVA_PYTHON"
DEFAULT_ENV = os.path.join("~", ".cache", "neurocompile", "lava-env")
_RUNNER = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                       "run_program.py")
#: the checkout (or site-packages) holding the ``neurocompile`` package
_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__))))))


def _is_executable(path: str) -> bool:
    """True if ``path`` is an existing executable file."""
    return os.path.isfile(path) and os.access(path, os.X_OK)


def find_lava_python() -> Optional[str]:
    """Path of the interpreter that has Lava, or None.

    Looks at ``$NEUROCOMPILE_LAVA_PYTHON`` first (used as given; None if it
    does not name an executable), then the checkout's ``.venv-lava`` (made by
    ``scripts/setup_lava_env.sh``), then ``~/.cache/neurocompile/lava-env/bin/python``.  Does not start the interpreter.
    """
    env = os.environ.get(ENV_VAR)
    if env:
        path = os.path.expanduser(env)
        return path if _is_executable(path) else None
    repo_env = os.path.join(_REPO_ROOT, ".venv-lava")
    for env_dir in (repo_env, os.path.expanduser(DEFAULT_ENV)):
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
                 f"${ENV_VAR} is unset and neither the checkout's .venv-lava "
                 f"nor {DEFAULT_ENV} holds one")
        raise RuntimeError(
            f"No Lava interpreter found: {where}. Run `neurocompile setup loihi` "
            f"(Python 3.10 + lava-nc 0.10.0) or point {ENV_VAR} at a Lava python.")
    return found


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the process group we started for ``proc`` (Lava forks)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


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
        env = dict(os.environ)
        if hardware:
            env["NEUROCOMPILE_LAVA_CFG"] = "hw"
        env["PYTHONPATH"] = os.pathsep.join(
            [_REPO_ROOT] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH")
                            else []))
        # Run by file path: the Lava interpreter then never imports package
        # __init__ files that may need torch / numpy 2.
        proc = subprocess.Popen([py, _RUNNER] + args, cwd=tmp, env=env,
                                stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE,
                                start_new_session=True)
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            raise RuntimeError(f"Lava run exceeded {timeout} s (killed)")
        except BaseException:
            _kill_group(proc)
            raise
        if proc.returncode != 0:
            tail = stderr.decode(errors="replace")[-4000:]
            raise RuntimeError(f"Lava run failed (exit {proc.returncode}) "
                               f"with {py}:\n{tail}")
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
