"""Run a lava-dl netx ``.net`` file with netx itself on Lava (``Loihi2SimCfg(fixed_pt)``).

Two halves:

* as a script, executed by the Lava interpreter (Python 3.10, lava-nc, lava-dl installed
  ``--no-deps``, h5py): ``python netx_util.py NET IN.npy OUT.npz [--input-bits B] [--probe K]...``.
  lava-dl's netx package imports ``torch`` in one module (for annotations) and
  ``lava.lib.dl.slayer.neuron.rf`` in ``hdf5.py`` (only used for RF neurons); the Lava env has
  neither torch nor slayer's dependencies, so both names are stubbed in ``sys.modules`` before
  ``lava.lib.dl.netx`` is imported. This is a test-harness device only.
  ``IN.npy`` is (T, n_in) integers in neurocompile's flat (C, H, W) order; the script feeds them
  through a ``RingBuffer`` source into ``netx.hdf5.Network`` and writes ``spikes`` (T, n_out) of the
  last layer and, per probed layer index K (of ``net.layers``), ``u{K}``/``v{K}`` (T, size; other
  variables with ``--vars``, e.g. ``sigma,act,residue`` of a SigmaDelta), all in
  the same flat (C, H, W) order, plus the wall time of ``run`` in ``seconds``. The run is always
  stopped. An SDNN network whose first layer is netx's ``Input`` block with a ``Delta`` encoder is
  fed at that Delta's ``a_in`` (the block's own port is not connected inside netx).
* imported by the tests (main interpreter): :func:`run_netx` calls the script through the Lava
  interpreter and returns its arrays.
"""
import sys
import types

import numpy as np


def _stub_imports() -> None:
    torch = types.ModuleType("torch")
    torch.tensor = type("tensor", (), {})
    torch.Tensor = torch.tensor
    torch.is_tensor = lambda x: False
    sys.modules.setdefault("torch", torch)
    names = ["lava.lib.dl.slayer", "lava.lib.dl.slayer.neuron", "lava.lib.dl.slayer.neuron.rf"]
    for n in names:
        sys.modules[n] = types.ModuleType(n)

    def neuron_params(*_a, **_k):
        raise RuntimeError("RF neurons are not available in this harness (slayer is stubbed)")

    sys.modules["lava.lib.dl.slayer.neuron.rf"].neuron_params = neuron_params


def _to_lava(x: np.ndarray, shape: tuple) -> np.ndarray:
    """(T, n) flat C,H,W -> netx's (W, H, C, T) (or (n, T))."""
    T = x.shape[0]
    if len(shape) == 3:
        w, h, c = shape
        return x.reshape(T, c, h, w).transpose(3, 2, 1, 0)
    return x.reshape(T, -1).T


def _from_lava(a: np.ndarray, shape: tuple) -> np.ndarray:
    """netx's (*shape, T) -> (T, n) flat C,H,W; Monitor data (T, *shape) are handled by the caller."""
    T = a.shape[-1]
    if len(shape) == 3:
        return a.transpose(3, 2, 1, 0).reshape(T, -1)
    return a.reshape(-1, T).T


def main(argv) -> int:
    import argparse
    import time

    ap = argparse.ArgumentParser()
    ap.add_argument("net")
    ap.add_argument("inp")
    ap.add_argument("out")
    ap.add_argument("--input-bits", type=int, default=0)
    ap.add_argument("--probe", type=int, action="append", default=[])
    ap.add_argument("--vars", default="u,v", help="variables probed on each --probe layer's neuron")
    args = ap.parse_args(argv)
    _stub_imports()
    from lava.lib.dl import netx
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source
    from lava.proc.monitor.process import Monitor

    x = np.load(args.inp).astype(np.int64)
    T = x.shape[0]
    net = netx.hdf5.Network(net_config=args.net, input_message_bits=args.input_bits)
    in_shape = tuple(net.inp.shape)
    out_shape = tuple(net.out.shape)
    src = Source(data=_to_lava(x, in_shape).astype(np.int32))
    sink = Sink(shape=out_shape, buffer=T)
    first = net.layers[0]
    if type(first).__name__ == "Input" and type(first.neuron).__name__ == "Delta":
        # netx's Input block leaves its own port unconnected: an SDNN network's input goes to the Delta
        # encoder's a_in, as lava-dl's own tests feed it (test_hdf5.py: test_pilotnet_sdnn)
        src.s_out.connect(first.neuron.a_in)
    else:
        src.s_out.connect(net.inp)
    net.out.connect(sink.a_in)
    monitors = {}
    for k in args.probe:
        neuron = net.layers[k].neuron
        for var in args.vars.split(","):
            m = Monitor()
            m.probe(getattr(neuron, var), T)
            monitors[(k, var)] = (m, neuron, tuple(getattr(neuron, var).shape))
    t0 = time.perf_counter()
    try:
        net.run(condition=RunSteps(num_steps=T), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        seconds = time.perf_counter() - t0
        result = {"spikes": _from_lava(sink.data.get(), out_shape).astype(np.int64),
                  "seconds": np.array(seconds)}
        for (k, var), (m, neuron, shape) in monitors.items():
            data = m.get_data()[neuron.name][var]  # (T, *shape)
            result[f"{var}{k}"] = _from_lava(np.moveaxis(np.asarray(data), 0, -1), shape).astype(np.int64)
    finally:
        net.stop()
    np.savez(args.out, **result)
    return 0


def run_netx(net_path, x: np.ndarray, *, input_bits: int = 0, probes=(), variables=("u", "v"),
             timeout: float = 1800) -> dict:
    """Run ``net_path`` with netx on Lava (the interpreter from ``tests/lava_util.require_lava``)."""
    import os
    import subprocess
    import tempfile

    from lava_util import require_lava
    from neurocompile.targets.loihi2.lava.setup_env import lava_subprocess_env

    py = require_lava()
    with tempfile.TemporaryDirectory() as tmp:
        inp, out = os.path.join(tmp, "in.npy"), os.path.join(tmp, "out.npz")
        np.save(inp, np.asarray(x, dtype=np.int64))
        cmd = [py, "-I", os.path.abspath(__file__), str(net_path), inp, out, "--input-bits", str(input_bits),
               "--vars", ",".join(variables)]
        for k in probes:
            cmd += ["--probe", str(k)]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=lava_subprocess_env(),
                           stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            raise RuntimeError(f"netx run failed:\n{r.stderr[-3000:]}")
        with np.load(out) as z:
            return {k: z[k] for k in z.files}


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
