#!/usr/bin/env bash
# Test neurocompile AS USERS INSTALL IT: build a wheel from a copy of the source tree, install it
# (not editable) with torch==2.13.0 and the extras [torch,zoo,fast,spinnaker] into a fresh venv,
# then, from a directory outside the checkout, run the README's main job (zoo-data, compile for
# Loihi 2, run with labels: accuracy >= 97 %) and a Lava run of a few samples that must equal the
# emulator's output bit for bit.
#   NEUROCOMPILE_LAVA_PYTHON   the Lava interpreter (default: the checkout's .venv-lava)
#   NEUROCOMPILE_WHEEL_PYTHON  interpreter for the fresh venv (default: the one .venv was made from)
#   NEUROCOMPILE_WHEEL_EXTRAS  extras to install (default: torch,zoo,fast,spinnaker)
#   NEUROCOMPILE_WHEEL_SRC     build from this source tree instead of a copy of the checkout
#   KEEP=1                     keep the work directory (printed) instead of removing it
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
section() { printf '\n==== check_wheel: %s (%ss) ====\n' "$*" "$SECONDS"; }
die() { echo "check_wheel: FAILED: $*" >&2; exit 1; }
# pip without the machine's "Location ... is ignored" noise; its exit status is kept
pip_q() { local py=$1; shift; "$py" -m pip "$@" 2>&1 | { grep -v 'is neither a file nor a directory' || true; }; return "${PIPESTATUS[0]}"; }

[ -x "$ROOT/.venv/bin/python" ] || die "no $ROOT/.venv (run scripts/setup.sh first)"
PY=${NEUROCOMPILE_WHEEL_PYTHON:-$("$ROOT/.venv/bin/python" -c 'import sys; print(sys._base_executable)')}
"$PY" -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' \
  || die "$PY is not Python 3.11 (set NEUROCOMPILE_WHEEL_PYTHON)"
LAVA_PY=${NEUROCOMPILE_LAVA_PYTHON:-$ROOT/.venv-lava/bin/python}
[ -x "$LAVA_PY" ] || die "no Lava interpreter at $LAVA_PY (neurocompile setup loihi)"
EXTRAS=${NEUROCOMPILE_WHEEL_EXTRAS:-torch,zoo,fast,spinnaker}
TORCH=${NEUROCOMPILE_TORCH:-torch==2.13.0}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/neurocompile-wheel.XXXXXX")
case "$WORK" in "$ROOT"/*) die "work directory $WORK is inside the checkout" ;; esac
if [ "${KEEP:-0}" = 1 ]; then echo "check_wheel: work directory $WORK"; else trap 'rm -rf "$WORK"' EXIT; fi

section "build the wheel"
# from a clean copy: an in-tree build/ could carry modules that no longer exist into the wheel
mkdir -p "$WORK/src"
tar -C "${NEUROCOMPILE_WHEEL_SRC:-$ROOT}" --exclude=./.git --exclude='./.venv*' --exclude=./build --exclude='*.egg-info' \
    --exclude=__pycache__ --exclude=.pytest_cache --exclude=.ruff_cache -cf - . | tar -C "$WORK/src" -xf -
pip_q "$ROOT/.venv/bin/python" wheel -q --no-deps "$WORK/src" -w "$WORK/dist" | tee "$WORK/build.log"
if grep -q "SetuptoolsDeprecationWarning" "$WORK/build.log"; then
  echo "check_wheel: WARNING: the build printed a SetuptoolsDeprecationWarning (see above)"
fi
WHEEL=$(ls "$WORK"/dist/neurocompile-*.whl)
echo "built $(basename "$WHEEL")"
"$ROOT/.venv/bin/python" - "$WHEEL" <<'EOF'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
need = ["neurocompile/targets/loihi2/lava/run_program.py", "neurocompile/targets/loihi2/program.py"]
missing = [n for n in need if n not in names]
missing += [] if any(n.endswith(".pt") and n.startswith("neurocompile/zoo/") for n in names) else ["zoo *.pt"]
missing += [] if any(n.endswith("licenses/LICENSE") for n in names) else ["LICENSE in .dist-info"]
bad = [n for n in names if n.split("/")[0] in ("tests", "scripts", "hil", "benchmarks")]
if missing or bad:
    sys.exit(f"wheel content: missing {missing}, unexpected {bad[:5]}")
print(f"wheel holds {len(names)} files")
EOF

section "fresh venv: $TORCH + the wheel [$EXTRAS]"
"$PY" -m venv "$WORK/venv"
V="$WORK/venv/bin"
pip_q "$V/python" install -q "$TORCH"
pip_q "$V/python" install -q "$WHEEL[$EXTRAS]"
pip_q "$V/python" check || die "pip check"

# Everything below runs outside the checkout, with no path into it.
mkdir -p "$WORK/run"
cd "$WORK/run"
unset PYTHONPATH
NC="$V/neurocompile"
LOC=$("$V/python" -c 'import neurocompile, torch; print(neurocompile.__file__, torch.__version__)')
echo "installed: $LOC"
case "$LOC" in "$WORK/venv/"*) ;; *) die "neurocompile is not imported from the wheel: $LOC" ;; esac

section "main job from the wheel"
"$NC" zoo-data digits -o D
"$NC" compile zoo:digits --target loihi2 --calibration D/calib.npy -o A
"$NC" run A --input D/X.npy --labels D/y.npy -o out.npz | tee run.txt
ACC=$(sed -n 's/^accuracy: \([0-9.]*\)%.*/\1/p' run.txt)
[ -n "$ACC" ] || die "no accuracy line printed"
"$V/python" -c "import sys; sys.exit(0 if float('$ACC') >= 97.0 else 1)" || die "accuracy $ACC % < 97 %"
echo "accuracy $ACC % >= 97 %"

section "Lava from the wheel ($LAVA_PY)"
export NEUROCOMPILE_LAVA_PYTHON="$LAVA_PY"
"$NC" setup loihi --env "$(dirname "$(dirname "$LAVA_PY")")"
"$NC" targets
"$V/python" -c "import numpy as np; np.save('X_small.npy', np.load('D/X.npy')[:, :4])"
"$NC" run A --input X_small.npy -o emu.npz
"$NC" run A --input X_small.npy --on lava -o lava.npz
"$V/python" - <<'EOF'
import sys
import numpy as np
emu, lava = np.load("emu.npz", allow_pickle=False), np.load("lava.npz", allow_pickle=False)
if sorted(emu.files) != sorted(lava.files):
    sys.exit(f"Lava and emulator outputs hold different arrays: {emu.files} vs {lava.files}")
for key in emu.files:
    if emu[key].shape != lava[key].shape or not np.array_equal(emu[key], lava[key]):
        sys.exit(f"Lava differs from the emulator in {key!r}")
print(f"Lava == emulator on 4 samples ({', '.join(emu.files)}; {int(emu['output'].sum())} output spikes)")
EOF

section "passed"
