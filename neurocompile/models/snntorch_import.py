"""Import an snnTorch network straight from its ``torch.nn.Module`` (no NIR round trip).

What is read
------------
``nn.Sequential`` and class-based networks. The leaf layers are collected from
``named_children()`` in definition order (nested containers are walked) and taken as a chain:
the output of each layer feeds the next. When some container is not a plain ``nn.Sequential``,
the network's ``forward`` is run on a random input (first shaped ``(batch, *input_shape)``, then
``(T, batch, *input_shape)`` if that fails) with hooks on every layer, to check that each step
calls the layers once each in definition order, feeds each layer the previous layer's output
(spikes for a neuron) and gives each neuron its own state from the previous step (zero at the
first). Anything else (skipped, repeated or reordered layers, arithmetic between layers, states
from elsewhere) raises :class:`UnsupportedError` naming the module. The check sees the values
that reach the layers in that one run, not code paths the run did not take.

Layers: ``nn.Linear`` (-> Affine, or Linear without bias), ``nn.Conv2d``, ``nn.AvgPool2d``,
``nn.MaxPool2d``, ``nn.Flatten``, ``nn.Identity`` and dropout (skipped: inference),
``snn.Leaky`` (-> LIF, or IF when beta == 1), ``snn.Synaptic`` (-> CubaLIF), ``snn.RLeaky`` and
``snn.RSynaptic`` (the same neuron plus its recurrent layer in a loop ``lif -> rec -> lif``).

snnTorch's forward pass, per step (snnTorch 1.0, ``_neurons/*.py``)
--------------------------------------------------------------------
``H(z) = 1 if z > 0 else 0``; ``beta`` and ``alpha`` are clamped to [0, 1] in every forward;
``m`` is the stored membrane, ``r = H(m[t-1] - thr)`` the reset flag computed from it.

* Leaky: ``u = beta*m + x - r*thr`` (subtract), ``u = beta*(1-r)*m + x`` (zero),
  ``u = beta*m + x`` (none); ``s = H(u - thr)``. With ``reset_delay=True`` (default) the stored
  ``m`` is ``u``. With ``reset_delay=False`` it is ``u - (s - r)*thr`` (subtract) or
  ``u - (s - r)*u`` (zero).
* Synaptic: ``syn = alpha*syn + x``; ``u = beta*m + syn`` then as Leaky for subtract and none,
  but zero gives ``u = (beta*m + syn)*(1 - r)``: the whole step after a spike is cleared, the
  input of that step included (``syn`` itself is not reset).
* RLeaky: ``u = beta*m + x + rec(s[t-1])`` with ``rec`` an ``nn.Linear(N, N)`` with bias, an
  ``nn.Conv2d(C, C, k, padding=k//2)`` with bias, or ``V * s`` (``all_to_all=False``). The bias
  enters at every step, also at step 0 where ``s[-1] = 0``. Zero reset clears the whole step
  as in Synaptic.
* RSynaptic: ``syn = alpha*syn + x + rec(s[t-1])``, ``u = beta*m + syn``, resets as Synaptic.
  Its ``reset_delay=False`` branch updates a local variable and never the returned state, so it
  behaves as ``reset_delay=True`` (and raises a TypeError if ``spk`` is not passed).

How it maps to the graph
------------------------
snnTorch has no time step. With the graph's ``dt`` (default 1.0, Euler rule) each layer gets
``tau = dt/(1-beta)`` and ``r = tau/dt`` so that ``(1-beta)*r == 1`` and the graph's
``v = beta*v + (1-beta)*r*x`` is snnTorch's ``m = beta*m + x``; likewise
``tau_syn = dt/(1-alpha)``, ``w_in = tau_syn/dt``. ``reset``, ``reset_delay`` and the strict
``>`` comparison are copied. Synaptic, RLeaky and RSynaptic with zero reset and (effective)
``reset_delay=True`` clear the step after a spike: that is the graph's ``refractory=1``. One
snnTorch behaviour has no exact counterpart in the graph and is rejected unless ``strict=False``
(then imported as the graph's subtract reset without delay, and recorded as an assumption):
``reset_mechanism="subtract"`` with ``reset_delay=False``. snnTorch then tests the spike
against ``thr*(1 + r)``: a membrane still above threshold after its reset (one step pushed it
over ``2*thr``) raises the bar for the next step and can sit above threshold without firing.
With ``reset_delay=True`` (snnTorch's default) it is exact.

The recurrent layer's bias is a constant input; a recurrent edge delivers zero at step 0, so the
bias is folded into the bias of the synaptic layer in front of the neuron (or into an identity
Affine/Conv2d inserted there) and the recurrent node carries the weights only.

Node names are the modules' qualified names with ``.`` replaced by ``_`` (``fc1``, ``lif1``, or
``0``, ``1``, ... for an ``nn.Sequential``); a recurrent layer is ``<neuron>_rec``. The mapping is
in ``graph.metadata["snntorch_layers"]``.
"""
from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..compiler import nodes as N
from ..compiler.graph import Graph
from ..errors import NeuroCompileError, UnsupportedError

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["from_snntorch", "load_snntorch_reference"]

