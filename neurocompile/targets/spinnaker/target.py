"""The ``spinnaker`` target: NORMALIZE + DenseForm (convolutions kept) + QuantizeSpiNNaker (the lowering to the PyNN
program); runners ``emulator`` (sPyNNaker 7.x's fixed-point code, default) and ``board``.

An artifact takes either 0/1 spikes or, compiled with a direct (current) input, the float input
itself: the runners compute the host's first layer (:mod:`.host_input`) from it."""
from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

import numpy as np

from neurocompile.errors import BackendError, NeuroCompileError
from neurocompile.ir.batch import batched_input
from neurocompile.ir.interpreter import RunResult
from neurocompile.passes import NORMALIZE, PassContext
from neurocompile.passes.dense_form import DenseForm
from neurocompile.targets.base import Runner, Target
from neurocompile.targets.input_encoding import spike_input_hint
from neurocompile.targets.spinnaker import board, nest_runner
from neurocompile.targets.spinnaker import host_input as H
from neurocompile.targets.spinnaker.conv import conv_fits
from neurocompile.targets.spinnaker.emulator import run_program
from neurocompile.targets.spinnaker.lowered import LoweredSpiNNaker, SpiNNakerOptions
from neurocompile.targets.spinnaker.lowering import QuantizeSpiNNaker
from neurocompile.targets.spinnaker.program import Program
from neurocompile.targets.spinnaker.pynn_script import write_script

PAYLOAD_DIR = "spinnaker"


class _SpiNNakerRunner(Runner):
    """Runs the artifact's program through ``run_spinnaker`` on the runner of this name, once
    ``available()`` says it can."""

    def run(self, artifact, x, *, probes=(), record_spikes=True, progress=None):
        ok, why = self.available()
        if not ok:
            raise BackendError(why)
        return run_spinnaker(artifact, x, probes=probes, record_spikes=record_spikes, progress=progress,
                             runner=self.name)


class EmulatorRunner(_SpiNNakerRunner):
    name = "emulator"
    description = "bit-accurate emulator of sPyNNaker's ARM fixed-point code"
    exact = True


class BoardRunner(_SpiNNakerRunner):
    name = "board"
    description = "the SpiNNaker board in ~/.spynnaker.cfg (machineName or spalloc)"
    exact = True
    chip = True

    def available(self) -> tuple[bool, str]:
        return board.board_status()


class NestRunner(_SpiNNakerRunner):
    name = "nest"
    description = "the PyNN program on NEST 3 (pyNN.nest): a float simulation, not bit-accurate"
    exact = False

    def available(self) -> tuple[bool, str]:
        return nest_runner.nest_status()


class SpiNNakerTarget(Target):
    name = "spinnaker"
    family = "spinnaker"
    description = ("SpiNNaker via sPyNNaker 7.x (IF_curr_exp / IF_curr_delta, 1 ms ticks); runs on a "
                   "bit-accurate emulator of the ARM fixed-point code, or on a board in ~/.spynnaker.cfg")
    Options = SpiNNakerOptions
    runners = {"emulator": EmulatorRunner(), "board": BoardRunner(), "nest": NestRunner()}
    default_runner = "emulator"
    chip_runner = "board"
    #: sPyNNaker's IF_curr_* reset to a value, take spikes and have no non-spiking readout (ONNX)
    frontend_defaults = {"reset": "zero", "input_encoding": "spikes", "readout": "spikes"}

    def passes(self, options) -> list:
        # convolutions stay kernels (spinnaker.conv): no dense folding of a conv between groups
        return list(NORMALIZE) + [DenseForm(keep_conv=True, conv_fits=conv_fits), QuantizeSpiNNaker()]

    def payload(self, graph, last: LoweredSpiNNaker, ctx: PassContext) -> Program:
        return last.program

    # -- payload ----------------------------------------------------------------------------
    def save_payload(self, payload: Program, directory: Path) -> None:
        d = Path(directory) / PAYLOAD_DIR
        payload.save(d)
        write_script(d)

    def load_payload(self, directory: Path) -> Program:
        d = Path(directory) / PAYLOAD_DIR
        try:
            return Program.load(d)
        except (OSError, ValueError, KeyError) as err:
            raise NeuroCompileError(f"cannot read the SpiNNaker program: {err}", file=str(d)) from None


SpiNNakerBackend = SpiNNakerTarget   # the name of the first releases


def _program(artifact) -> Program:
    if not isinstance(artifact.payload, Program):
        raise NeuroCompileError("the artifact holds no SpiNNaker program: compile it with --target spinnaker")
    return artifact.payload


