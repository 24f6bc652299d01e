#!/usr/bin/env bash
# Set up everything (first run only) and run the whole test suite. Extra arguments go to pytest.
# The exit status is pytest's: 0 only when tests ran and passed (5 = no tests collected).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export NEUROCOMPILE_LAVA_PYTHON=${NEUROCOMPILE_LAVA_PYTHON:-$(pwd)/.venv-lava/bin/python}
exec .venv/bin/python -m pytest tests "$@"
