#!/usr/bin/env bash
# The main job: set up (first run only), compile the shipped snnTorch digits model for Loihi 2
# (quantized, mapped onto cores), run its 450 held-out digits on the float reference and on the
# bit-accurate emulator, and print both accuracies, spike counts per layer and cores used.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGETS=${TARGETS:-float,emulator}
case ",$TARGETS," in *,lava,*) NO_LAVA=0 ;; *) NO_LAVA=1 ;; esac   # Lava's env only when asked for
NEUROCOMPILE_NO_LAVA=${NEUROCOMPILE_NO_LAVA:-$NO_LAVA} bash scripts/setup.sh >&2
NC=.venv/bin/neurocompile
$NC zoo-data digits -o build/digits-data
$NC compile zoo:digits --target loihi2 --calibration build/digits-data/calib.npy -o build/digits-loihi2
$NC run build/digits-loihi2 --input build/digits-data/X.npy --labels build/digits-data/y.npy -o build/digits-loihi2-out.npz
$NC validate build/digits-loihi2 --input build/digits-data/X.npy --labels build/digits-data/y.npy \
    --targets "$TARGETS" --report build/digits-report
