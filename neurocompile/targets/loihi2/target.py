"""Loihi 2: quantize to the chip's integer formats, map onto neuro-cores, run bit-accurately.

Lowering (one named pass a line)::

    remove-identity -> set-time-step -> fuse-pool-conv -> dense-form -> quantize-loihi2 -> partition-loihi2

Runners: the bit-accurate emulator (default, ``neurocompile.targets.loihi2.emulator``) and Lava's
``fixed_pt`` CPU models in their own Python 3.10 process (``--on lava``).

Time alignment: every Dense hop on Loihi adds one step, so a group ``k`` hops from the input
answers ``k`` steps later than in the float graph. Runs last ``T + latency`` steps (input padded
with zeros) and outputs and probes are shifted back, so ``output[t]`` lines up with the float
reference's step ``t``. The latency of every group is in the artifact's report.

Inputs: spiking programs take 0/1 spikes. Sigma-delta programs take the float input; the host
quantizes it and delta-encodes it into graded messages (``payload["io"]``, see
:mod:`neurocompile.targets.loihi2.sigma_delta`), and their outputs are the messages divided
by each group's message unit (summed over time they decode the value).
"""
from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path

import numpy as np

from neurocompile.errors import BackendError, NeuroCompileError
from neurocompile.ir import nodes as N
from neurocompile.ir.batch import batched_input
from neurocompile.ir.graph import Graph
from neurocompile.ir.interpreter import RunResult, split_probe
from neurocompile.ir.latency import shortest_hops
from neurocompile.passes import NORMALIZE, CompileOptions, PassContext
from neurocompile.passes.dense_form import DenseForm
from neurocompile.passes.fuse_pool_conv import FusePoolIntoConv
from neurocompile.targets.base import Runner, Target
from neurocompile.targets.input_encoding import spike_input_hint
from neurocompile.targets.loihi2 import emulator_fast
from neurocompile.targets.loihi2.conv import conv_fits
from neurocompile.targets.loihi2.lava import host as lava_host
from neurocompile.targets.loihi2.lava import setup_env
from neurocompile.targets.loihi2.lowered import LoweredLoihi2
from neurocompile.targets.loihi2.partition import PartitionLoihi2
from neurocompile.targets.loihi2.program import LoihiProgram
from neurocompile.targets.loihi2.quantize import QuantizeLoihi2
from neurocompile.targets.loihi2.sigma_delta import encode_input
from neurocompile.utils.atomic import load_npz, write_json, write_npz

PAYLOAD_DIR = "loihi2"


@dataclasses.dataclass(frozen=True)
class Loihi2Options(CompileOptions):
    #: chips available to the mapping
    chips: int | None = None
    #: a second matrix per synapse layer holds the rounding residual (~16-bit weights)
    split_weights: bool = False
    #: payload bits of graded input spikes for a current (direct) input (default 8, up to 24)
    input_bits: int | None = None
    #: the largest weight exponent of the synapse matrices (default 7; 0 for netx export)
    max_weight_exp: int | None = None


# -- runners ---------------------------------------------------------------------------------
class Loihi2Runner(Runner):
    """Runs the artifact's integer program; subclasses say where (``execute``)."""

    exact = True

    def execute(self, program: LoihiProgram, spikes: np.ndarray) -> dict:  # pragma: no cover
        raise NotImplementedError

    def run_raw(self, artifact, x, probes=None) -> tuple[dict, int]:
        """Run on the chip's own time base: ``T + latency`` steps, integer state. Returns
        (``{group: {"spikes", "u", "v"}}``, T). ``probes``: record the state (u, v, ...) only of
        the groups these probes name and of readouts (None: of every group, as validate needs)."""
        xs = spikes_in(artifact, x)
        L = max(shortest_hops(artifact.graph).values())
        padded = np.concatenate([xs, np.zeros((L,) + xs.shape[1:], dtype=xs.dtype)])
        program = artifact.payload["program"]
        if program.input_message_bits == 0:
            padded = padded.astype(bool)
        if probes is not None:
            program = _recording(artifact, program, probes)
        return self.execute(program, padded), xs.shape[0]

    def aligned(self, artifact, raw: dict, T: int, probes=(), record_spikes=True) -> RunResult:
        """``run_raw``'s chip-time integers on the float graph's time base and units."""
        return aligned_result(artifact, raw, T, probes=probes, record_spikes=record_spikes)

    def run(self, artifact, x, *, probes=(), record_spikes=True, progress=None):
        raw, T = self.run_raw(artifact, x, probes=tuple(probes))
        if progress:
            progress(T, T)
        return aligned_result(artifact, raw, T, probes=probes, record_spikes=record_spikes)