#: snnTorch state attribute names each neuron type keeps between steps (forward argument order).
_STATE_NAMES = {"Leaky": ("mem",), "Synaptic": ("syn", "mem"), "RLeaky": ("spk", "mem"),
                "RSynaptic": ("spk", "syn", "mem")}


def _libs():
    """torch, torch.nn and snntorch, imported on first use."""
    try:
        import torch
        from torch import nn
    except ImportError as err:
        raise NeuroCompileError(
            "snnTorch models need torch and snntorch (pip install 'neurocompile[torch]')") from err
    try:
        import snntorch as snn
    except ImportError as err:
        raise NeuroCompileError(
            "snnTorch models need the snntorch package (pip install 'neurocompile[torch]')") from err
    return torch, nn, snn


# ------------------------------------------------------------------------------------------
# the public entry points
# ------------------------------------------------------------------------------------------
def from_snntorch(module: "torch.nn.Module", input_shape: tuple, dt: float = 1.0, *,
                  strict: bool = True) -> Graph:
    """Build a :class:`Graph` that computes what ``module``'s own forward pass computes.

    ``input_shape`` is the shape of one sample at one step, without batch (``(64,)``,
    ``(1, 28, 28)``). ``dt`` is the graph's time step; it only scales the time constants (see the
    module docstring). With ``strict=False`` the two snnTorch reset variants that the graph cannot
    express exactly are accepted with a recorded assumption instead of rejected.
    """
    torch, nn, snn = _libs()
    if not isinstance(module, nn.Module):
        raise NeuroCompileError(f"expected a torch.nn.Module, got {type(module).__name__}")
    if isinstance(input_shape, int):
        input_shape = (input_shape,)
    try:
        shape = tuple(int(s) for s in input_shape)
    except (TypeError, ValueError):
        raise NeuroCompileError(f"input_shape must be a tuple of sizes, got {input_shape!r}") from None
    if not shape or any(s <= 0 for s in shape):
        raise NeuroCompileError(f"input_shape must hold positive sizes (one sample, no batch), got {shape}")
    dt = float(dt)
    if not dt > 0 or not np.isfinite(dt):
        raise NeuroCompileError(f"dt must be a positive number, got {dt}")

    leaves, plain = _collect_leaves(module, nn, snn)
    builder = _Builder(shape, dt, strict, torch, nn, snn)
    if not plain:
        builder.g.assume(_check_chain(module, leaves, shape, torch, nn, snn))
    for qualname, layer in leaves:
        builder.add_layer(qualname, layer)
    return builder.finish()


