"""Create and check Lava's own environment: lava-nc 0.10.0 needs Python 3.10 and numpy<2.

The Loihi backend drives this interpreter as a separate process, as a Loihi host is separate from
the training machine. Python 3.10 is searched on PATH (``python3.10``), then through pyenv
(``pyenv versions``, ``$(pyenv root)/versions/3.10.*``); ``NEUROCOMPILE_PY310`` overrides.
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path

from neurocompile.errors import BackendError

LAVA_REQUIREMENTS = ["lava-nc==0.10.0", "numpy<2"]


def _is_py310(cmd: list[str]) -> bool:
    try:
        r = subprocess.run(cmd + ["-c", "import sys; assert sys.version_info[:2] == (3, 10)"],
                           capture_output=True, timeout=60)
        return r.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def find_python310() -> str | None:
    cands = []
    if os.environ.get("NEUROCOMPILE_PY310"):
        cands.append(os.environ["NEUROCOMPILE_PY310"])
    if shutil.which("python3.10"):
        cands.append(shutil.which("python3.10"))
    roots = []
    if shutil.which("pyenv"):
        r = subprocess.run(["pyenv", "root"], capture_output=True, text=True)
        if r.returncode == 0:
            roots.append(r.stdout.strip())
    roots.append(os.path.expanduser("~/.pyenv"))
    for root in roots:
        cands += sorted(glob.glob(os.path.join(root, "versions", "3.10*", "bin", "python")), reverse=True)
    cands += ["/usr/bin/python3.10", "/usr/local/bin/python3.10"]
    for c in cands:
        if c and os.path.exists(c) and _is_py310([c]):
            return c
    return None


def default_env_dir() -> Path:
    checkout = Path(__file__).resolve().parents[4]
    if (checkout / "pyproject.toml").is_file():
        return checkout / ".venv-lava"
    return Path(os.path.expanduser("~/.cache/neurocompile/lava-env"))


def check_env(python: str) -> str:
    """Version string of a working Lava interpreter, or BackendError saying what is wrong."""
    r = subprocess.run([python, "-c", "import lava.magma.core.run_configs as c, numpy, sys; "
                        "print(sys.version.split()[0], numpy.__version__)"], capture_output=True, text=True)
    if r.returncode != 0:
        raise BackendError(f"{python} cannot import Lava: {r.stderr.strip().splitlines()[-1:]}")
    return r.stdout.strip()


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
        subprocess.run([base, "-m", "venv", str(env_dir)], check=True)
    try:
        version = check_env(str(py))
    except BackendError:
        log(f"installing {' '.join(LAVA_REQUIREMENTS)} into {env_dir}")
        subprocess.run([str(py), "-m", "pip", "install", "-q", *LAVA_REQUIREMENTS], check=True)
        version = check_env(str(py))
    log(f"Lava environment ready: {py} (Python, numpy: {version})")
    return str(py)
