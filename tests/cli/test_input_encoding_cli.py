"""Input encodings on the command line: a spike-input artifact refuses analog data and says how
to encode it; `encode` makes that input; `--input-encoding current` takes the analog data."""
import json

import numpy as np
from click.testing import CliRunner

from neurocompile.cli.main import cli
from neurocompile.zoo import digits


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def test_spike_artifact_analog_input_encode_and_current_input(tmp_path):
    images = digits.load_digits_split().X_test[:6]               # (6, 64) pixel values 0..16
    np.save(tmp_path / "images.npy", images)
    art = tmp_path / "digits"
    np.save(tmp_path / "calib.npy", digits.calibration_data(32))
    r = invoke("compile", "zoo:digits", "--calibration", tmp_path / "calib.npy", "-o", art)
    assert r.exit_code == 0, r.output
    assert json.loads((art / "manifest.json").read_text())["input"]["encoding"] == "spikes"
    analog = np.broadcast_to(images, (32,) + images.shape).copy()
    np.save(tmp_path / "analog.npy", analog)
    r = CliRunner().invoke(cli, ["run", str(art), "-i", str(tmp_path / "analog.npy"), "-o", str(tmp_path / "o.npz")])
    assert r.exit_code == 2
    (line,) = [ln for ln in r.output.splitlines() if ln.startswith("error:")]
    assert "spike input" in line and "neurocompile encode" in line and "Traceback" not in r.output
    # encode: the zoo's own rate code (an independent implementation) is the oracle
    r = invoke("encode", art, "--samples", tmp_path / "images.npy", "--steps", 32, "--scale", 16,
               "-o", tmp_path / "spikes.npy")
    assert r.exit_code == 0, r.output
    assert np.array_equal(np.load(tmp_path / "spikes.npy"), digits.encode(images))
    r = invoke("run", art, "-i", tmp_path / "spikes.npy", "-o", tmp_path / "o.npz")
    assert r.exit_code == 0, r.output
    # the same MLP compiled for current input takes the analog images as they are
    np.save(tmp_path / "calib_analog.npy", np.broadcast_to(images, (4,) + images.shape).copy())
    cur = tmp_path / "digits-current"
    r = invoke("compile", "zoo:digits", "--input-encoding", "current", "--calibration", tmp_path / "calib_analog.npy",
               "-o", cur)
    assert r.exit_code == 0, r.output
    manifest = json.loads((cur / "manifest.json").read_text())
    assert manifest["input"] == {"encoding": "current", "message_bits": 8, "scale": 4.0, "range": 127 / 4}
    r = invoke("run", cur, "-i", tmp_path / "analog.npy", "-o", tmp_path / "o2.npz")
    assert r.exit_code == 0, r.output
    r = invoke("encode", cur, "--samples", tmp_path / "images.npy", "--steps", 5, "-o", tmp_path / "rep.npy")
    assert r.exit_code == 0, r.output
    assert np.array_equal(np.load(tmp_path / "rep.npy"), np.broadcast_to(images, (5,) + images.shape))