def load_snntorch_reference(spec: str, weights: str | None = None) -> "torch.nn.Module":
    """Load the module named by ``spec``: ``path/to/file.py:factory`` or ``package.module:factory``.

    ``factory`` (dots allowed: ``Net.build``) is either an ``nn.Module`` instance or a callable
    taking no arguments that returns one (a function, or the module class itself). ``weights``, if
    given, is a state-dict file read with ``torch.load(..., weights_only=True)`` (a dict holding
    the state dict under ``"state_dict"`` or ``"model_state_dict"`` is also accepted) and loaded
    with ``strict=True``. The module is returned in eval mode.
    """
    torch, nn, _ = _libs()
    text = str(spec)
    source, sep, attr = text.rpartition(":")
    if not sep or not source or not attr:
        raise NeuroCompileError(
            "expected path/to/file.py:factory or package.module:factory", file=text)
    is_file = source.endswith(".py") or "/" in source or "\\" in source
    if not is_file and not _importable(source) and Path(source.replace(".", "/") + ".py").is_file():
        source = source.replace(".", "/") + ".py"  # a file under the current directory
        is_file = True
    where = source
    if is_file:
        path = Path(source)
        if not path.is_file():
            raise NeuroCompileError("no such file", file=source)
        pymod = _import_file(path)
    else:
        try:
            pymod = importlib.import_module(source)
        except ImportError as err:
            raise NeuroCompileError(f"cannot import module '{source}': {err}", file=text) from err
        except Exception as err:  # the user's module raised while importing
            raise NeuroCompileError(
                f"importing '{source}' failed: {type(err).__name__}: {err}", file=text) from err
        where = getattr(pymod, "__file__", None) or source
    obj: Any = pymod
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise NeuroCompileError(f"has no attribute '{attr}'", file=str(where))
        obj = getattr(obj, part)
    if isinstance(obj, nn.Module):
        net = obj
    elif callable(obj):
        try:
            net = obj()
        except Exception as err:
            raise NeuroCompileError(
                f"calling '{attr}()' failed: {type(err).__name__}: {err}", file=str(where)) from err
        if not isinstance(net, nn.Module):
            raise NeuroCompileError(
                f"'{attr}()' returned {type(net).__name__}, not a torch.nn.Module", file=str(where))
    else:
        raise NeuroCompileError(
            f"'{attr}' is a {type(obj).__name__}, neither an nn.Module nor a function returning one",
            file=str(where))
    if weights is not None:
        wpath = Path(weights)
        if not wpath.is_file():
            raise NeuroCompileError("no such weights file", file=str(weights))
        try:
            state = torch.load(str(wpath), map_location="cpu", weights_only=True)
        except Exception as err:
            raise NeuroCompileError(
                f"cannot read a state dict (torch.load, weights_only=True): {type(err).__name__}: {err}",
                file=str(weights)) from err
        if isinstance(state, dict):
            for key in ("state_dict", "model_state_dict"):
                if isinstance(state.get(key), dict):
                    state = state[key]
                    break
        if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
            raise NeuroCompileError(
                f"holds a {type(state).__name__}, not a state dict of tensors", file=str(weights))
        try:
            net.load_state_dict(state, strict=True)
        except Exception as err:
            msg = " ".join(str(err).split())
            raise NeuroCompileError(f"does not fit the model: {msg}", file=str(weights)) from err
    net.eval()
    return net


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name.split(".")[0]) is not None
    except (ImportError, ValueError):
        return False


def _import_file(path: Path):
    """Execute a Python file as a fresh module (its directory importable while it loads)."""
    name = f"_neurocompile_user_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, str(path))
    if spec is None or spec.loader is None:
        raise NeuroCompileError("cannot load this file as Python", file=str(path))
    pymod = importlib.util.module_from_spec(spec)
    folder = str(path.resolve().parent)
    sys.path.insert(0, folder)
    sys.modules[name] = pymod
    try:
        spec.loader.exec_module(pymod)
    except Exception as err:
        sys.modules.pop(name, None)
        raise NeuroCompileError(
            f"running the file failed: {type(err).__name__}: {err}", file=str(path)) from err
    finally:
        try:
            sys.path.remove(folder)
        except ValueError:
            pass
    return pymod


# ------------------------------------------------------------------------------------------
# collecting the layers
# ------------------------------------------------------------------------------------------
def _neuron_types(snn) -> dict:
    return {snn.Leaky: "Leaky", snn.Synaptic: "Synaptic", snn.RLeaky: "RLeaky",
            snn.RSynaptic: "RSynaptic"}


def _is_skipped(layer, nn) -> bool:
    return isinstance(layer, (nn.Identity, nn.modules.dropout._DropoutNd))


def _is_known(layer, nn, snn) -> bool:
    if type(layer) in _neuron_types(snn):
        return True
    return isinstance(layer, (nn.Linear, nn.Conv2d, nn.AvgPool2d, nn.MaxPool2d, nn.Flatten)) \
        or _is_skipped(layer, nn)


def _collect_leaves(module, nn, snn) -> tuple[list[tuple[str, Any]], bool]:
    """Leaf layers in definition order, and whether every container is an ``nn.Sequential``
    (then the chain is what the containers' forward does, no check needed)."""
    if _is_known(module, nn, snn):
        return [(type(module).__name__.lower(), module)], True
    leaves: list[tuple[str, Any]] = []
    plain = True
    seen: dict[int, str] = {}

    def walk(mod, prefix):
        nonlocal plain
        if not (isinstance(mod, nn.Sequential) and type(mod).forward is nn.Sequential.forward):
            plain = False
        own = [n for n, _ in mod.named_parameters(recurse=False)] + \
              [n for n, _ in mod.named_buffers(recurse=False)]
        if own:
            raise UnsupportedError(
                f"{type(mod).__name__} holds its own tensors ({', '.join(own)}) that its forward may "
                "use; only layers listed in neurocompile.models.snntorch_import are read",
                node=prefix or type(mod).__name__)
        for name, child in mod._modules.items():
            qual = f"{prefix}.{name}" if prefix else name
            if child is None:
                continue
            if id(child) in seen:
                raise UnsupportedError(
                    f"the same {type(child).__name__} object is used twice (as '{seen[id(child)]}' "
                    "and here); shared layers are not supported", node=qual)
            seen[id(child)] = qual
            if _is_known(child, nn, snn):
                leaves.append((qual, child))
            elif isinstance(child, snn.SpikingNeuron) or isinstance(child, nn.Module) and not list(child.children()):
                raise UnsupportedError(
                    f"layer type {type(child).__module__}.{type(child).__name__} is not supported "
                    "(supported: nn.Linear, nn.Conv2d, nn.AvgPool2d, nn.MaxPool2d, nn.Flatten, "
                    "nn.Identity, nn.Dropout, snn.Leaky, snn.Synaptic, snn.RLeaky, snn.RSynaptic)",
                    node=qual)
            else:
                walk(child, qual)

    walk(module, "")
    if not leaves:
        raise UnsupportedError(f"{type(module).__name__} has no layers")
    return leaves, plain


