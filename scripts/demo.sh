#!/usr/bin/env bash
# The main job: set up (first run only), compile the shipped snnTorch digits model and run its
# held-out split, printing accuracy and spike counts.
set -euo pipefail
cd "$(dirname "$0")/.."
NEUROCOMPILE_NO_LAVA=${NEUROCOMPILE_NO_LAVA:-1} bash scripts/setup.sh >&2
NC=.venv/bin/neurocompile
TARGET=${TARGET:-float}
$NC zoo-data digits -o build/digits-data
$NC compile zoo:digits --target "$TARGET" -o "build/digits-$TARGET"
$NC run "build/digits-$TARGET" --input build/digits-data/X.npy --labels build/digits-data/y.npy -o "build/digits-$TARGET-out.npz"
