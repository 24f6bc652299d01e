"""Run LoihiPrograms in Lava (``Loihi2SimCfg(select_tag="fixed_pt")``).

Executed by the Lava interpreter (Python 3.10, lava-nc 0.10), either as::

    python -m neurocompile.targets.loihi2.lava.run_program \
        PROGRAM_DIR INPUT.npy OUTPUT.npz [PROGRAM_DIR INPUT.npy OUTPUT.npz ...]

or by file path with the same arguments.  Several (program, input, output)
triples share one interpreter start (importing Lava and numpy once).

Network built per batch element (each element is a fresh Lava run from the
zero state, stopped before the next one):

* ``lava.proc.io.source.RingBuffer`` with ``data`` = the input as int32,
  shape (n_inputs, T) -- ``spikes_in != 0`` for binary programs, the graded
  payloads when ``input_message_bits > 0``: at time_step k it sends column
  k - 1 unchanged;
* one ``LIF`` per LoihiLIF and one ``SigmaDelta`` per LoihiSigmaDelta
  (``vth``, ``bias`` unscaled: the process scales them by
  ``2**(spike_exp + state_exp)``);
* per LoihiDense a ``Dense``, ``Sparse`` (scipy csr weights),
  ``DelayDense`` or ``DelaySparse`` (int64 delays, dense resp. csr), with
  ``weight_exp``, ``num_weight_bits`` and ``num_message_bits`` as process
  arguments and the sign mode auto-detected;
* per LoihiConv a ``Conv`` with the kernel converted to Lava's flipped
  (C_out, kW, kH, C_in) layout, (W, H) pairs, and virtual ports
  ``s_out.reshape((C, H, W)).transpose([2, 1, 0])`` into the Conv and
  ``a_out.transpose([2, 1, 0]).reshape((size,))`` out of it, so groups stay
  1-D in PyTorch (C, H, W) order;
* one recorder process per group (defined here): output through an InPort,
  state Vars (``u``, ``v`` or ``sigma``, ``act``, ``residue``, ``error``)
  through RefPorts read in the post-management phase of every step (what
  ``lava.proc.monitor.Monitor`` does: v is seen after reset).

Why a recorder instead of Monitor + sink RingBuffer (measured on the 2-core
dev machine, lava-nc 0.10): ``Var.get()`` -- used by ``Monitor.get_data()``
and for sink data -- ships one float64 element per message, so reading back
a 784-512-256-10 network over 100 steps took 4.7 s after a 1.6 s run.  The
recorder keeps its buffers in its own OS process and writes them to an .npz
at the last step (readout ~5 ms, whole run 0.6 s).  Stepping with
``RunSteps(1)`` and ``Var.get()`` per step was slower still (pause/resume
of the runtime every step plus the per-element transfer).  ``probe=False``
groups get no RefPorts.

The output npz holds ``names`` (group names, unicode array), ``n_steps``,
``n{i}_spikes`` (T, B, size) -- uint8 for LIF, int64 graded values for
sigma-delta -- and, for probed groups, ``n{i}_<var>`` (T, B, size) int64 for
each state Var, plus ``wall_build_run_s`` and ``wall_readout_s`` per batch
element.  It is written atomically.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import io
import os
import sys
import tempfile
import time

import numpy as np

#: name under which the program layer is imported in the Lava interpreter
_PROGRAM_PACKAGE = "_nc_loihi2"


def _load_program_module():
    """Import the program layer (``program.py`` and the ``program_*.py``
    modules it imports relatively) by file path.

    The directory holding them is registered as a stand-alone package
    ``_nc_loihi2`` whose ``__init__`` is never executed (no module object
    is built from the real ``loihi2/__init__.py``), so the Lava interpreter
    stays away from package ``__init__`` files that may import torch or
    numpy-2-only code; only the program modules (stdlib + numpy) run.
    """
    name = _PROGRAM_PACKAGE + ".program"
    if name in sys.modules:
        return sys.modules[name]
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    spec = importlib.machinery.ModuleSpec(_PROGRAM_PACKAGE, None,
                                          is_package=True)
    spec.submodule_search_locations = [here]
    pkg = importlib.util.module_from_spec(spec)
    sys.modules[_PROGRAM_PACKAGE] = pkg  # relative imports resolve here
    return importlib.import_module(name)


def _components(program, input_name):
    """Connected components (lists of group names) of the program graph.

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
_MAX_REFS = 4   # most state Vars recorded per group (sigma-delta has 4)