def _recording(artifact, program: LoihiProgram, probes) -> LoihiProgram:
    """``program`` with state recorded only where it is read: probed groups and readouts (whose
    output is their v). Recording every group's u and v costs more than the run at 1M neurons."""
    graph = artifact.graph
    keep = set()
    for o in graph.outputs:
        (src,) = graph.predecessors(o)
        while isinstance(graph.nodes[src], N.Flatten):
            (src,) = graph.predecessors(src)
        if not (graph.nodes[src].spiking or graph.nodes[src].graded):
            keep.add(src)
    for p in probes:
        keep.update(n.name for n in program.neurons if str(p).startswith(n.name + "."))
    if all(bool(getattr(n, "probe", True)) == (n.name in keep) for n in program.neurons):
        return program
    neurons = [dataclasses.replace(n, probe=bool(getattr(n, "probe", True)) and n.name in keep)
               for n in program.neurons]
    return dataclasses.replace(program, neurons=neurons)


class EmulatorRunner(Loihi2Runner):
    name = "emulator"
    description = "bit-accurate emulator (numba kernel, numpy reference where it does not apply)"

    def execute(self, program, spikes):
        """The compiled event-driven kernel (numba) when installed and the program uses only what it
        covers, else the numpy reference; both are bit-exact (tests/targets/loihi2/test_loihi_fast.py)."""
        return emulator_fast.run_best(program, spikes)


class LavaRunner(Loihi2Runner):
    name = "lava"
    description = "Lava fixed_pt CPU models (Python 3.10 side process)"

    def available(self):
        py = lava_host.find_lava_python()
        if py:
            return True, py
        return False, setup_env.no_lava_hint()

    def execute(self, program, spikes):
        ok, why = self.available()
        if not ok:
            raise BackendError(why)
        try:
            return lava_host.run_in_lava(program, spikes)
        except RuntimeError as err:
            raise NeuroCompileError(f"Lava run failed: {err}") from None


class ChipRunner(Loihi2Runner):
    """A real Loihi 2 through Lava's ``Loihi2HwCfg``: needs Intel's lava-loihi extension and a
    Loihi host (INRC cloud through SLURM, or a local Kapoho Point), in the Lava environment."""

    name = "chip"
    description = "Loihi 2 chip through Lava's Loihi2HwCfg (needs lava-loihi on a Loihi host)"
    chip = True

    MISSING = ("the Loihi 2 hardware runtime is not installed: running on a chip needs Intel's "
               "lava-loihi package (available to INRC members) in the Lava environment, on a Loihi host "
               "(SLURM partition or a local board). Use --on lava for Lava's bit-accurate CPU models.")

    def available(self):
        py = lava_host.find_lava_python()
        if py is None:
            return False, "no Lava environment (neurocompile setup loihi)"
        return _lava_loihi_installed(py)

    def execute(self, program, spikes):
        ok, why = self.available()
        if not ok:
            raise BackendError(self.MISSING + f" ({why})")
        try:
            return lava_host.run_in_lava(program, spikes, hardware=True)
        except RuntimeError as err:
            raise NeuroCompileError(f"Loihi 2 run failed: {err}") from None


@functools.lru_cache(maxsize=8)
def _lava_loihi_installed(py: str) -> tuple[bool, str]:
    """Whether Intel's lava-loihi is importable in the Lava interpreter ``py`` (isolated, with a
    timeout: an interpreter that does not answer is "not available", never a hang)."""
    r = setup_env.probe(py, "import lava.utils.loihi as l, sys; sys.exit(0 if l.is_installed() else 1)",
                        timeout=CHIP_PROBE_TIMEOUT)
    if r.returncode == 124:
        return False, f"the Lava interpreter did not answer within {CHIP_PROBE_TIMEOUT} s"
    return (True, py) if r.returncode == 0 else (False, "lava-loihi not installed")