# ------------------------------------------------------------------------------------------
# checking that a class-based forward is a plain chain
# ------------------------------------------------------------------------------------------
def _same(torch, a, b) -> bool:
    if a is b:
        return True
    if not (torch.is_tensor(a) and torch.is_tensor(b)) or a.shape != b.shape:
        return False
    return bool(torch.equal(a.detach().double(), b.detach().double()))


def _check_chain(module, leaves, shape, torch, nn, snn) -> str:
    """Run ``module``'s forward with hooks and verify that it is the chain of ``leaves``.

    Returns a sentence describing the input convention found (recorded as an assumption).
    """
    cls = type(module).__name__
    neuron_types = _neuron_types(snn)
    used = [i for i, (_, layer) in enumerate(leaves) if not _is_skipped(layer, nn)]
    calls: list[dict] = []
    hooks = []
    saved_state = {}
    for i, (_, layer) in enumerate(leaves):
        kind = neuron_types.get(type(layer))
        if kind:
            saved_state[i] = {n: getattr(layer, n) for n in _STATE_NAMES[kind]}
        if _is_skipped(layer, nn):
            continue

        def pre(mod, args, kwargs, i=i, kind=kind):
            copy = lambda v: v.detach().clone() if torch.is_tensor(v) else v  # noqa: E731
            rec = {"leaf": i, "args": tuple(copy(a) for a in args),
                   "kwargs": {k: copy(v) for k, v in kwargs.items()}}
            if kind:
                rec["pre"] = {n: getattr(mod, n).detach().clone() for n in _STATE_NAMES[kind]}
            calls.append(rec)

        def post(mod, args, kwargs, output, i=i, kind=kind):
            rec = calls[-1]
            main = output[0] if isinstance(output, tuple) else output
            rec["out"] = main.detach().clone() if torch.is_tensor(main) else main
            if kind:
                rec["post"] = {n: getattr(mod, n).detach().clone() for n in _STATE_NAMES[kind]}

        hooks.append(layer.register_forward_pre_hook(pre, with_kwargs=True))
        hooks.append(layer.register_forward_hook(post, with_kwargs=True))

    dtype = next((p.dtype for p in module.parameters() if p.is_floating_point()), torch.float32)
    gen = torch.Generator().manual_seed(0)
    attempts = [torch.randn((2,) + shape, generator=gen, dtype=torch.float64).to(dtype) * 2,
                torch.randn((3, 2) + shape, generator=gen, dtype=torch.float64).to(dtype) * 2]
    was_training = module.training
    module.eval()
    errors = []
    try:
        for x in attempts:
            calls.clear()
            for i, (_, layer) in enumerate(leaves):  # every run starts from empty state
                for n in saved_state.get(i, {}):
                    setattr(layer, n, torch.zeros(0, dtype=dtype))
            try:
                with torch.no_grad():
                    module(x)
            except Exception as err:  # the user's forward does not take this input
                errors.append(f"forward(x of shape {tuple(x.shape)}) raised {type(err).__name__}: {err}")
                continue
            try:
                return _analyse(calls, leaves, used, x, cls, torch, neuron_types)
            except UnsupportedError as err:
                errors.append(err)
        first = next((e for e in errors if isinstance(e, UnsupportedError)), None)
        if first is not None:
            raise first
        raise UnsupportedError(
            f"could not run {cls}.forward on one input of shape (batch, *input_shape) or "
            f"(T, batch, *input_shape) to check that it is a plain chain of its layers: "
            + "; ".join(str(e) for e in errors), node=cls)
    finally:
        for h in hooks:
            h.remove()
        for i, states in saved_state.items():
            for n, v in states.items():
                setattr(leaves[i][1], n, v)
        module.train(was_training)


