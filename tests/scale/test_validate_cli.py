"""``validate`` and the CLI with --workers / --scheduler / --cache: the same report as one process."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from scale_fixtures import *  # noqa: F403 - the fixtures of this folder

from neurocompile.cli.main import cli
from neurocompile.validate import validate


def _comparable(rep):
    rep = json.loads(json.dumps(rep, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))
    for m in rep["metrics"].values():
        m.pop("wall_s")
    rep.pop("files", None)
    return rep


def test_validate_sharded_report_equals_single_process(emu_artifact, spin_artifact, digits_data):
    x, y = digits_data
    targets = ["float", "emulator", "spinnaker"]
    one = validate("zoo:digits", x, targets, labels=y)
    seen = []
    two = validate("zoo:digits", x, targets, labels=y, workers=2, shard_size=7,
                   progress=lambda t, d, n: seen.append((t, d, n)))
    assert _comparable(one) == _comparable(two)
    assert {t for t, _, _ in seen} == set(targets) and (targets[-1], 24, 24) in seen


@pytest.fixture
def files(tmp_path, digits_data):
    x, y = digits_data
    np.save(tmp_path / "X.npy", x)
    np.save(tmp_path / "y.npy", y)
    return tmp_path


def test_cli_run_workers_and_cache(emu_artifact, files):
    r = CliRunner()
    base = ["run", str(emu_artifact), "-i", str(files / "X.npy"), "--labels", str(files / "y.npy")]
    one = r.invoke(cli, base + ["-o", str(files / "one.npz"), "--workers", "1"])
    assert one.exit_code == 0, one.output
    cache = files / "cache"
    two = r.invoke(cli, base + ["-o", str(files / "two.npz"), "--workers", "2", "--shard-size", "8",
                                "--cache", str(cache)])
    assert two.exit_code == 0, two.output
    assert len(list(cache.rglob("*.npz"))) == 3
    with np.load(files / "one.npz") as a, np.load(files / "two.npz") as b:
        assert sorted(a.files) == sorted(b.files)
        for k in a.files:
            np.testing.assert_array_equal(a[k], b[k])
    acc = [line for line in one.output.splitlines() if line.startswith("accuracy")]
    assert acc and acc == [line for line in two.output.splitlines() if line.startswith("accuracy")]


def test_cli_validate_workers(emu_artifact, files):
    r = CliRunner()
    res = r.invoke(cli, ["validate", str(emu_artifact), "-i", str(files / "X.npy"), "--labels",
                         str(files / "y.npy"), "--targets", "float,emulator", "--workers", "2",
                         "--cache", "none"])
    assert res.exit_code == 0, res.output
    assert "accuracy emulator" in res.output


def test_cli_bad_workers(emu_artifact, files):
    res = CliRunner().invoke(cli, ["run", str(emu_artifact), "-i", str(files / "X.npy"), "--workers", "0"])
    assert res.exit_code != 0 and "--workers must be at least 1" in res.output
