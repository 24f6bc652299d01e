#!/usr/bin/env bash
# Create the separate Lava environment: lava-nc 0.10.0 runs only on Python 3.10 with numpy<2.
# The Loihi backend drives it as a separate process (as a Loihi host is separate from the
# training machine). Finds Python 3.10 on PATH or through pyenv; NEUROCOMPILE_PY310 overrides.
# Result: .venv-lava/bin/python (or $NEUROCOMPILE_LAVA_ENV/bin/python).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
ENV_DIR=${NEUROCOMPILE_LAVA_ENV:-$ROOT/.venv-lava}

is310() { "$@" -c 'import sys; assert sys.version_info[:2] == (3, 10)' >/dev/null 2>&1; }
PY310=()
if [ -n "${NEUROCOMPILE_PY310:-}" ]; then
  PY310=("$NEUROCOMPILE_PY310")
elif is310 python3.10; then
  PY310=(python3.10)
elif command -v pyenv >/dev/null 2>&1; then
  for v in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.10(\.[0-9]+)?$' | sort -V -r); do
    cand="$(pyenv root)/versions/$v/bin/python"
    if is310 "$cand"; then PY310=("$cand"); break; fi
  done
fi
if [ ${#PY310[@]} -eq 0 ]; then
  for cand in /usr/bin/python3.10 /usr/local/bin/python3.10 "$HOME"/.pyenv/versions/3.10*/bin/python; do
    if [ -x "$cand" ] && is310 "$cand"; then PY310=("$cand"); break; fi
  done
fi
if [ ${#PY310[@]} -eq 0 ]; then
  echo "setup-lava: no Python 3.10 found (lava-nc 0.10.0 needs it). Install one (e.g. 'pyenv install 3.10')" >&2
  echo "            or set NEUROCOMPILE_PY310=/path/to/python3.10. The Loihi emulator works without it." >&2
  exit 1
fi
if [ ! -x "$ENV_DIR/bin/python" ]; then
  echo "setup-lava: creating $ENV_DIR with $("${PY310[@]}" --version)"
  "${PY310[@]}" -m venv "$ENV_DIR"
fi
if ! "$ENV_DIR/bin/python" -c 'import lava, numpy; assert numpy.__version__ < "2"' >/dev/null 2>&1; then
  "$ENV_DIR/bin/python" -m pip install -q --upgrade pip
  "$ENV_DIR/bin/python" -m pip install -q "lava-nc==0.10.0" "numpy<2"
fi
"$ENV_DIR/bin/python" -c 'import lava.magma.core.run_configs, numpy; print("setup-lava: lava-nc 0.10.0 ready, numpy", numpy.__version__)'
echo "$ENV_DIR/bin/python"
