"""How much host memory the Loihi 2 lowering and the emulators will need, checked before they start.

Figures are upper estimates from what is known before anything is allocated (the graph's shapes
and matrices, the program, the run's steps and batch), compared with the memory budget
(:mod:`neurocompile.utils.budget`); a compile or run that would not fit is refused with both
figures (a :class:`~neurocompile.errors.NeuroCompileError`), never left to fail with MemoryError.

* Lowering: every synapse matrix becomes int64 program weights (kept) and, while it is quantized,
  about ``QUANT_TEMPS`` float64 temporaries of its size; every neuron carries about
  ``PER_NEURON`` bytes of per-neuron parameters and scales, plus its bias clock columns;
  calibration data runs the float interpreter (its recorded probes: drive and membrane of every
  group, float64, per step and sample). Convolutions cost their kernel only.
* Emulator runs: the recorded spikes (1 byte, sigma-delta 8) and, with probes, the state
  variables (8 bytes each) of every group per step and sample, the input, and the connections'
  working copies (the numpy reference keeps three dense copies of a matrix, the numba kernel an
  int16 one; a convolution its padded input and output per sample).
"""
from __future__ import annotations

import numpy as np

from neurocompile.ir import nodes as N
from neurocompile.ir.graph import Graph
from neurocompile.ir.latency import shortest_hops
from neurocompile.utils.budget import check_alloc, fmt_bytes

#: float64 temporaries of a matrix's size alive while it is quantized (ratios, target, scaled,
#: rounded, effective weights, error)
QUANT_TEMPS = 7
#: per-neuron parameters, scales and statistics of the lowering (about 30 float64 arrays)
PER_NEURON = 240


def _matrix_elements(node) -> int:
    w = getattr(node, "weight", None)
    if w is None or isinstance(node, (N.Conv1d, N.Conv2d)):
        return 0
    nnz = getattr(w, "nnz", None)        # a scipy.sparse matrix: its stored entries
    return int(nnz) if nnz is not None else int(np.size(w))


def lowering_bytes(graph: Graph, calibration=None) -> tuple[int, str]:
    """(bytes, how they add up) for lowering ``graph`` (a dense-form graph) to a program."""
    shapes = graph.infer_shapes()
    mats = [_matrix_elements(n) for n in graph.nodes.values()]
    neurons = sum(int(np.prod(shapes[n])) for n, node in graph.nodes.items() if node.is_neuron)
    depth = max(shortest_hops(graph).values(), default=0) + 2     # bias clock columns: one per hop
    kept = 8 * sum(mats)
    transient = 8 * QUANT_TEMPS * max(mats, default=0)
    per_neuron = PER_NEURON * neurons + 8 * QUANT_TEMPS * neurons * depth
    total = kept + transient + per_neuron
    detail = (f"{fmt_bytes(kept)} of program weights, {fmt_bytes(transient)} while quantizing the largest "
              f"matrix, {fmt_bytes(per_neuron)} for {neurons} neurons")
    if calibration is not None:
        x = np.shape(calibration)
        steps_samples = int(np.prod(x[:2])) if len(x) >= 2 else int(np.prod(x[:1]))
        cal = 8 * 3 * steps_samples * neurons
        total += cal
        detail += f", {fmt_bytes(cal)} for the calibration run"
    return int(total), detail


def check_lowering(graph: Graph, calibration=None) -> None:
    need, detail = lowering_bytes(graph, calibration)
    check_alloc(need, f"lowering to Loihi 2 ({detail})")


def run_bytes(program, n_steps: int, batch: int, probes: bool, fast: bool) -> tuple[int, str]:
    """(bytes, how they add up) for emulating ``program`` over ``n_steps`` x ``batch``."""
    tb = int(n_steps) * int(batch)
    rec = state = 0
    for n in program.neurons:
        graded = type(n).__name__ == "LoihiSigmaDelta"
        rec += tb * int(n.size) * (8 if graded else 1)
        if probes and n.probe:
            state += tb * int(n.size) * 8 * len(type(n).STATE_VARS)
    inputs = tb * int(program.n_inputs) * (8 if program.input_message_bits else 1)
    conns = 0
    for s in program.synapses:
        if type(s).__name__ == "LoihiConv":
            conns += 16 * int(batch) * (s.in_size() + s.out_size())    # padded input, sums (reference)
        else:
            conns += int(np.size(s.weights)) * (2 if fast else 24)
    total = rec + state + inputs + conns
    detail = (f"{fmt_bytes(rec)} of recorded outputs, {fmt_bytes(state)} of probed state, {fmt_bytes(inputs)} of "
              f"input, {fmt_bytes(conns)} for the connections; {n_steps} steps x batch {batch}")
    return int(total), detail


def check_run(program, n_steps: int, batch: int, probes: bool, fast: bool) -> None:
    need, detail = run_bytes(program, n_steps, batch, probes, fast)
    check_alloc(need, f"emulating the Loihi 2 program ({detail})")
