"""Create and check Lava's own environment: lava-nc 0.10.0 needs Python 3.10 and numpy<2.

The Loihi backend drives this interpreter as a separate process, as a Loihi host is separate from
the training machine. Python 3.10 is searched on PATH (``python3.10``), then through pyenv
(``pyenv versions``, ``$(pyenv root)/versions/3.10.*``); ``NEUROCOMPILE_PY310`` overrides.

The environment lives in the checkout's ``.venv-lava`` when neurocompile runs from a source
checkout, else (an installed wheel) in ``~/.cache/neurocompile/lava-env``; ``neurocompile setup
loihi`` creates it either way.

Every start of a foreign interpreter here goes through :func:`lava_subprocess_env` (no host
``PYTHONPATH``: the main environment's numpy 2 must never shadow Lava's numpy 1.x) and has a
timeout, so probing a broken or hanging interpreter never hangs the caller.
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path

from neurocompile.errors import BackendError

LAVA_REQUIREMENTS = ["lava-nc==0.10.0", "numpy<2"]
#: lava-dl's netx (reads/runs .net files; the netx interop tests use it). Installed with --no-deps:
#: its torch requirement on Python 3.10 resolves to the CUDA build, and netx's Lava-side code needs
#: only h5py (the harness stubs the two torch/slayer names netx imports; see tests/netx_util.py).
NETX_NO_DEPS = ["lava-dl==0.6.0"]
NETX_REQUIREMENTS = ["h5py>=3.8,<3.12"]
#: seconds allowed for one probe of an interpreter (version check, ``import lava``)
PROBE_TIMEOUT = 120
#: interpreter flags for every Lava-side process: isolated mode (no PYTHON* variables, no user
#: site-packages, no script directory on sys.path); the runner loads its modules by file path
ISOLATED_FLAGS = ["-I"]
#: variables that would point the Lava interpreter at another environment's packages
_FOREIGN_VARS = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE",
                 "PYTHONEXECUTABLE", "__PYVENV_LAUNCHER__", "VIRTUAL_ENV", "CONDA_PREFIX")
USER_ENV_DIR = os.path.join("~", ".cache", "neurocompile", "lava-env")


def lava_subprocess_env(extra: dict | None = None) -> dict:
    """``os.environ`` without the host interpreter's path settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in _FOREIGN_VARS}
    env["PYTHONNOUSERSITE"] = "1"
    env.update(extra or {})
    return env


