#!/usr/bin/env python
"""SpiNNaker hardware-in-the-loop: compile, map/load, run a batch, pull back, compare, report.

With a board named in ``~/.spynnaker.cfg`` (``machineName`` or ``spalloc_server``) the inputs run
on the board and its spikes are compared with the emulator's, which must agree exactly. With
``--virtual`` (no board needed; what CI does) sPyNNaker maps the network on a virtual machine in a
private HOME, and the script checks that what sPyNNaker generated (ring-buffer shifts, parameter
words, 16-bit synaptic words, placements) is what the compiler predicted; the emulator then runs
the inputs against the float reference.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("model", help="model (.nir, zoo:NAME, file.py:factory, .onnx) or compiled SpiNNaker artifact")
    ap.add_argument("--input", required=True, help="input .npy (T, batch, *shape), 0/1 spikes")
    ap.add_argument("--labels", help="labels .npy (batch,)")
    ap.add_argument("--report", required=True, help="report directory")
    ap.add_argument("--virtual", action="store_true", help="map on sPyNNaker's virtual machine (no board)")
    args = ap.parse_args(argv)

    from neurocompile import api
    from neurocompile.cli.io import load_array
    from neurocompile.errors import NeuroCompileError
    from neurocompile.targets.artifact import is_artifact, load_artifact
    from neurocompile.targets.spinnaker.board import mapping_report
    from neurocompile.targets.spinnaker.check import compare_mapping
    from neurocompile.utils.atomic import write_json
    from neurocompile.validate import validate

    try:
        x = load_array(args.input)
        art = load_artifact(args.model) if is_artifact(args.model) else api.compile(args.model, target="spinnaker")
        if art.target != "spinnaker":
            raise NeuroCompileError("not a SpiNNaker artifact", file=args.model)
        report_dir = Path(args.report)
        with tempfile.TemporaryDirectory(prefix="nc-hil-spinnaker-") as tmp:
            path = art.path or art.save(Path(tmp) / "artifact")
            prog = art.payload
            n_ticks = int(x.shape[0]) + prog.max_latency + 1
            old_home = os.environ.get("HOME")
            if args.virtual:  # a private HOME whose ~/.spynnaker.cfg selects the virtual machine
                home = Path(tmp) / "home"
                home.mkdir()
                (home / ".spynnaker.cfg").write_text("[Machine]\nvirtual_board = True\nversion = 5\n")
                os.environ["HOME"] = str(home)
            try:
                t0 = time.perf_counter()
                mapping = mapping_report(Path(path) / "spinnaker", prog.source(prog.input_name).size, n_ticks)
                map_s = time.perf_counter() - t0
            finally:
                if old_home is not None:
                    os.environ["HOME"] = old_home
            check = compare_mapping(prog, mapping)
            targets = ["float", "spinnaker"] + ([] if args.virtual else ["spinnaker-board"])
            rep = validate(None, x, targets, artifact=art, report_dir=report_dir,
                           labels=load_array(args.labels) if args.labels else None,
                           log=lambda m: print(m, file=sys.stderr))
        write_json(report_dir / "mapping.json", {"virtual": args.virtual, "mapping_seconds": map_s,
                                                 "prediction_check": check, "sPyNNaker": mapping})
    except NeuroCompileError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"mapped on {'a virtual machine' if args.virtual else 'the board'} in {map_s:.1f} s: "
          f"{check['cores']} cores on {check['chips']} chip(s)")
    print("predictions vs sPyNNaker: " + ("all equal" if not check["mismatches"] else
                                          f"{len(check['mismatches'])} differences: {check['mismatches'][:3]}"))
    for c in rep["exact"]:
        print(f"{c['a']} vs {c['b']}: " + ("identical" if c["equal"] else f"DIFFER: {c['first_mismatch']}"))
    for t, a in rep.get("accuracy", {}).items():
        print(f"accuracy {t}: {a:.2%}")
    print(f"report written to {args.report}")
    return 0 if rep["ok"] and not check["mismatches"] else 3


if __name__ == "__main__":
    sys.exit(main())
