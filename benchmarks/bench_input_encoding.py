"""Accuracy against time steps: rate-coded spikes vs direct (current) input on Loihi 2.

The two shipped digits ANNs (``tests/data/onnx``, trained by ``scripts/train_digits_ann.py``) are
converted for each encoding and step count, compiled for the Loihi 2 emulator with calibration
samples (training images) and run on the 450 held-out digits; the float graph's accuracy is
printed beside the emulator's. ``spikes``: the host sends a deterministic rate code (0/1);
``current``: the host sends the image itself as 8-bit graded spikes at every step.

    python benchmarks/bench_input_encoding.py [--steps 4,8,16,32,64] [--json FILE]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from neurocompile import api
from neurocompile.frontends.onnx import decode_output, encode_input
from neurocompile.zoo import digits

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "onnx"


def measure(model: str, encoding: str, steps: int) -> dict:
    calib = np.load(DATA / "digits_calib.npy")
    split = digits.load_digits_split()
    x = (split.X_test / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    if model == "digits_mlp":
        x, calib = x.reshape(len(x), -1), calib.reshape(len(calib), -1)
    t0 = time.perf_counter()
    graph = api.load_model(DATA / f"{model}.onnx", calibration=calib, input_encoding=encoding, reset="zero")
    art = api.compile(graph, "emulator", calibration=encode_input(graph, calib[:64], steps), input_encoding=encoding)
    xs = encode_input(graph, x, steps)
    (o,) = graph.outputs
    emu = decode_output(graph, api.run(art, xs).outputs[o]).argmax(1)
    flt = decode_output(graph, api.run(api.compile(graph, "float"), xs).outputs[o]).argmax(1)
    return {"model": model, "encoding": encoding, "steps": steps, "float": float((flt == split.y_test).mean()),
            "emulator": float((emu == split.y_test).mean()), "seconds": round(time.perf_counter() - t0, 2)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", default="4,8,16,32,64")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    rows = []
    print(f"{'model':<11} {'encoding':<8} {'steps':>5} {'float':>7} {'emulator':>8}")
    for model in ("digits_mlp", "digits_cnn"):
        for encoding in ("spikes", "current"):
            for steps in (int(s) for s in args.steps.split(",")):
                r = measure(model, encoding, steps)
                rows.append(r)
                print(f"{model:<11} {encoding:<8} {steps:>5} {r['float']:>7.2%} {r['emulator']:>8.2%}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
