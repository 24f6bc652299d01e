#!/usr/bin/env bash
# Create (or update) the project's Python environment in .venv and install neurocompile with
# everything the demo, the tests and CI's checks (ruff, lint-imports: the `test` extra) use.
# Idempotent: a second run only checks.
#   NEUROCOMPILE_PYTHON   interpreter to build .venv from (default: python3.11, else python3)
#   NEUROCOMPILE_TORCH    torch requirement (default torch==2.13.0, the CPU wheel CI has on disk)
#   NEUROCOMPILE_NO_LAVA=1  skip the separate Lava (Python 3.10) environment
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV="$ROOT/.venv"
PY=${NEUROCOMPILE_PYTHON:-}
if [ -z "$PY" ]; then
  for cand in python3.11 python3.12 python3 python; do
    if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; assert (3,10) <= sys.version_info[:2] < (3,14)' 2>/dev/null; then
      PY=$cand; break
    fi
  done
fi
[ -n "$PY" ] || { echo "setup: no Python 3.10-3.13 found (set NEUROCOMPILE_PYTHON)" >&2; exit 1; }

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV with $($PY --version)"
  "$PY" -m venv "$VENV"
fi
STAMP="$VENV/.neurocompile-installed"
WANT=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q "${NEUROCOMPILE_TORCH:-torch==2.13.0}"
  "$VENV/bin/python" -m pip install -q -e ".[all]"
  # norse's exporter is checked by tests/frontends/conventions; its torchvision dependency would
  # pull another torch, so it goes in without dependencies (it needs none beyond torch and nir here)
  "$VENV/bin/python" -m pip install -q --no-deps "norse==1.1.0"
  echo "$WANT" > "$STAMP"
fi
"$VENV/bin/python" -c 'import neurocompile, torch, snntorch, nir; print("setup: neurocompile", neurocompile.__version__, "torch", torch.__version__, "snntorch", snntorch.__version__, "nir", nir.__version__)'
"$VENV/bin/ruff" --version >/dev/null && "$VENV/bin/lint-imports" --help >/dev/null \
  || { echo "setup: ruff / lint-imports missing from $VENV (the test extra)" >&2; exit 1; }

if [ "${NEUROCOMPILE_NO_LAVA:-0}" != "1" ] && [ -f scripts/setup_lava_env.sh ]; then
  bash scripts/setup_lava_env.sh
fi