def run_spinnaker(artifact, x, *, probes=(), record_spikes=True, progress=None, runner: str = "emulator"):
    """Run a SpiNNaker artifact on the emulator profile or the board; results on the graph's time base."""
    graph, program = artifact.graph, _program(artifact)
    xs = program_input(graph, program, x, artifact=_artifact_name(artifact))
    plans = host_plan(program, xs)
    T, B, _ = xs.shape
    wanted = _parse_probes(graph, program, probes, record_spikes)
    need_v = any(var == "v" for _, var in wanted.values())
    need_i = any(var == "i" for _, var in wanted.values())
    n_ticks = T + program.max_latency
    if runner == "emulator":
        chip = run_program(program, xs, n_ticks, record_v=need_v, record_i=need_i, host_plan=plans,
                           progress=(lambda d, n: progress(min(d, T), T)) if progress else None)
        spikes, v_raw = chip.spikes, chip.v
        # the current the neuron integrates: synaptic state plus I_offset (+ the injected current)
        i_raw = {n: chip.i_exc[n] - chip.i_inh[n] + chip.i_host.get(n, program.population(n).raw["i_offset"])
                 for n in chip.i_exc}
    elif runner == "board":
        if need_i:
            raise BackendError("sPyNNaker does not record the synaptic current per tick in a "
                               "form this runner reads; probe v or spikes on the board")
        if plans and H.any_step(plans):
            _check_step_dtcm(program, plans)
        spikes, v_raw = _board(artifact, program, xs, n_ticks, need_v)
        i_raw = {}
    elif runner == "nest":
        if need_i:
            raise BackendError("the nest runner records spikes and v; probe v or spikes")
        if program.host_input is not None:
            raise BackendError("the nest runner takes spike-input programs only; this artifact's direct "
                               "(current) input runs on the emulator or the board")
        spikes, v_raw = _nest(artifact, program, xs, n_ticks, need_v)
        i_raw = {}
    else:
        raise BackendError(f"unknown SpiNNaker runner '{runner}' (emulator or board)")
    # a graph group cut by channel (local-only conv populations) is joined back in C order
    outputs = {o: _align(program.gather(spikes, p), _latency(program, p), T).astype(np.float64)
               for o, p in program.outputs.items()}
    recorded = {}
    for key, (node, var) in wanted.items():
        if node == program.input_name:
            recorded[key] = xs.astype(np.float64)
            continue
        lat = _latency(program, node)
        if var == "out":
            recorded[key] = _align(program.gather(spikes, node), lat, T).astype(np.float64)
        elif var == "v":
            raw = _align(program.gather(v_raw, node), lat, T)
            recorded[key] = (raw / 32768.0 - program.group_attr(node, "offset")) / program.group_attr(node, "scale")
        else:
            raw = _align(program.gather(i_raw, node), lat, T)
            recorded[key] = raw / 32768.0 / program.group_attr(node, "cur_scale")
    return RunResult(outputs=outputs, probes=recorded)



@contextlib.contextmanager
def _program_dir(artifact, program):
    """The artifact's program directory with its ``run_pynn.py``, or the program written to a
    temporary one (an artifact not saved, or saved without the script)."""
    with tempfile.TemporaryDirectory(prefix="nc-spinnaker-prog-") as tmp:
        d = Path(artifact.path) / PAYLOAD_DIR if artifact.path else Path(tmp)
        if not (d / "run_pynn.py").is_file():
            d = Path(tmp)
            program.save(d)
            write_script(d)
        yield d


def _board(artifact, program, xs, n_ticks, need_v):
    with _program_dir(artifact, program) as d:
        out = board.run_on_board(d, xs, n_ticks + 1, record_v=need_v)
    spikes = {p.name: out[f"spikes/{p.name}"][:n_ticks].astype(bool) for p in program.populations}
    v_raw = {}
    if need_v:
        for p in program.populations:
            rec = out[f"v/{p.name}"]          # v at the start of each tick, in mV
            v_raw[p.name] = np.rint(rec[1:n_ticks + 1] * 32768.0).astype(np.int64)
    return spikes, v_raw


def _nest(artifact, program, xs, n_ticks, need_v):
    """On NEST (``nest_runner``): spikes per tick, v in mV * 2**15 (float: no rounding)."""
    with _program_dir(artifact, program) as d:
        out = nest_runner.run_on_nest(d, xs, n_ticks, record_v=need_v)
    spikes = {p.name: out[f"spikes/{p.name}"].astype(bool) for p in program.populations}
    v_raw = {p.name: out[f"v/{p.name}"] * 32768.0 for p in program.populations} if need_v else {}
    return spikes, v_raw


