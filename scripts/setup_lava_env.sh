#!/usr/bin/env bash
# Create the separate Lava environment (lava-nc 0.10.0 needs Python 3.10 and numpy<2) in
# .venv-lava (or $NEUROCOMPILE_LAVA_ENV). Same as `neurocompile setup loihi`, which also works from
# an installed wheel (there its default is ~/.cache/neurocompile/lava-env); Python 3.10 is found
# on PATH or through pyenv (NEUROCOMPILE_PY310 overrides).
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/neurocompile setup loihi --env "${NEUROCOMPILE_LAVA_ENV:-$(pwd)/.venv-lava}"