def probe(python: str, code: str, timeout: float = PROBE_TIMEOUT) -> subprocess.CompletedProcess:
    """Run ``python -I -c code`` in the isolated environment with a timeout.

    Returns the CompletedProcess (text mode); a timeout or an unstartable interpreter gives
    returncode 124 resp. 127 with the reason in ``stderr``, never an exception or a hang.
    """
    try:
        return subprocess.run([python, *ISOLATED_FLAGS, "-c", code], capture_output=True, text=True,
                              timeout=timeout, env=lava_subprocess_env(), stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess([python], 124, "", f"{python} did not answer within {timeout} s")
    except OSError as err:
        return subprocess.CompletedProcess([python], 127, "", f"{python} cannot be started: {err}")


def _is_py310(cmd: list[str]) -> bool:
    r = probe(cmd[0], "import sys; assert sys.version_info[:2] == (3, 10)", timeout=60)
    return r.returncode == 0


def find_python310() -> str | None:
    cands = []
    if os.environ.get("NEUROCOMPILE_PY310"):
        cands.append(os.environ["NEUROCOMPILE_PY310"])
    if shutil.which("python3.10"):
        cands.append(shutil.which("python3.10"))
    roots = []
    if shutil.which("pyenv"):
        try:
            r = subprocess.run(["pyenv", "root"], capture_output=True, text=True, timeout=30,
                               stdin=subprocess.DEVNULL)
            if r.returncode == 0:
                roots.append(r.stdout.strip())
        except (OSError, subprocess.TimeoutExpired):
            pass
    roots.append(os.path.expanduser("~/.pyenv"))
    for root in roots:
        cands += sorted(glob.glob(os.path.join(root, "versions", "3.10*", "bin", "python")), reverse=True)
    cands += ["/usr/bin/python3.10", "/usr/local/bin/python3.10"]
    for c in cands:
        if c and os.path.exists(c) and _is_py310([c]):
            return c
    return None


def checkout_root() -> Path | None:
    """The source checkout this package runs from, or None (an installed wheel)."""
    root = Path(__file__).resolve().parents[4]
    try:
        text = (root / "pyproject.toml").read_text(encoding="utf-8")
    except OSError:
        return None
    return root if 'name = "neurocompile"' in text and (root / "neurocompile").is_dir() else None


def default_env_dir() -> Path:
    """The checkout's ``.venv-lava``; for an installed package ``~/.cache/neurocompile/lava-env``."""
    checkout = checkout_root()
    if checkout is not None:
        return checkout / ".venv-lava"
    return Path(os.path.expanduser(USER_ENV_DIR))


def no_lava_hint() -> str:
    """What to do when no Lava environment is found (works from a wheel as from a checkout)."""
    return (f"no Lava environment: run `neurocompile setup loihi` (creates {default_env_dir()}) "
            f"or set NEUROCOMPILE_LAVA_PYTHON to a Lava interpreter")


def check_env(python: str, timeout: float = PROBE_TIMEOUT) -> str:
    """Version string of a working Lava interpreter, or BackendError saying what is wrong."""
    r = probe(python, "import lava.magma.core.run_configs as c, numpy, sys; "
                      "print(sys.version.split()[0], numpy.__version__)", timeout=timeout)
    if r.returncode != 0:
        raise BackendError(f"{python} cannot import Lava: {r.stderr.strip().splitlines()[-1:]}")
    return r.stdout.strip()


def _pip_works(py: Path) -> bool:
    """Whether the environment's pip can start (a venv's pip can be left broken by an interrupted
    or racing install)."""
    return probe(str(py), "import pip._internal.commands.install", timeout=PROBE_TIMEOUT).returncode == 0


def _pip(py: Path, requirements: list[str], *flags: str) -> None:
    """``pip install`` into the Lava environment; a failure is a one-line error with pip's last line."""
    def run(*args):
        return subprocess.run([str(py), *args], capture_output=True, text=True, timeout=3600,
                              env=lava_subprocess_env(), stdin=subprocess.DEVNULL)

    r = run("-m", "pip", "install", "-q", *flags, *requirements)
    if r.returncode != 0:
        last = next((ln for ln in reversed((r.stderr or r.stdout).splitlines()) if ln.strip()
                     and not ln.startswith("WARNING: Location")), "")
        raise BackendError(f"installing {' '.join(requirements)} into {py.parent.parent} failed: {last.strip()}")


def setup_lava_env(env_dir: str | Path | None = None, log=print) -> str:
    """Create (if needed) and check the Lava environment; return its python path."""
    env_dir = Path(env_dir) if env_dir else default_env_dir()
    py = env_dir / "bin" / "python"
    if not py.exists():
        base = find_python310()
        if base is None:
            raise BackendError("no Python 3.10 found (lava-nc 0.10.0 needs it): install one "
                               "(e.g. 'pyenv install 3.10') or set NEUROCOMPILE_PY310=/path/to/python3.10")
        log(f"creating {env_dir} with {base}")
        env_dir.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([base, "-m", "venv", str(env_dir)], check=True, timeout=600,
                       env=lava_subprocess_env(), stdin=subprocess.DEVNULL)
    if not _pip_works(py):
        base = find_python310()
        if base is None:
            raise BackendError(f"pip in {env_dir} does not start and no Python 3.10 is found to rebuild it")
        log(f"pip in {env_dir} does not start: recreating the environment")
        subprocess.run([base, "-m", "venv", "--clear", str(env_dir)], check=True, timeout=600,
                       env=lava_subprocess_env(), stdin=subprocess.DEVNULL)
        if not _pip_works(py):
            raise BackendError(f"pip in {env_dir} does not start even in a new environment ({base})")
    try:
        version = check_env(str(py))
    except BackendError:
        log(f"installing {' '.join(LAVA_REQUIREMENTS)} into {env_dir}")
        _pip(py, LAVA_REQUIREMENTS)
        version = check_env(str(py))
    if probe(str(py), "import h5py, importlib.util as u; assert u.find_spec('lava.lib.dl.netx')",
             timeout=PROBE_TIMEOUT).returncode != 0:
        log(f"installing {' '.join(NETX_NO_DEPS)} (--no-deps) and {' '.join(NETX_REQUIREMENTS)} into {env_dir}")
        _pip(py, NETX_NO_DEPS, "--no-deps")
        _pip(py, NETX_REQUIREMENTS)
    log(f"Lava environment ready: {py} (Python, numpy: {version})")
    return str(py)