#: seconds the chip probe waits for the Lava interpreter
CHIP_PROBE_TIMEOUT = 30

RUNNERS = {"emulator": EmulatorRunner(), "lava": LavaRunner(), "chip": ChipRunner()}


# -- the targets -----------------------------------------------------------------------------
class Loihi2Target(Target):
    name = "loihi2"
    family = "loihi2"
    description = ("Intel Loihi 2: quantized to its fixed-point formats, runs on the bit-accurate emulator "
                   "(or --on lava)")
    Options = Loihi2Options
    runners = RUNNERS
    default_runner = "emulator"
    chip_runner = "chip"
    #: Lava's LIF resets to zero and chip inputs are spikes (ONNX conversion)
    frontend_defaults = {"reset": "zero", "input_encoding": "spikes"}

    def passes(self, options):
        return [*NORMALIZE, FusePoolIntoConv(), DenseForm(keep_conv=True, conv_fits=conv_fits),
                QuantizeLoihi2(), PartitionLoihi2()]

    def payload(self, graph: Graph, last: LoweredLoihi2, ctx: PassContext):
        lat = shortest_hops(graph)
        scales = {name: lq.scale for name, lq in last.layers.items()}
        ctx.report["latency"] = {n: lat[n] for n in scales}
        res = ctx.report["resources"]
        ctx.report["summary"] = [
            f"loihi2: {res['neurons']} neurons, {res['synapses']} synapses on {res['cores']} core(s) "
            f"of {res['chips']} chip(s) (limits: {res['limits']['neurons_per_core']} neurons and "
            f"{res['limits']['synapses_per_core']} synapses a core, {res['limits']['cores_per_chip']} cores a chip)"
        ] + [f"  {name:<14} vth={q['vth']:<6} du={q['du']:<5} dv={q['dv']:<5} latency={lat[name]}"
             for name, q in ctx.report["quantization"].items() if "du" in q] \
          + [f"  {name:<14} sigma-delta vth={q['vth']:<6} state_exp={q['state_exp']} latency={lat[name]}"
             for name, q in ctx.report["quantization"].items() if q.get("kind") == "sigma_delta"]
        return {"program": last.program, "scales": scales, "io": last.io}

    def save_payload(self, payload, directory: Path) -> None:
        payload["program"].save(directory / PAYLOAD_DIR / "program")
        write_npz(directory / PAYLOAD_DIR / "scales.npz", payload["scales"])
        write_json(directory / PAYLOAD_DIR / "io.json", payload.get("io", {"encoding": "spikes"}))

    def load_payload(self, directory: Path):
        path = directory / PAYLOAD_DIR
        if not path.is_dir():
            raise NeuroCompileError("artifact has no loihi2/ payload", file=str(directory))
        io = json.loads((path / "io.json").read_text()) if (path / "io.json").is_file() else {"encoding": "spikes"}
        return {"program": LoihiProgram.load(path / "program"), "scales": load_npz(path / "scales.npz"), "io": io}


class EmulatorTarget(Loihi2Target):
    """The default target: Loihi 2 numerics on the bit-accurate emulator."""

    name = "emulator"
    description = "bit-accurate emulator with Loihi 2 numerics (default; same artifact as loihi2)"


class LavaTarget(Loihi2Target):
    """Loihi 2 artifacts run in Lava (``Loihi2SimCfg(select_tag="fixed_pt")``) by default."""

    name = "lava"
    description = "Lava fixed_pt CPU models of Loihi 2 (bit-accurate; Python 3.10 side process)"
    default_runner = "lava"


class Loihi2HardwareTarget(Loihi2Target):
    """Loihi 2 artifacts run on the chip by default."""

    name = "loihi2-hw"
    description = "Loihi 2 chip through Lava's Loihi2HwCfg (needs lava-loihi on a Loihi host)"
    default_runner = "chip"


# the names of the first releases
Loihi2Backend, EmulatorBackend, LavaBackend, Loihi2HardwareBackend = (
    Loihi2Target, EmulatorTarget, LavaTarget, Loihi2HardwareTarget)