def _analyse(calls, leaves, used, x, cls, torch, neuron_types) -> str:
    names = [q for q, _ in leaves]
    seq = [c["leaf"] for c in calls]
    n = len(used)
    if not seq or len(seq) % n or any(seq[k] != used[k % n] for k in range(len(seq))):
        got = ", ".join(names[i] for i in seq[:3 * n]) + (" ..." if len(seq) > 3 * n else "")
        raise UnsupportedError(
            f"{cls}.forward is not a plain chain of its layers: it calls [{got}], expected "
            f"[{', '.join(names[i] for i in used)}] once each per step in definition order", node=cls)
    rounds = len(seq) // n
    convention = None
    last_post: dict[int, dict] = {}
    for k, call in enumerate(calls):
        i, pos, r = call["leaf"], k % n, k // n
        layer = leaves[i][1]
        bound = inspect.signature(type(layer).forward).bind(layer, *call["args"], **call["kwargs"])
        args = dict(bound.arguments)
        args.pop("self", None)
        inp = next(iter(args.values()), None)
        if pos == 0:
            if _same(torch, inp, x):
                this = "static"
            elif x.shape[0] > r and _same(torch, inp, x[r]):
                this = "sequence"
            else:
                raise UnsupportedError(
                    f"{cls}.forward does not feed its input unchanged to its first layer "
                    f"'{names[i]}'", node=names[i])
            if convention not in (None, this):
                raise UnsupportedError(f"{cls}.forward feeds its first layer inconsistently", node=names[i])
            convention = this
        else:
            prev = calls[k - 1]
            if not _same(torch, inp, prev["out"]):
                raise UnsupportedError(
                    f"{cls}.forward is not a plain chain: the input of '{names[i]}' is not the "
                    f"output (spikes, for a neuron) of '{names[prev['leaf']]}'", node=names[i])
        kind = neuron_types.get(type(layer))
        if kind:
            for sname in _STATE_NAMES[kind]:
                given = args.get(sname)
                eff = given if given is not None else call["pre"][sname]
                if not torch.is_tensor(eff) or eff.shape != inp.shape:
                    eff = torch.zeros_like(inp)
                expect = last_post[i][sname] if i in last_post else torch.zeros_like(inp)
                if not _same(torch, eff, expect):
                    raise UnsupportedError(
                        f"{cls}.forward gives '{names[i]}' a '{sname}' state that is not "
                        + ("zero at the first step" if i not in last_post else
                           "the layer's own state from the previous step"), node=names[i])
            last_post[i] = call["post"]
    if rounds == 1:
        return (f"{cls}.forward runs one time step per call (checked on one call); the graph runs "
                "one step per input step")
    if convention == "static":
        return (f"{cls}.forward feeds the same input to its first layer at each of its {rounds} "
                "steps; the graph takes one input per step (repeat the sample over time)")
    return (f"{cls}.forward takes a (T, batch, ...) input and steps through it; the graph runs one "
            "step per input step")


# ------------------------------------------------------------------------------------------
# building the graph
# ------------------------------------------------------------------------------------------
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

    def _neuron(self, name, qual, layer, kind) -> None:
        reset, reset_delay, thr, refractory = self._check_neuron(qual, layer, kind)
        spiking = dict(v_threshold=thr, reset=reset, reset_delay=reset_delay, refractory=refractory,
                       compare="gt")
        beta = self._decay(layer.beta, "beta", qual)
        dt = self.dt
        synaptic = kind in ("Synaptic", "RSynaptic")
        if synaptic:
            alpha = self._decay(layer.alpha, "alpha", qual)
            if np.any(alpha == 1.0) or np.any(beta == 1.0):
                raise UnsupportedError(
                    f"snn.{kind} with alpha or beta equal to 1 (no decay) has no CubaLIF equivalent "
                    "(infinite time constant)", node=qual)
            tau_syn = dt / (1.0 - alpha)
            tau_mem = dt / (1.0 - beta)
            node = N.CubaLIF(tau_syn=tau_syn, tau_mem=tau_mem, r=tau_mem / dt, w_in=tau_syn / dt,
                             **spiking)
        elif np.all(beta == 1.0):
            node = N.IF(r=1.0, **spiking)
        elif np.any(beta == 1.0):
            raise UnsupportedError(
                f"snn.{kind} mixes beta = 1 (no leak) and beta < 1 across neurons; the graph has "
                "no neuron with a per-neuron choice between IF and LIF", node=qual)
        else:
            tau = dt / (1.0 - beta)
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
