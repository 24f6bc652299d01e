#!/usr/bin/env python3
"""Train the two small digits ANNs that the ONNX frontend tests convert, and export them.

Writes (all small, meant to be committed):

* ``tests/data/onnx/digits_mlp.onnx``   64 -> 64 -> ReLU -> 10 (Gemm, Relu, Gemm)
* ``tests/data/onnx/digits_cnn.onnx``   1x8x8 -> Conv 3x3 (12 ch, pad 1) -> BN -> ReLU -> AvgPool 2
                                        -> Flatten -> Linear 192 -> 10
* ``tests/data/onnx/digits_calib.npy``  300 training images, float32 (300, 1, 8, 8), values in [0, 1]
* ``tests/data/onnx/digits_ann.json``   the ANNs' held-out accuracies (what the tests compare to)

Data: scikit-learn's ``load_digits`` (1797 images of 8x8, pixel values 0..16), divided by 16 so the
inputs lie in [0, 1]; 25 % held out with ``train_test_split(stratify=y, random_state=0)``. The MLP
sees the image flattened to 64 values (its ONNX input is (N, 64)); the CNN sees (N, 1, 8, 8).
The calibration images are training images (never held-out ones); a model with a (N, 64) input
reshapes them itself.

Everything is seeded (torch, numpy, the split) and runs single-threaded, so a rerun on the same
torch version reproduces the same weights. Exported with opset 17 through the TorchScript
exporter (``dynamo=False``), which needs no extra packages. About 20 s on 2 cores.

Usage: python scripts/train_digits_ann.py [--out tests/data/onnx]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

SEED = 0
OPSET = 17
N_CALIB = 300


def digits_split():
    """(x_train, x_test, y_train, y_test) with x as float32 (N, 1, 8, 8) in [0, 1]."""
    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    y = d.target.astype(np.int64)
    return train_test_split(x, y, test_size=0.25, stratify=y, random_state=0)


def make_mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))


def make_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 12, 3, padding=1), nn.BatchNorm2d(12), nn.ReLU(), nn.AvgPool2d(2),
        nn.Flatten(), nn.Linear(12 * 4 * 4, 10))


def train(model: nn.Module, x: np.ndarray, y: np.ndarray, epochs: int, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(xt), generator=gen)
        for i in range(0, len(xt), 32):
            idx = perm[i:i + 32]
            opt.zero_grad()
            loss_fn(model(xt[idx]), yt[idx]).backward()
            opt.step()
        sched.step()
    return model.eval()


def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    with torch.no_grad():
        return float((model(torch.from_numpy(x)).argmax(1).numpy() == y).mean())


def export(model: nn.Module, example: np.ndarray, path: Path) -> None:
    torch.onnx.export(model, (torch.from_numpy(example),), str(path), opset_version=OPSET,
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, dynamo=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "tests/data/onnx"))
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    np.random.seed(SEED)
    x_tr, x_te, y_tr, y_te = digits_split()
    flat_tr, flat_te = x_tr.reshape(len(x_tr), -1), x_te.reshape(len(x_te), -1)

    torch.manual_seed(SEED)
    mlp = train(make_mlp(), flat_tr, y_tr, epochs=60, seed=SEED)
    torch.manual_seed(SEED + 1)
    cnn = train(make_cnn(), x_tr, y_tr, epochs=40, seed=SEED + 1)

    acc = {"mlp": accuracy(mlp, flat_te, y_te), "cnn": accuracy(cnn, x_te, y_te),
           "test_size": int(len(y_te)), "split": "load_digits()/16, test_size=0.25, stratify=y, random_state=0"}
    export(mlp, flat_te[:2], out / "digits_mlp.onnx")
    export(cnn, x_te[:2], out / "digits_cnn.onnx")
    calib = np.ascontiguousarray(x_tr[np.random.default_rng(SEED).permutation(len(x_tr))[:N_CALIB]])
    np.save(out / "digits_calib.npy", calib.astype(np.float32), allow_pickle=False)
    (out / "digits_ann.json").write_text(json.dumps(acc, indent=2) + "\n")
    print(f"MLP held-out accuracy {acc['mlp'] * 100:.2f}%, CNN {acc['cnn'] * 100:.2f}% "
          f"({len(y_te)} images); wrote {out}")


if __name__ == "__main__":
    main()