def _recorder_classes():
    """Build (once) the recorder Process and its ProcessModels.

    ``_GroupRecorder`` takes a group's output through an InPort in the spike
    phase and reads up to ``_MAX_REFS`` state Vars through RefPorts ``r0,
    r1, ...`` (``models[k]`` has k of them) in the post-management phase of
    every step -- the same mechanism and phase as Lava's ``Monitor``, so a
    LIF's v is seen after the reset.  Binary outputs are stored as ``!= 0``
    (uint8), graded ones (sigma-delta) as their int32 value (int64).  At
    the last step it writes everything to an .npz itself.  That avoids
    ``Var.get()``, which Lava 0.10 transfers one float64 element per
    message.
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

    class _GroupRecorder(AbstractProcess):
        """Records one group's output and the Vars named in ``var_names``
        (connected to RefPorts ``r0``, ``r1``, ... in that order)."""

        def __init__(self, *, shape, num_steps, path, var_names, graded):
            super().__init__(shape=shape, num_steps=num_steps, path=path,
                             var_names=tuple(var_names), graded=graded)
            self.s_in = InPort(shape=shape)
            for i in range(len(var_names)):
                setattr(self, f"r{i}", RefPort(shape=shape))

    class _PyGroupRecorderBase(PyLoihiProcessModel):
        """Buffers one row per step; dumps an .npz at the last step."""

        s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32)

        def __init__(self, proc_params):
            super().__init__(proc_params)
            shape = (proc_params["num_steps"],) + tuple(proc_params["shape"])
            self.graded = bool(proc_params["graded"])
            self.rec = {"spikes": np.zeros(
                shape, np.int64 if self.graded else np.uint8)}
            for name in proc_params["var_names"]:
                self.rec[name] = np.zeros(shape, np.int64)

        def run_spk(self):
            """Spike phase: store this step's output."""
            data = self.s_in.recv()
            self.rec["spikes"][self.time_step - 1] = (
                data if self.graded else data != 0)

        def post_guard(self):
            """Enter post-management every step (to read the Vars)."""
            return True

        def run_post_mgmt(self):
            """Read the Vars after the step; dump the npz at the end."""
            for i, name in enumerate(self.proc_params["var_names"]):
                self.rec[name][self.time_step - 1] = getattr(
                    self, f"r{i}").read()
            if self.time_step == self.proc_params["num_steps"]:
                _atomic_savez(self.proc_params["path"], self.rec)

    # Lava's builder insists that every LavaPyType of a model has a port in
    # the process, so there is one model per number of RefPorts.
    models = []
    for k in range(_MAX_REFS + 1):
        attrs = {f"r{i}": LavaPyType(PyRefPort.VEC_DENSE, np.int32)
                 for i in range(k)}
        attrs["__doc__"] = f"Recorder model with {k} RefPorts."
        cls = type(f"_PyGroupRecorder{k}", (_PyGroupRecorderBase,), attrs)
        models.append(implements(proc=_GroupRecorder,
                                 protocol=LoihiProtocol)(requires(CPU)(cls)))

    _RECORDER = (_GroupRecorder, models)
    return _RECORDER


def _make_group(n):
    """The Lava process of one LoihiLIF / LoihiSigmaDelta."""
    if type(n).__name__ == "LoihiSigmaDelta":
        from lava.proc.sdn.process import ActivationMode, SigmaDelta
        mode = {"relu": ActivationMode.RELU,
                "unit": ActivationMode.UNIT}[n.act_mode]
        bias = (np.zeros(n.size, np.int64) if n.bias is None
                else np.asarray(n.bias, dtype=np.int64))
        # SigmaDelta itself multiplies vth and bias by 2**(spike+state exp)
        return SigmaDelta(shape=(n.size,), vth=int(n.vth), bias=bias,
                          act_mode=mode, cum_error=bool(n.cum_error),
                          spike_exp=int(n.spike_exp),
                          state_exp=int(n.state_exp), name=n.name)
    from lava.proc.lif.process import LIF
    return LIF(shape=(n.size,), du=int(n.du), dv=int(n.dv), vth=int(n.vth),
               bias_mant=np.asarray(n.bias_mant, dtype=np.int32),
               bias_exp=int(n.bias_exp), name=n.name)


def _make_connection(s):
    """The Lava process of one LoihiDense / LoihiConv (see module doc)."""
    if type(s).__name__ == "LoihiConv":
        from lava.proc.conv.process import Conv
        c, h, w = (int(v) for v in s.in_shape)
        return Conv(weight=s.lava_weights().astype(np.int32),
                    weight_exp=int(s.weight_exp), input_shape=(w, h, c),
                    padding=tuple(int(v) for v in s.padding[::-1]),
                    stride=tuple(int(v) for v in s.stride[::-1]),
                    dilation=tuple(int(v) for v in s.dilation[::-1]),
                    groups=int(s.groups),
                    num_weight_bits=int(s.num_weight_bits),
                    num_message_bits=int(s.num_message_bits), name=s.name)
    kw = dict(weight_exp=int(s.weight_exp),
              num_weight_bits=int(s.num_weight_bits),
              num_message_bits=int(s.num_message_bits), name=s.name)
    weights = np.asarray(s.weights, dtype=np.int32)
    if s.sparse:
        from scipy.sparse import csr_matrix
        weights = csr_matrix(weights)
        if s.delays is None:
            from lava.proc.sparse.process import Sparse
            return Sparse(weights=weights, **kw)
        from lava.proc.sparse.process import DelaySparse
        # Lava wants int (int64) delays; implicit zeros are delay 0
        delays = csr_matrix(np.asarray(s.delays, dtype=np.int64))
        return DelaySparse(weights=weights, delays=delays, **kw)
    if s.delays is None:
        from lava.proc.dense.process import Dense
        return Dense(weights=weights, **kw)
    from lava.proc.dense.process import DelayDense
    return DelayDense(weights=weights,
                      delays=np.asarray(s.delays, dtype=np.int64), **kw)


