"""Run LoihiPrograms in Lava (``Loihi2SimCfg(select_tag="fixed_pt")``).

Executed by the Lava interpreter (Python 3.10, lava-nc 0.10), either as::

    python -m neurocompile.backends.lava_runner.run_program \
        PROGRAM_DIR INPUT.npy OUTPUT.npz [PROGRAM_DIR INPUT.npy OUTPUT.npz ...]

or by file path with the same arguments.  Several (program, input, output)
triples share one interpreter start (importing Lava and numpy once).

Network built per batch element (each element is a fresh Lava run from the
zero state, stopped before the next one):

* ``lava.proc.io.source.RingBuffer`` with ``data = (spikes_in != 0)`` as
  int32, shape (n_inputs, T): at time_step k it sends column k - 1;
* one ``Dense`` per LoihiDense (``weight_exp`` and ``num_weight_bits`` as
  proc params, sign mode auto-detected) and one ``LIF`` per LoihiLIF;
* one recorder process per LIF (defined here): spikes through an InPort,
  ``u``/``v`` through RefPorts read in the post-management phase of every
  step (what ``lava.proc.monitor.Monitor`` does: v is seen after reset).

Why a recorder instead of Monitor + sink RingBuffer (measured on the 2-core
dev machine, lava-nc 0.10): ``Var.get()`` -- used by ``Monitor.get_data()``
and for sink data -- ships one float64 element per message, so reading back
a 784-512-256-10 network over 100 steps took 4.7 s after a 1.6 s run.  The
recorder keeps its buffers in its own OS process and writes them to an .npz
at the last step (readout ~5 ms, whole run 0.6 s).  Stepping with
``RunSteps(1)`` and ``Var.get()`` per step was slower still (pause/resume
of the runtime every step plus the per-element transfer).  ``probe=False``
groups get no RefPorts.

The output npz holds ``names`` (LIF names, unicode array), ``n_steps``,
``n{i}_spikes`` (T, B, size) uint8 and, for probed groups, ``n{i}_u`` and
``n{i}_v`` (T, B, size) int64, plus ``wall_build_run_s`` and
``wall_readout_s`` per batch element.  It is written atomically.
"""

from __future__ import annotations

import importlib.util
import io
import os
import sys
import tempfile
import time

import numpy as np


def _load_program_module():
    """Import loihi_program.py by file path.

    Loading by path keeps the Lava interpreter away from package
    ``__init__`` files that may import torch or numpy-2-only code.
    """
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))), "emulator", "loihi_program.py")
    spec = importlib.util.spec_from_file_location("_nc_loihi_program", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses need the module registered
    spec.loader.exec_module(mod)
    return mod


def _components(program, input_name):
    """Connected components (lists of LIF names) of the program graph.

    Lava compiles only processes reachable from the one ``run`` is called
    on, so disconnected parts are run separately (they cannot interact).
    """
    parent = {n.name: n.name for n in program.neurons}
    parent[input_name] = input_name

    def find(a):
        """Union-find root of node ``a``."""
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for s in program.synapses:
        parent[find(s.src)] = find(s.dst)
    groups = {}
    for n in program.neurons:
        groups.setdefault(find(n.name), []).append(n.name)
    return list(groups.values())


_RECORDER = None


def _recorder_classes():
    """Build (once) the recorder Process and its ProcessModel.

    ``_LifRecorder`` takes a LIF's spikes through an InPort in the spike
    phase and, when ``with_uv``, reads its ``u`` and ``v`` through RefPorts
    in the post-management phase of every step -- the same mechanism and
    phase as Lava's ``Monitor``, so it sees v after the reset.  At the last
    step it writes everything to an .npz itself.  That avoids ``Var.get()``,
    which Lava 0.10 transfers one float64 element per message.
    """
    global _RECORDER
    if _RECORDER is not None:
        return _RECORDER
    from lava.magma.core.decorator import implements, requires
    from lava.magma.core.model.py.model import PyLoihiProcessModel
    from lava.magma.core.model.py.ports import PyInPort, PyRefPort
    from lava.magma.core.model.py.type import LavaPyType
    from lava.magma.core.process.ports.ports import InPort, RefPort
    from lava.magma.core.process.process import AbstractProcess
    from lava.magma.core.resources import CPU
    from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

    class _LifRecorder(AbstractProcess):
        """Records one LIF group's spikes (and u, v if ``with_uv``)."""

        def __init__(self, *, shape, num_steps, path, with_uv):
            super().__init__(shape=shape, num_steps=num_steps, path=path,
                             with_uv=with_uv)
            self.s_in = InPort(shape=shape)
            if with_uv:
                self.u_ref = RefPort(shape=shape)
                self.v_ref = RefPort(shape=shape)

    @implements(proc=_LifRecorder, protocol=LoihiProtocol)
    @requires(CPU)
    class _PyLifRecorder(PyLoihiProcessModel):
        """Buffers one row per step; dumps an .npz at the last step."""

        s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32)
        u_ref: PyRefPort = LavaPyType(PyRefPort.VEC_DENSE, np.int32)
        v_ref: PyRefPort = LavaPyType(PyRefPort.VEC_DENSE, np.int32)

        def __init__(self, proc_params):
            super().__init__(proc_params)
            shape = (proc_params["num_steps"],) + tuple(proc_params["shape"])
            self.rec = {"spikes": np.zeros(shape, np.uint8)}
            if proc_params["with_uv"]:
                self.rec["u"] = np.zeros(shape, np.int64)
                self.rec["v"] = np.zeros(shape, np.int64)

        def run_spk(self):
            """Spike phase: store this step's spikes (nonzero = spike)."""
            self.rec["spikes"][self.time_step - 1] = self.s_in.recv() != 0

        def post_guard(self):
            """Enter post-management every step (to read u and v)."""
            return True

        def run_post_mgmt(self):
            """Read u, v after the step (v already reset); dump at the end."""
            if "u" in self.rec:
                self.rec["u"][self.time_step - 1] = self.u_ref.read()
                self.rec["v"][self.time_step - 1] = self.v_ref.read()
            if self.time_step == self.proc_params["num_steps"]:
                _atomic_savez(self.proc_params["path"], self.rec)

    _RECORDER = (_LifRecorder, _PyLifRecorder)
    return _RECORDER


