"""The one comparison of the netx tests: the emulator against netx on Lava, spike for spike."""
import time

import numpy as np

from netx_util import run_netx
from neurocompile.targets.loihi2 import emulator


def assert_emulator_equals_netx(prog, net, T, p, seed=0):
    """Run ``prog`` on the emulator and ``net`` in netx on Lava with the same random 0/1 input;
    assert equal output spikes and u/v of the first and last group. Returns (output spikes,
    emulator seconds, netx result)."""
    x = (np.random.default_rng(seed).random((T, prog.n_inputs)) < p).astype(np.int64)
    t0 = time.perf_counter()
    em = emulator.run(prog, x)
    t_em = time.perf_counter() - t0
    last = len(prog.neurons) - 1
    r = run_netx(net, x, probes=[0, last])
    out = em[prog.neurons[-1].name]["spikes"][:, 0, :].astype(np.int64)
    assert np.array_equal(out, r["spikes"]), "output spikes differ from netx on Lava"
    for k in (0, last):
        n = prog.neurons[k].name
        assert np.array_equal(em[n]["u"][:, 0], r[f"u{k}"]), f"u of {n}"
        assert np.array_equal(em[n]["v"][:, 0], r[f"v{k}"]), f"v of {n}"
    return out, t_em, r


def assert_sdnn_equals_netx(art, net, x):
    """A compiled netx SDNN network (``art``, emulator or loihi2 target) against netx on Lava, with
    the same integer input ``x`` (T, n_in): the host's messages (``spikes_in``: Delta-encoded, or
    0/1 spikes without an input encoder) run on the emulator; every output message must equal
    netx's (for a ``sigma_output`` last layer: their running sum equals netx's Sigma output), and
    sigma/act/residue of the first and last group must be equal. Returns (netx output,
    emulator seconds, netx result)."""
    from neurocompile.targets.loihi2.target import spikes_in

    prog = art.payload["program"]
    msgs = np.asarray(spikes_in(art, np.asarray(x, dtype=np.float64)[:, None, :])).astype(np.int64)
    t0 = time.perf_counter()
    em = emulator.run(prog, msgs)
    t_em = time.perf_counter() - t0
    sigma_out = bool(art.report["quantization"][prog.neurons[-1].name].get("sigma_output"))
    off = 1 if art.payload["io"]["encoding"] == "delta" else 0  # netx's layers[0]: the Input block (Delta)
    last = len(prog.neurons) - 1
    vars_ = ("sigma",) if sigma_out else ("sigma", "act", "residue")
    r = run_netx(net, np.asarray(x, dtype=np.int64), probes=[off, off + last], variables=vars_)
    out = em[prog.neurons[-1].name]["spikes"][:, 0, :].astype(np.int64)
    if sigma_out:
        out = np.cumsum(out, axis=0)
    assert np.array_equal(out, r["spikes"]), "output messages differ from netx on Lava"
    for k in (0, last):
        n = prog.neurons[k].name
        for v in vars_:
            assert np.array_equal(em[n][v][:, 0], r[f"{v}{off + k}"]), f"{v} of {n}"
    return r["spikes"], t_em, r
