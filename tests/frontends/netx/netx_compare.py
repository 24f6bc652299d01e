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
