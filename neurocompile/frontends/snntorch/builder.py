"""Building the graph layer by layer (neurons, synapses, recurrent loops)."""
from __future__ import annotations

import numpy as np

from neurocompile.errors import NeuroCompileError, UnsupportedError
from neurocompile.frontends.snntorch.batchnorm import fold_batchnorm
from neurocompile.frontends.snntorch.common import _is_skipped, _neuron_types
from neurocompile.ir import nodes as N
from neurocompile.ir.graph import Graph


class _Builder:
    def __init__(self, shape, dt, strict, torch, nn, snn):
        self.torch, self.nn, self.snn = torch, nn, snn
        self.dt = dt
        self.strict = strict
        self.g = Graph(dt=dt, discretization="euler")
        self.g.metadata["source"] = "snntorch"
        self.g.metadata["snntorch_layers"] = {}
        self.prev = self.g.add("input", N.Input(shape=shape))
        self.shape = tuple(shape)
        self.last_layer = None
        self.last_neuron = False
        self.g.assume(
            f"snnTorch has no time step: dt={dt:g} chosen; each neuron gets tau = dt/(1-beta) and "
            "r = tau/dt (tau_syn = dt/(1-alpha), w_in = tau_syn/dt), so the graph's Euler update is "
            "snnTorch's mem = beta*mem + input")
        self.g.assume("every state starts at zero, as after snntorch.utils.reset")

    # -- helpers ------------------------------------------------------------------------
    def _name(self, qualname: str) -> str:
        base = qualname.replace(".", "_") or "layer"
        name, k = base, 1
        while name in self.g.nodes or name in ("input", "output"):
            name = f"{base}_{k}"
            k += 1
        return name

    def _array(self, value) -> np.ndarray:
        if self.torch.is_tensor(value):
            return value.detach().cpu().to(self.torch.float64).numpy().copy()
        return np.asarray(value, dtype=np.float64)

    def _param(self, value, what: str, qual: str, shape=None) -> np.ndarray:
        """A neuron parameter as an array broadcasting to the layer's shape (no batch)."""
        shape = self.shape if shape is None else shape
        arr = self._array(value)
        if arr.size == 1:
            return arr.reshape(())
        while arr.ndim > len(shape) and arr.shape[0] == 1:
            arr = arr[0]
        try:
            ok = np.broadcast_shapes(arr.shape, shape) == tuple(shape)
        except ValueError:
            ok = False
        if not ok:
            raise UnsupportedError(
                f"{what} has shape {tuple(self._array(value).shape)}, which does not broadcast to "
                f"the layer's shape {tuple(shape)} (per-sample parameters are not supported)", node=qual)
        return arr

    def _connect(self, name: str, node: N.Node, qual: str) -> None:
        self.g.add(name, node)
        try:
            out_shape = tuple(int(s) for s in node.infer_shape(self.shape))
        except NeuroCompileError as err:
            raise UnsupportedError(f"{type(node).__name__} does not fit its input: {err.reason}",
                                   node=qual) from None
        self.g.connect(self.prev, name)
        self.prev = name
        self.shape = out_shape

    # -- layers -------------------------------------------------------------------------
    def add_layer(self, qual: str, layer) -> None:
        nn = self.nn
        if _is_skipped(layer, nn):
            if isinstance(layer, nn.modules.dropout._DropoutNd):
                self.g.assume(f"dropout layer '{qual}' skipped (inference: identity)")
            return
        kind = _neuron_types(self.snn).get(type(layer))
        name = self._name(qual)
        self.g.metadata["snntorch_layers"][qual] = name
        if kind:
            self._neuron(name, qual, layer, kind)
            self.last_neuron = True
        else:
            self._synapse(name, qual, layer)
            self.last_neuron = False
        self.last_layer = name

    def _synapse(self, name, qual, layer) -> None:
        nn = self.nn
        if isinstance(layer, nn.Linear):
            if len(self.shape) != 1:
                raise UnsupportedError(
                    f"nn.Linear gets an input of shape {self.shape}; it would act on the last axis "
                    "only: put an nn.Flatten before it", node=qual)
            w = self._array(layer.weight)
            node = N.Linear(weight=w) if layer.bias is None else N.Affine(weight=w, bias=self._array(layer.bias))
        elif isinstance(layer, nn.Conv2d):
            if layer.padding_mode != "zeros":
                raise UnsupportedError(f"nn.Conv2d padding_mode '{layer.padding_mode}' (only zeros)", node=qual)
            try:
                node = N.Conv2d(weight=self._array(layer.weight),
                                bias=0.0 if layer.bias is None else self._array(layer.bias),
                                stride=layer.stride, padding=layer.padding, dilation=layer.dilation,
                                groups=layer.groups)
            except NeuroCompileError as err:
                raise UnsupportedError(f"nn.Conv2d: {err.reason}", node=qual) from None
        elif isinstance(layer, (nn.BatchNorm1d, nn.BatchNorm2d)):

            node = fold_batchnorm(self, qual, layer)
            if node is None:       # folded into the layer before it
                return
        elif isinstance(layer, (nn.AvgPool2d, nn.MaxPool2d)):
            node = self._pool(qual, layer)
        elif isinstance(layer, nn.Flatten):
            node = N.Flatten(start_dim=self._dim(layer.start_dim, qual),
                             end_dim=self._dim(layer.end_dim, qual))
        else:  # pragma: no cover - _is_known covers the list
            raise UnsupportedError(f"layer type {type(layer).__name__} is not supported", node=qual)
        self._connect(name, node, qual)

    @staticmethod
    def _dim(d: int, qual: str) -> int:
        """A torch (batched) dim index as an index into the unbatched shape."""
        d = int(d)
        if d == 0:
            raise UnsupportedError("nn.Flatten over the batch dimension", node=qual)
        return d - 1 if d > 0 else d

    def _pool(self, qual, layer):
        nn = self.nn
        is_max = isinstance(layer, nn.MaxPool2d)
        stride = layer.stride if layer.stride not in (None, (), []) else layer.kernel_size
        if is_max:
            if N.synapses._tuple(layer.dilation, 2, "dilation") != (1, 1):
                raise UnsupportedError("nn.MaxPool2d with dilation != 1", node=qual)
            if layer.return_indices:
                raise UnsupportedError("nn.MaxPool2d with return_indices=True", node=qual)
            node = N.MaxPool2d(kernel_size=layer.kernel_size, stride=stride, padding=layer.padding)
        else:
            node = N.AvgPool2d(kernel_size=layer.kernel_size, stride=stride, padding=layer.padding)
            k = node.kernel_size[0] * node.kernel_size[1]
            if layer.divisor_override not in (None, k):
                raise UnsupportedError(f"nn.AvgPool2d with divisor_override={layer.divisor_override}", node=qual)
            if not layer.count_include_pad and any(node.padding):
                raise UnsupportedError("nn.AvgPool2d with padding and count_include_pad=False", node=qual)
        if layer.ceil_mode and len(self.shape) == 3:
            # ceil_mode only matters when it adds a partial window at the end
            torch = self.torch
            with torch.no_grad():
                out = layer(torch.zeros((1,) + self.shape, dtype=torch.float64))
            if tuple(out.shape[1:]) != tuple(node.infer_shape(self.shape)):
                raise UnsupportedError(f"{type(layer).__name__} with ceil_mode=True adds a partial "
                                       "window (not supported)", node=qual)
        return node

    # -- neurons ------------------------------------------------------------------------
    def _check_neuron(self, qual, layer, kind) -> tuple[str, bool, np.ndarray, int]:
        """Common checks; returns (reset, effective reset_delay, threshold, refractory steps)."""
        torch = self.torch
        if layer.inhibition:
            raise UnsupportedError(f"snn.{kind} with inhibition=True (winner-take-all across the "
                                   "batch row) has no graph equivalent", node=qual)
        if layer.state_quant:
            raise UnsupportedError(f"snn.{kind} with state_quant (quantized state) is not supported",
                                   node=qual)
        gsf = self._array(layer.graded_spikes_factor)
        if not np.all(gsf == 1.0):
            raise UnsupportedError(f"snn.{kind} with graded_spikes_factor != 1 (graded spikes) is not "
                                   "supported", node=qual)
        probe = torch.tensor([-1.0, -1e-30, 0.0, 1e-30, 1.0], dtype=torch.float64)
        try:
            with torch.no_grad():
                fired = self._array(layer.spike_grad(probe.clone()))
        except Exception as err:
            raise UnsupportedError(f"snn.{kind}: its spike function failed on a test input: {err}",
                                   node=qual) from None
        if fired.shape != (5,) or not np.array_equal(fired, [0, 0, 0, 1, 1]):
            raise UnsupportedError(f"snn.{kind}: its spike function is not the Heaviside step "
                                   "H(mem - threshold > 0) that the graph's neurons use", node=qual)
        fn = getattr(getattr(layer, "state_function", None), "__func__", None)
        by_fn = {"_base_sub": "subtract", "_base_zero": "zero", "_base_int": "none"}
        reset = by_fn.get(getattr(fn, "__name__", ""))
        by_val = {0: "subtract", 1: "zero", 2: "none"}.get(int(layer.reset_mechanism_val))
        if reset is None or reset != by_val:
            raise UnsupportedError(
                f"snn.{kind}: its update function ({getattr(fn, '__name__', fn)}) and "
                f"reset_mechanism_val ({by_val}) disagree (a state dict changed the reset "
                "mechanism after construction?)", node=qual)
        reset_delay = bool(layer.reset_delay)
        if kind == "RSynaptic" and not reset_delay and not _rsynaptic_honours_reset_delay(self.snn, torch):
            reset_delay = True
            self.g.assume(
                f"'{qual}': snn.RSynaptic ignores reset_delay=False (its post-spike reset updates a "
                "local variable only), so it is imported with reset_delay=True, as it computes")
        thr = self._param(layer.threshold, "threshold", qual)
        if reset != "none" and np.any(thr < 0):
            raise UnsupportedError(
                f"snn.{kind} with a negative threshold: snnTorch's reset flag H(mem - threshold) is "
                "then 1 on a zero membrane, which the graph's neurons do not reproduce", node=qual)
        self._check_exact(qual, kind, reset, reset_delay)
        # Synaptic, RLeaky and RSynaptic clear the whole step after a spike: a 1-step refractory
        refractory = 1 if reset == "zero" and reset_delay and kind != "Leaky" else 0
        return reset, reset_delay, thr, refractory

    def _check_exact(self, qual, kind, reset, reset_delay) -> None:
        """Reject (strict) or record (not strict) the variant the graph cannot express."""
        if reset == "subtract" and not reset_delay:
            what = (f"snn.{kind} with reset_mechanism='subtract' and reset_delay=False")
            why = ("snnTorch compares the membrane with threshold*(1 + H(mem[t-1] - threshold)), so a "
                   "membrane still above threshold after its reset (one step pushed it over "
                   "2*threshold) raises the bar for the next step and can stay above threshold "
                   "without firing; the graph fires whenever mem > threshold")
            fix = "use reset_delay=True (exact)"
        else:
            return
        if self.strict:
            raise UnsupportedError(f"{what} is not exact: {why}. To import it, {fix}, or pass "
                                   "strict=False to accept the difference", node=qual)
        self.g.assume(f"'{qual}' is approximated (strict=False): {why}")

    def _decay(self, value, what, qual) -> np.ndarray:
        raw = self._param(value, what, qual)
        clamped = np.clip(raw, 0.0, 1.0)
        if not np.array_equal(raw, clamped):
            self.g.assume(f"'{qual}': {what} outside [0, 1] clamped, as snnTorch's forward does")
        return clamped

    NO_DECAY = 2.0 ** 40  # tau/dt standing for "no decay": 1 - beta = 2**-40, (1 - beta)*r == 1 exactly

    def _tau(self, decay: np.ndarray, what: str, qual: str) -> np.ndarray:
        """dt/(1 - decay); a decay of 1 (snnTorch clamps a learned 1.014 to 1) becomes a time
        constant of 2**40 steps: exact on Loihi 2 (dv = 0), within 1e-12 per step on the float
        reference; a target that cannot represent it says so when compiling."""
        one = decay == 1.0
        if np.any(one):
            self.g.assume(f"'{qual}': {what} = 1 (no decay; snnTorch clamps learned values >= 1 to 1) "
                          f"mapped to a time constant of 2**40 steps (per-step decay 1 - 9.1e-13)")
        return self.dt / np.where(one, 1.0 / self.NO_DECAY, 1.0 - decay)

    def _neuron(self, name, qual, layer, kind) -> None:
        reset, reset_delay, thr, refractory = self._check_neuron(qual, layer, kind)
        spiking = dict(v_threshold=thr, reset=reset, reset_delay=reset_delay, refractory=refractory,
                       compare="gt")
        beta = self._decay(layer.beta, "beta", qual)
        dt = self.dt
        synaptic = kind in ("Synaptic", "RSynaptic")
        if synaptic:
            alpha = self._decay(layer.alpha, "alpha", qual)
            tau_syn = self._tau(alpha, "alpha", qual)
            tau_mem = self._tau(beta, "beta", qual)
            node = N.CubaLIF(tau_syn=tau_syn, tau_mem=tau_mem, r=tau_mem / dt, w_in=tau_syn / dt,
                             **spiking)
        elif np.all(beta == 1.0):
            node = N.IF(r=1.0, **spiking)
        else:
            tau = self._tau(beta, "beta", qual)
            node = N.LIF(tau=tau, r=tau / dt, **spiking)
        if kind in ("RLeaky", "RSynaptic"):
            self._recurrent(name, qual, layer, kind)
        self._connect(name, node, qual)
        if kind in ("RLeaky", "RSynaptic"):
            rec_name = f"{name}_rec"
            self.g.connect(name, rec_name)
            self.g.connect(rec_name, name)

    def _recurrent(self, name, qual, layer, kind) -> None:
        """Add the recurrent node ``<name>_rec`` (edges are added by the caller) and fold its bias
        into the node that feeds the neuron."""
        nn = self.nn
        rec = layer.recurrent
        rec_name = f"{name}_rec"
        if rec_name in self.g.nodes:
            raise UnsupportedError(f"node name '{rec_name}' is taken", node=qual)
        bias = None
        if isinstance(rec, nn.Linear):
            if self.shape != (rec.in_features,) or rec.out_features != rec.in_features:
                raise UnsupportedError(
                    f"snn.{kind}: recurrent nn.Linear({rec.in_features}, {rec.out_features}) does "
                    f"not fit the layer's shape {self.shape}", node=qual)
            node = N.Linear(weight=self._array(rec.weight))
            if rec.bias is not None:
                bias = self._array(rec.bias)
        elif isinstance(rec, nn.Conv2d):
            if rec.padding_mode != "zeros":
                raise UnsupportedError(f"snn.{kind}: recurrent conv padding_mode '{rec.padding_mode}'",
                                       node=qual)
            try:
                node = N.Conv2d(weight=self._array(rec.weight), bias=0.0, stride=rec.stride,
                                padding=rec.padding, dilation=rec.dilation, groups=rec.groups)
                out = tuple(node.infer_shape(self.shape))
            except NeuroCompileError as err:
                raise UnsupportedError(f"snn.{kind}: recurrent conv: {err.reason}", node=qual) from None
            if out != self.shape:
                raise UnsupportedError(
                    f"snn.{kind}: recurrent conv maps shape {self.shape} to {out} (an even kernel "
                    "size?)", node=qual)
            if rec.bias is not None:
                bias = self._array(rec.bias)
        elif type(rec).__name__ == "RecurrentOneToOne" and type(rec).__module__.startswith("snntorch"):
            node = N.Scale(scale=self._param(rec.V, "V", qual))
        else:
            raise UnsupportedError(f"snn.{kind}: recurrent layer of type {type(rec).__name__} is not "
                                   "supported", node=qual)
        self.g.add(rec_name, node)
        if bias is not None and np.any(bias != 0):
            self._add_constant(qual, bias, isinstance(rec, nn.Conv2d))

    def _add_constant(self, qual, bias, per_channel) -> None:
        """Add ``bias`` (per feature, or per channel) to the input of the next node."""
        prev = self.g.nodes[self.prev]
        only_consumer = len(self.g.successors(self.prev)) == 0
        foldable = only_consumer and not isinstance(prev, N.Input) and (
            (per_channel and isinstance(prev, N.Conv2d)) or
            (not per_channel and isinstance(prev, N.Linear) and len(self.shape) == 1))
        if foldable:
            if isinstance(prev, N.Affine) or isinstance(prev, N.Conv2d):
                prev.bias = prev.bias + bias
            else:
                self.g.nodes[self.prev] = N.Affine(weight=prev.weight, bias=bias)
            self.g.assume(f"'{qual}': the recurrent layer's bias (a constant input at every step) is "
                          f"added to the bias of '{self.prev}'")
            return
        name = self._name(f"{qual}_bias")
        if per_channel:
            c = self.shape[0]
            node = N.Conv2d(weight=np.eye(c).reshape(c, c, 1, 1), bias=bias)
        else:
            node = N.Affine(weight=np.eye(self.shape[0]), bias=bias)
        self.g.assume(f"'{qual}': the recurrent layer's bias (a constant input at every step) is "
                      f"added by an identity node '{name}'")
        self._connect(name, node, qual)

    # -- end ----------------------------------------------------------------------------
    def finish(self) -> Graph:
        if self.last_layer is None:
            raise UnsupportedError("the module has no layers besides skipped ones")
        self.g.add("output", N.Output())
        self.g.connect(self.prev, "output")
        what = "spikes" if self.last_neuron else "output"
        self.g.assume(f"the graph's output is the {what} of the last layer '{self.last_layer}'")
        self.g.validate()
        return self.g


_RSYN_CACHE: dict[str, bool] = {}


def _rsynaptic_honours_reset_delay(snn, torch) -> bool:
    """Does this snnTorch's RSynaptic apply the reset within the step when reset_delay=False?
    (snnTorch 1.0 does not.) Found by running one neuron for one step."""
    key = getattr(snn, "__version__", "?")
    if key not in _RSYN_CACHE:
        layer = snn.RSynaptic(alpha=0.0, beta=0.5, all_to_all=False, V=0.0, learn_recurrent=False,
                              reset_mechanism="subtract", reset_delay=False)
        try:
            snn.SpikingNeuron.instances.remove(layer)
        except ValueError:
            pass
        z = torch.zeros(1, 1)
        with torch.no_grad():
            _, _, mem = layer(torch.full((1, 1), 2.5), z, z, z)
        _RSYN_CACHE[key] = bool(abs(float(mem) - 1.5) < 1e-6)
    return _RSYN_CACHE[key]
