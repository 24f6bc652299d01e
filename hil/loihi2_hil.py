#!/usr/bin/env python
"""Loihi 2 hardware-in-the-loop: compile, deploy, run a batch, pull back, compare, report.

On a Loihi host (lava-loihi installed) the chip run uses ``Loihi2HwCfg``; with ``--stand-in`` it
uses Lava's bit-accurate ``fixed_pt`` CPU models instead, which is how CI exercises this script.
"""
from __future__ import annotations

import argparse
import sys


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("model", help="model (.nir, zoo:NAME, file.py:factory, .onnx) or compiled artifact")
    ap.add_argument("--input", required=True, help="input .npy (T, batch, *shape), 0/1 spikes")
    ap.add_argument("--labels", help="labels .npy (batch,)")
    ap.add_argument("--calibration", help="calibration inputs for the quantizer")
    ap.add_argument("--report", required=True, help="report directory")
    ap.add_argument("--stand-in", action="store_true", help="use Lava's CPU fixed_pt models instead of the chip")
    ap.add_argument("--no-float", action="store_true", help="skip the float reference run")
    args = ap.parse_args(argv)

    from neurocompile.cli.io import load_array
    from neurocompile.errors import NeuroCompileError
    from neurocompile.validate import validate

    chip = "lava" if args.stand_in else "loihi2-hw"
    targets = ([] if args.no_float else ["float"]) + ["emulator", chip]
    try:
        rep = validate(args.model, load_array(args.input), targets,
                       labels=load_array(args.labels) if args.labels else None, report_dir=args.report,
                       calibration=load_array(args.calibration) if args.calibration else None,
                       log=lambda m: print(m, file=sys.stderr))
    except NeuroCompileError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for c in rep["exact"]:
        print(f"{c['a']} vs {c['b']}: " + ("identical" if c["equal"] else f"DIFFER: {c['first_mismatch']}"))
    for t, a in rep.get("accuracy", {}).items():
        print(f"accuracy {t}: {a:.2%}")
    print(f"report written to {args.report}")
    return 0 if rep["ok"] else 3


if __name__ == "__main__":
    sys.exit(main())