def _latency(program: Program, node: str) -> int:
    return program.population(program.group_members(node)[0]).latency


def _align(arr: np.ndarray, latency: int, T: int) -> np.ndarray:
    """Chip ticks -> graph steps: step t of a population that runs ``latency`` ticks behind."""
    return arr[latency:latency + T]


def program_input(graph, program: Program, x, artifact: str = "ARTIFACT") -> np.ndarray:
    """The input as (T, batch, n): 0/1 spikes, or for a direct-input program the float values
    (finite); accepts the model's original input shape too."""
    if isinstance(x, dict):
        if len(x) != 1:
            raise NeuroCompileError("the SpiNNaker program has one input")
        x = next(iter(x.values()))
    x = batched_input(graph, {program.input_name: x}, flat=True)
    if program.host_input is not None:
        if x.size and not np.all(np.isfinite(x)):
            raise NeuroCompileError("the input holds NaN or infinite values", node=program.input_name)
        return x
    if np.any((x != 0) & (x != 1)):
        raise NeuroCompileError("this SpiNNaker artifact takes 0/1 spikes at its input (compiled with input "
                                f"encoding 'spikes'); {spike_input_hint(artifact)}", node=program.input_name)
    return x


spike_input = program_input   # the name of the first releases


def host_plan(program: Program, xs: np.ndarray) -> list[dict] | None:
    """The host's words for a direct-input program (None for spike input); a current the chip
    cannot hold is a NeuroCompileError that names the ways out."""
    if program.host_input is None:
        return None
    try:
        return H.plan(program.host_entries(), xs)
    except ValueError as err:
        raise NeuroCompileError(str(err), node=program.input_name) from None


def _check_step_dtcm(program: Program, plans: list[dict]) -> None:
    """Step current sources live in DTCM: refuse a board run whose tables cannot fit one core."""
    per_core = int(program.report.get("resources", {}).get("neurons_per_core", 256))
    for hp in plans:
        if (~hp["offset"]).any():
            n_core = min(program.population(hp["pop"]).size, per_core)
            L = hp["times"].shape[2]
            if H.samples_per_mapping(n_core, L) < 1:
                need = H.step_dtcm_bytes(n_core, L)[0]
                raise NeuroCompileError(
                    f"population '{hp['pop']}': a time-varying direct input needs one StepCurrentSource per "
                    f"neuron with {L} entries, ~{need} bytes of DTCM a core (budget {H.STEP_DTCM_BUDGET}); hold "
                    "the input constant over time (the current then goes into I_offset), compile with a smaller "
                    "neurons_per_core option, or feed spikes (--input-encoding spikes)", node=hp["pop"])


def _artifact_name(artifact) -> str:
    return str(artifact.path) if getattr(artifact, "path", None) else "ARTIFACT"


def _parse_probes(graph, program: Program, probes, record_spikes) -> dict[str, tuple[str, str]]:
    members = {n for names in program.groups.values() for n in names}
    pops = {p.name: p for p in program.populations if p.name not in members}
    pops.update({g: program.population(names[0]) for g, names in program.groups.items()
                 if g != program.input_name})
    wanted = {}
    for p in probes:
        node, _, var = p.partition(".")
        if node not in graph.nodes:  # dotted node names (block.lif): try the longest match
            for cand in sorted(graph.nodes, key=len, reverse=True):
                if p == cand or p.startswith(cand + "."):
                    node, var = cand, p[len(cand) + 1:]
                    break
        if node in program.outputs:
            node, var = program.outputs[node], "out"
        var = var or "out"
        if node == program.input_name and var == "out":
            wanted[p] = (node, var)
            continue
        if node not in pops:
            raise NeuroCompileError("on SpiNNaker only neuron groups, outputs and the input can be "
                                    "probed (synapse matrices live in the ring buffers)", node=node)
        if var not in ("out", "v", "i"):
            raise NeuroCompileError(f"no state variable '{var}' on SpiNNaker (out, v, i)", node=node)
        if var == "i" and pops[node].model != "IF_curr_exp":
            raise NeuroCompileError("only CubaLIF groups have a synaptic current 'i'", node=node)
        wanted[p] = (node, var)
    if record_spikes:
        for name in pops:
            wanted.setdefault(f"{name}.out", (name, "out"))
    return wanted
