"""Predict, then let sPyNNaker map a large conv net on a virtual board, and compare (issue 14).

Run from the repository root::

    python benchmarks/map_spinnaker.py --size 64                      # 61k neurons, ~4-5 min
    python benchmarks/map_spinnaker.py --size 64 --conv-channels all
    python benchmarks/map_spinnaker.py --size 128 --json map128.json  # 246k neurons

The network is ``tests/convnets.py``'s event-camera classifier (2 x S x S input, 3x3 convs with
8-16-32-64 channels, LIF after each, Flatten, a 10-LIF readout; the same one as
``bench_scale.py``), written as NIR and read back through ``api.load_model``, compiled with
``api.compile(graph, "spinnaker", conv_channels=...)``. The artifact's ``run_pynn.py`` is then run
by ``board.mapping_report`` with ``HOME`` pointing at a temporary directory holding a generated
``~/.spynnaker.cfg`` (``virtual_board = True``, ``version = 5``; the user's own cfg is never read
or written). sPyNNaker sizes the virtual machine from the chips its placement needs (as many
48-chip boards as that takes), maps, places and generates every core's data without running.
``check.compare_mapping`` compares what it chose with the predictions: ring-buffer shifts, weight
scales, neuron parameter words, the synaptic words of every FromList projection, the
ConvolutionConnector kernel words, cores per population.

Printed: predicted vs actual cores and chips (the prediction of chips is a lower bound: sPyNNaker
may spread cores over more chips), the number of mismatches (and the first few), the SDRAM
ratios actual/estimate, the time sPyNNaker reports for the mapping (``seconds``, inside its
process) and the wall time of that child process, and the peak resident memory of this process
and of the mapping child (``ru_maxrss``). ``--json FILE`` writes all of it. Exit status 1 on any
mismatch or on a core count other than the predicted one.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

CFG = "[Machine]\nvirtual_board = True\nversion = 5\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, choices=(64, 128, 256), default=64, help="input is 2 x SIZE x SIZE")
    ap.add_argument("--conv-channels", choices=("local", "all"), default="local",
                    help="cut only the local-only conv layer by channel, or every conv layer")
    ap.add_argument("--ticks", type=int, default=30, help="run length the network is built for")
    ap.add_argument("--timeout", type=float, default=None, help="seconds for the sPyNNaker process")
    ap.add_argument("--keep", metavar="DIR", default=None, help="save the artifact here (default: temporary)")
    ap.add_argument("--json", metavar="FILE", default=None)
    args = ap.parse_args(argv)

    from convnets import DT, write_conv_net
    from neurocompile import api
    from neurocompile.targets.spinnaker.board import mapping_report
    from neurocompile.targets.spinnaker.check import compare_mapping

    out: dict = {"size": args.size, "conv_channels": args.conv_channels, "ticks": args.ticks}
    with tempfile.TemporaryDirectory(prefix="nc-map-spinnaker-") as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        graph = api.load_model(write_conv_net(tmp / f"convnet{args.size}.nir", args.size), dt=DT, reset="zero")
        art = api.compile(graph, "spinnaker", conv_channels=args.conv_channels)
        prog = art.payload
        path = art.save(Path(args.keep) if args.keep else tmp / "art")
        out["compile_s"] = time.perf_counter() - t0
        out["neurons"] = sum(p.size for p in prog.populations)
        res = art.report["spinnaker"]["resources"]
        out["predicted"] = {k: res.get(k) for k in ("total_cores", "cores_by_kind", "chips_for_cores", "chips",
                                                      "boards")}
        print(f"2x{args.size}x{args.size}, conv_channels={args.conv_channels}: {out['neurons']} neurons, "
              f"{len(prog.populations)} populations, {len(prog.projections)} projections; "
              f"compiled in {out['compile_s']:.1f} s", flush=True)
        print(f"predicted: {res.get('total_cores')} cores {res.get('cores_by_kind')}, "
              f">= {res.get('chips')} chips", flush=True)

        home = tmp / "home"
        home.mkdir()
        (home / ".spynnaker.cfg").write_text(CFG)
        old_home = os.environ.get("HOME")
        os.environ["HOME"] = str(home)        # the child (run_pynn.py) inherits it
        try:
            t0 = time.perf_counter()
            rep = mapping_report(path / "spinnaker", prog.input_size, args.ticks, timeout=args.timeout)
            out["mapping_wall_s"] = time.perf_counter() - t0
        finally:
            if old_home is None:
                os.environ.pop("HOME", None)
            else:
                os.environ["HOME"] = old_home
        cmp = compare_mapping(prog, rep)

    out["spynnaker_s"] = rep.get("seconds")
    out["cores"] = {"predicted": cmp["predicted_cores"], "actual": cmp["cores"]}
    out["chips"] = {"predicted_lower_bound": cmp["predicted_chips_lower_bound"], "actual": cmp["chips"]}
    out["mismatches"] = cmp["mismatches"]
    out["sdram_ratio"] = cmp["sdram_ratio"]
    out["peak_rss_mib"] = {"self": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                           "spynnaker_child": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}
    ratios = list(cmp["sdram_ratio"].values())

    print(f"cores: predicted {cmp['predicted_cores']}, sPyNNaker {cmp['cores']}")
    print(f"chips: predicted >= {cmp['predicted_chips_lower_bound']}, sPyNNaker {cmp['chips']}")
    print(f"mismatches: {len(cmp['mismatches'])}")
    for m in cmp["mismatches"][:10]:
        print("   ", m)
    if ratios:
        print(f"SDRAM actual/estimate: {min(ratios):.3f} - {max(ratios):.3f} over {len(ratios)} populations")
    print(f"sPyNNaker mapping: {out['spynnaker_s']:.1f} s inside sPyNNaker, {out['mapping_wall_s']:.1f} s "
          f"wall with the child process")
    print(f"peak RSS: {out['peak_rss_mib']['self']:.0f} MiB this process, "
          f"{out['peak_rss_mib']['spynnaker_child']:.0f} MiB the sPyNNaker process")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1, default=str))
    ok = not cmp["mismatches"] and cmp["cores"] == cmp["predicted_cores"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