def spikes_in(artifact, x) -> np.ndarray:
    """The program's input, (T, B, n_in), accepting the model's original input shape: 0/1
    spikes, or for current-input and sigma-delta programs the graded payloads the host sends
    (int64, from the float input: ``payload["io"]``)."""
    graph = artifact.graph
    xs = batched_input(graph, x, flat=True)
    (inp,) = graph.inputs
    io = (artifact.payload or {}).get("io", {"encoding": "spikes"})
    if io["encoding"] != "spikes":
        return encode_input(io, xs)
    if not np.all((xs == 0) | (xs == 1)):
        where = str(artifact.path) if getattr(artifact, "path", None) else "ARTIFACT"
        raise NeuroCompileError("this artifact was compiled for spike input (0/1) and the input holds other "
                                "values: " + spike_input_hint(where), node=inp)
    return xs


def aligned_result(artifact, raw: dict, T: int, probes=(), record_spikes=True) -> RunResult:
    """Chip-time integer results -> a RunResult on the float graph's time base and units."""
    graph = artifact.graph
    shapes = graph.infer_shapes()
    orig = {n: tuple(s) for n, s in graph.metadata.get("shapes", {}).items()}
    scales = artifact.payload["scales"]
    program = artifact.payload["program"]
    sdn = {n.name: n for n in program.neurons if type(n).__name__ == "LoihiSigmaDelta"}
    lat = shortest_hops(graph)

    def aligned(name, key):
        """Float time base and units, in the group's shape in the graph (as the float run gives)."""
        arr = raw[name][key][lat[name]:lat[name] + T]
        if name in sdn:  # graded messages in message units, states in state units
            unit = scales[name] * (1.0 if key == "spikes" else 2.0 ** sdn[name].state_exp)
            if key == "spikes" and lat[name] > 0:
                # messages sent before the input arrives (a group's bias acts from chip step 0) are
                # part of the float graph's first message: their sum is what the float step 0 sends
                arr = arr.astype(np.int64)
                arr[0] += raw[name][key][:lat[name]].sum(axis=0)
            out = arr / unit
        elif key == "spikes":
            out = arr.astype(np.float64)
        else:
            out = arr / scales[name] if key == "v" else arr.astype(np.float64)
        return out.reshape(out.shape[:2] + shapes[name]) if name in shapes else out

    B = next(v["spikes"].shape[1] for v in raw.values() if isinstance(v, dict))
    raw = {k: v for k, v in raw.items() if k in lat or not isinstance(v, dict)}
    outputs = {}
    for o in graph.outputs:
        (src,) = graph.predecessors(o)
        while isinstance(graph.nodes[src], N.Flatten):  # a shaped group (kept conv) read flat
            (src,) = graph.predecessors(src)
        node = graph.nodes[src]
        val = aligned(src, "spikes" if (node.spiking or node.graded) else "v")
        outputs[o] = val.reshape((T, B) + orig.get(o, shapes[o]))
    recorded = {}
    for p in probes:
        n, var = split_probe(p, raw)
        if n not in raw or not isinstance(raw[n], dict):
            raise NeuroCompileError("probe: no neuron group of this name on Loihi", node=n)
        if n in sdn:
            key = {"out": "spikes", "sigma": "sigma", "act": "act", "res": "residue", "residue": "residue",
                   "e": "error", "error": "error"}.get(var)
        else:
            key = {"out": "spikes", "v": "v", "u": "u"}.get(var)
        if key is None:
            have = "out, sigma, act, res and error" if n in sdn else "out, v and u"
            raise NeuroCompileError(f"probe: this Loihi group has {have}, not '{var}'", node=n)
        recorded[p] = aligned(n, key)
        recorded[p + ":raw"] = raw[n][key][lat[n]:lat[n] + T]
    if record_spikes:
        for n, val in raw.items():
            if isinstance(val, dict) and "spikes" in val and n in lat:  # graph groups, not helpers
                recorded.setdefault(f"{n}.out", aligned(n, "spikes"))
    return RunResult(outputs=outputs, probes=recorded)