def run_one(program, spikes, input_name, workdir):
    """Run one batch element in Lava.

    ``spikes``: (T, n_inputs) bool (binary input) or int (graded input).
    Returns ``({group: {"spikes", state vars...}}, build_run_s,
    readout_s)`` with arrays shaped (T, size); ``stop()`` is always called.
    """
    from lava.magma.core.run_conditions import RunSteps
    from lava.proc.io.source import RingBuffer as SpikeSource

    recorder_cls, recorder_models = _recorder_classes()
    n_steps = spikes.shape[0]
    results = {}
    t_run = t_read = 0.0
    for comp in _components(program, input_name):
        comp_set = set(comp)
        t0 = time.perf_counter()
        procs, paths, recorders = {}, {}, {}
        for n in program.neurons:
            if n.name not in comp_set:
                continue
            proc = _make_group(n)
            names = tuple(n.STATE_VARS) if n.probe else ()
            paths[n.name] = os.path.join(workdir, f"rec_{len(paths)}.npz")
            rec = recorder_cls(shape=(n.size,), num_steps=n_steps,
                               path=paths[n.name], var_names=names,
                               graded=bool(n.GRADED_OUTPUT))
            recorders[rec] = recorder_models[len(names)]  # per instance
            proc.s_out.connect(rec.s_in)
            for i, var in enumerate(names):
                getattr(rec, f"r{i}").connect_var(getattr(proc, var))
            procs[n.name] = proc
        source = None
        for s in program.synapses:
            if s.dst not in comp_set:
                continue
            conn = _make_connection(s)
            if s.src == input_name:
                if source is None:
                    data = np.ascontiguousarray(spikes.T.astype(np.int32))
                    source = SpikeSource(data=data)
                src_port = source.s_out
            else:
                src_port = procs[s.src].s_out
            dst_port = procs[s.dst].a_in
            if type(s).__name__ == "LoihiConv":
                # (C*H*W,) C order <-> Lava's (W, H, C): virtual ports
                src_port = src_port.reshape(tuple(s.in_shape)).transpose(
                    [2, 1, 0])
                conn_out = conn.a_out.transpose([2, 1, 0]).reshape(
                    (s.out_size(),))
            else:
                conn_out = conn.a_out
            src_port.connect(conn.s_in)
            conn_out.connect(dst_port)
        root = procs[comp[0]]
        cfg = _run_config(recorders)
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


def _run_config(recorders):
    """Loihi2SimCfg(fixed_pt) here; Loihi2HwCfg on a Loihi host when NEUROCOMPILE_LAVA_CFG=hw
    (set by ``run_in_lava(..., hardware=True)``). The hardware path needs Intel's lava-loihi and
    has not been run without a chip: it is the same process network with the chip run config."""
    if os.environ.get("NEUROCOMPILE_LAVA_CFG") == "hw":
        from lava.magma.core.run_configs import Loihi2HwCfg
        from lava.utils import loihi

        if not loihi.is_installed():
            sys.stderr.write("Loihi2HwCfg needs Intel's lava-loihi package on a Loihi host\n")
            raise SystemExit(3)
        return Loihi2HwCfg(exception_proc_model_map=recorders)
    from lava.magma.core.run_configs import Loihi2SimCfg

    return Loihi2SimCfg(select_tag="fixed_pt", exception_proc_model_map=recorders)


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
    if int(program.input_message_bits) > 0:
        x = program.check_input(x).astype(np.int64)
    else:
        x = x != 0
    n_steps, batch = x.shape[0], x.shape[1]
    arrays = {"names": np.array([n.name for n in program.neurons]),
              "n_steps": np.int64(n_steps),
              "wall_build_run_s": np.zeros(batch),
              "wall_readout_s": np.zeros(batch)}
    for i, n in enumerate(program.neurons):
        keys = ("spikes",) + (tuple(n.STATE_VARS) if n.probe else ())
        for key in keys:
            binary = key == "spikes" and not n.GRADED_OUTPUT
            arrays[f"n{i}_{key}"] = np.zeros(
                (n_steps, batch, n.size), np.uint8 if binary else np.int64)
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