def run_one(program, spikes, input_name, workdir):
    """Run one batch element (spikes: (T, n_inputs) bool) in Lava.

    Returns ``({lif_name: {"spikes", "u"?, "v"?}}, build_run_s, readout_s)``
    with arrays shaped (T, size); ``stop()`` is always called.
    """
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.dense.process import Dense
    from lava.proc.io.source import RingBuffer as SpikeSource
    from lava.proc.lif.process import LIF

    recorder_cls, recorder_model = _recorder_classes()
    n_steps = spikes.shape[0]
    results = {}
    t_run = t_read = 0.0
    for comp in _components(program, input_name):
        comp_set = set(comp)
        t0 = time.perf_counter()
        lifs, paths, recorders = {}, {}, {}
        for n in program.neurons:
            if n.name not in comp_set:
                continue
            lif = LIF(shape=(n.size,), du=int(n.du), dv=int(n.dv),
                      vth=int(n.vth),
                      bias_mant=np.asarray(n.bias_mant, dtype=np.int32),
                      bias_exp=int(n.bias_exp), name=n.name)
            paths[n.name] = os.path.join(workdir, f"rec_{len(paths)}.npz")
            rec = recorder_cls(shape=(n.size,), num_steps=n_steps,
                               path=paths[n.name], with_uv=bool(n.probe))
            recorders[rec] = recorder_model  # keyed by instance
            lif.s_out.connect(rec.s_in)
            if n.probe:
                rec.u_ref.connect_var(lif.u)
                rec.v_ref.connect_var(lif.v)
            lifs[n.name] = lif
        source = None
        for s in program.synapses:
            if s.dst not in comp_set:
                continue
            dense = Dense(weights=np.asarray(s.weights, dtype=np.int32),
                          weight_exp=int(s.weight_exp),
                          num_weight_bits=int(s.num_weight_bits),
                          name=s.name)
            if s.src == input_name:
                if source is None:
                    data = np.ascontiguousarray(spikes.T.astype(np.int32))
                    source = SpikeSource(data=data)
                source.s_out.connect(dense.s_in)
            else:
                lifs[s.src].s_out.connect(dense.s_in)
            dense.a_out.connect(lifs[s.dst].a_in)
        root = lifs[comp[0]]
        cfg = Loihi2SimCfg(select_tag="fixed_pt",
                           exception_proc_model_map=recorders)
        try:
            root.run(condition=RunSteps(num_steps=n_steps), run_cfg=cfg)
        finally:
            root.stop()
        t1 = time.perf_counter()
        for name in comp:
            with np.load(paths[name], allow_pickle=False) as z:
                results[name] = {k: z[k] for k in z.files}
            os.unlink(paths[name])
        t_run += t1 - t0
        t_read += time.perf_counter() - t1
    return results, t_run, t_read


def _atomic_savez(path, arrays):
    """np.savez to a temp file next to ``path``, then os.replace it."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz",
                               dir=os.path.dirname(os.path.abspath(path)))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(buf.getvalue())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def run_file_triple(lp, program_dir, input_path, output_path):
    """Load program + input, run every batch element, write the npz."""
    program = lp.LoihiProgram.load(program_dir)
    x = np.load(input_path, allow_pickle=False)
    if x.ndim == 2:
        x = x[:, None, :]
    if x.ndim != 3 or x.shape[2] != program.n_inputs:
        raise ValueError(f"{input_path}: shape {x.shape} does not fit "
                         f"n_inputs={program.n_inputs}")
    x = x != 0
    n_steps, batch = x.shape[0], x.shape[1]
    arrays = {"names": np.array([n.name for n in program.neurons]),
              "n_steps": np.int64(n_steps),
              "wall_build_run_s": np.zeros(batch),
              "wall_readout_s": np.zeros(batch)}
    for i, n in enumerate(program.neurons):
        keys = ("spikes", "u", "v") if n.probe else ("spikes",)
        for key in keys:
            arrays[f"n{i}_{key}"] = np.zeros(
                (n_steps, batch, n.size),
                np.uint8 if key == "spikes" else np.int64)
    out_dir = os.path.dirname(os.path.abspath(output_path))
    with tempfile.TemporaryDirectory(prefix=".lava-rec-",
                                     dir=out_dir) as workdir:
        for b in range(batch if n_steps > 0 else 0):
            res, t_run, t_read = run_one(program, x[:, b, :], lp.INPUT,
                                         workdir)
            arrays["wall_build_run_s"][b] = t_run
            arrays["wall_readout_s"][b] = t_read
            for i, n in enumerate(program.neurons):
                for key, val in res[n.name].items():
                    arrays[f"n{i}_{key}"][:, b, :] = val
    _atomic_savez(output_path, arrays)


def main(argv=None) -> int:
    """CLI entry: triples of PROGRAM_DIR INPUT.npy OUTPUT.npz."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or len(args) % 3:
        sys.stderr.write(__doc__.split("\n\n")[1] + "\n")
        return 2
    lp = _load_program_module()
    for k in range(0, len(args), 3):
        run_file_triple(lp, *args[k:k + 3])
    return 0


if __name__ == "__main__":
    sys.exit(main())
