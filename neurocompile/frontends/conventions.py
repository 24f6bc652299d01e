"""Exporter conventions: how each framework's NIR exporter really writes its neurons.

NIR states continuous-time equations, but every exporter writes its own framework's discrete
update into those fields, in its own time unit. A *convention* is a named preset that says which
update a file holds and maps it onto the graph's explicit fields (``dt``, ``discretization``,
``reset``, ``reset_delay``, ``compare``, ``r``, ``w_in``, Delay nodes). Pick one with
``--convention NAME`` (compile, inspect, validate) or ``convention=`` in the API; without one the
reader looks at the file (metadata ``neurocompile.convention``, ``exporter``/``framework`` keys,
node names that only one exporter writes) and otherwise uses ``nir``. The convention used is always
recorded as an assumption. Where a framework's update has no exact counterpart in the graph, the
preset raises :class:`UnsupportedError` naming the gap.

Every preset was checked against that framework's own forward pass on networks written by its own
exporter (``tests/frontends/conventions/``; table in ``docs/exporters.md``).

``--dt`` with a convention means the time step the exporter was given (``dt=`` of norse's or
spyx's ``to_nir``, a rockpool module's ``dt``); its default is the exporter's default.
"""
from __future__ import annotations

import dataclasses
import re
from typing import ClassVar

import numpy as np

from neurocompile.errors import NeuroCompileError, UnsupportedError
from neurocompile.ir import nodes as N
from neurocompile.ir.graph import Graph

META_KEY = "neurocompile.convention"


@dataclasses.dataclass(frozen=True)
class Convention:
    """Base preset: NIR's own equations, read as :mod:`neurocompile.frontends.nir` documents."""

    name: ClassVar[str] = "nir"
    framework: ClassVar[str] = "NIR 1.0 (the specification)"
    dt: float | None = None              # the exporter's time step (None: NIR reader's default)
    time_unit: str = "seconds"           # what the file's tau values are in
    discretization: str | None = None
    reset: str | None = None
    reset_delay: bool = False
    compare: str = "gt"
    multi_spike: bool = False            # the framework may emit several spikes per step

    def summary(self, dt: float) -> str:
        return (f"convention '{self.name}' ({self.framework}): dt = {dt:g} s, "
                f"discretization {self.discretization}, reset {self.reset!r}"
                f"{' one step late' if self.reset_delay else ''}, spike when v "
                f"{'>' if self.compare == 'gt' else '>='} v_threshold; set it with --convention")

    # -- applying -------------------------------------------------------------------------
    def apply(self, g: Graph, dt: float | None) -> None:
        """Rewrite the freshly read graph ``g`` (every NIR field as written) in place."""
        dt = float(dt if dt is not None else self.dt)
        if not dt > 0 or not np.isfinite(dt):
            raise NeuroCompileError(f"dt must be a positive number, got {dt}")
        g.dt = dt
        g.discretization = self.discretization
        for name in list(g.nodes):
            node = g.nodes[name]
            if self.time_unit == "steps":
                for attr in ("tau", "tau_mem", "tau_syn"):
                    if getattr(node, attr, None) is not None:
                        setattr(node, attr, np.asarray(getattr(node, attr), dtype=np.float64) * dt)
            elif self.time_unit == "dt*seconds":
                for attr in ("tau", "tau_mem", "tau_syn"):
                    if getattr(node, attr, None) is not None:
                        setattr(node, attr, np.asarray(getattr(node, attr), dtype=np.float64) / dt)
            self.node(g, name, node)
            if node.has_reset:
                node.reset, node.reset_delay, node.compare = self.reset, self.reset_delay, self.compare
                node.__dict__["_from_meta"] = True
        g.assume(self.summary(dt))
        if self.multi_spike:
            g.assume(f"convention '{self.name}': the framework's spike function can emit several spikes "
                     f"in one step (floor(v/threshold)); the graph emits one, so the two agree while no "
                     f"neuron reaches 2*threshold within a step (exact for a single-spike function)")

    def node(self, g: Graph, name: str, node: N.Node) -> None:
        """Preset-specific rewriting of one node (time constants already in seconds)."""

    # -- helpers --------------------------------------------------------------------------
    @staticmethod
    def _decay(g: Graph, tau) -> np.ndarray:
        return N.decay_factor(np.asarray(tau, dtype=np.float64), g.dt, g.discretization)

    @staticmethod
    def _delay_after(g: Graph, name: str) -> None:
        """Insert a one-step Delay between ``name`` and all its consumers."""
        dname = f"{name}.step_delay"
        succ = g.successors(name)
        g.edges = [e for e in g.edges if e[0] != name]
        d = N.Delay(delay=np.array(1.0))
        d.__dict__["_in_steps"] = True
        g.add(dname, d)
        g.connect(name, dname)
        for s in succ:
            g.connect(dname, s)


@dataclasses.dataclass(frozen=True)
class NIRConvention(Convention):
    """NIR's ODEs as the NIR paper discretises them: forward Euler, ``dt = 1e-4 s``, reset to
    ``v_reset`` within the spiking step, ``r`` and ``w_in`` as written. Nothing is rewritten."""

    name: ClassVar[str] = "nir"

    def apply(self, g: Graph, dt: float | None) -> None:  # the reader's defaults apply
        g.assume("convention 'nir' (NIR's own equations); if the file came from a framework's "
                 "exporter, name it with --convention snntorch|norse|sinabs|rockpool|spyx")


@dataclasses.dataclass(frozen=True)
class SnnTorchConvention(Convention):
    """snnTorch 0.9/1.0 ``export_to_nir``.

    snnTorch's update (``Leaky``): ``m[t] = beta*m[t-1] + x[t] - thr*H(m[t-1] - thr)``,
    ``s[t] = H(m[t] - thr)`` (defaults ``reset_mechanism="subtract"``, ``reset_delay=True``);
    ``Synaptic``: ``syn = alpha*syn + x``, ``m = beta*m + syn`` with the same reset. The exporter
    writes ``tau = dt/(1-beta)``, ``r = tau/dt``, ``tau_syn = dt/(1-alpha)``, ``w_in = tau_syn/dt``
    with ``dt = 1e-4`` hard-coded, so with forward Euler ``beta = 1 - dt/tau`` and
    ``(1-beta)*r = 1``: graph fields as written, ``reset="subtract"``, ``reset_delay=True``,
    ``compare="gt"``. NIR cannot say which reset mechanism a layer used: the preset takes
    snnTorch's default; a layer trained with ``reset_mechanism="zero"`` needs the NIR convention's
    ``--reset zero`` instead (or a direct import of the module).
    """

    name: ClassVar[str] = "snntorch"
    framework: ClassVar[str] = "snnTorch export_to_nir"
    dt: float = 1e-4
    discretization: str = "euler"
    reset: str = "subtract"
    reset_delay: bool = True

    def apply(self, g: Graph, dt: float | None) -> None:
        super().apply(g, dt)
        self._fold_recurrent_bias(g)

    @staticmethod
    def _fold_recurrent_bias(g: Graph) -> None:
        """snnTorch's RLeaky/RSynaptic add ``rec(s[t-1])`` with ``s[-1] = 0``: the recurrent layer's
        bias enters at step 0 too, where the graph's recurrent edge delivers zero. The bias moves to
        the feed-forward Affine in front of the neuron (the direct importer does the same)."""
        for src, dst in sorted(g.recurrent_edges()):
            rec = g.nodes[src]
            if not isinstance(rec, N.Affine) or not np.any(rec.bias):
                continue
            ff = [p for p in g.predecessors(dst) if (p, dst) not in g.recurrent_edges()]
            while len(ff) == 1 and isinstance(g.nodes[ff[0]], N.Identity) and len(g.successors(ff[0])) == 1:
                ff = g.predecessors(ff[0])
            if len(ff) == 1 and isinstance(g.nodes[ff[0]], N.Affine) and len(g.successors(ff[0])) == 1:
                g.nodes[ff[0]].bias = np.asarray(g.nodes[ff[0]].bias, dtype=np.float64) + rec.bias
                g.nodes[src] = N.Linear(weight=rec.weight)
                g.assume(f"'{src}': the recurrent layer's bias (entering at every step, step 0 included, in "
                         f"snnTorch) is added to the bias of '{ff[0]}'")


@dataclasses.dataclass(frozen=True)
class NorseConvention(Convention):
    """Norse 1.1 ``norse.torch.utils.export_nir.to_nir(module, sample, dt=1e-3)``.

    Norse's updates (``norse/torch/functional``), ``dt`` the step given to the exporter:

    * ``LIFBoxCell`` -> NIR ``LIF``: ``v[t] = v + dt*tau_mem_inv*((v_leak - v) + x[t])``,
      ``z = H(v[t] - v_th)``, then ``v = v_reset`` where ``z`` (within the step);
    * ``LIFCell`` -> NIR ``CubaLIF``: ``j = i[t-1] + x[t]`` (the input enters the current with gain
      1), ``v[t] = v + dt*tau_mem_inv*((v_leak - v) + j)``, spike and reset as above, then the stored
      current ``i[t] = (1 - dt*tau_syn_inv)*j``;
    * ``LIBoxCell`` -> ``LI`` (as LIFBox without spikes); ``IAFCell`` -> ``IF``: ``v = v + x``.

    The exporter writes ``tau = dt/tau_mem_inv``, i.e. ``dt*tau``: the real time constant is
    ``tau_file/dt`` (time unit ``dt*seconds``). Mapped: forward Euler at ``dt``, ``tau`` divided by
    ``dt``, ``r`` as written (1), CubaLIF ``w_in = tau_syn/dt`` so that ``(1-alpha)*w_in = 1``
    (the graph's current is then norse's ``j``; the graph's ``i`` state is norse's ``i`` divided by
    ``alpha``), ``reset="zero"`` within the step, ``compare="gt"`` (``heaviside`` is ``x > 0``).
    """

    name: ClassVar[str] = "norse"
    framework: ClassVar[str] = "norse export_nir.to_nir"
    dt: float = 1e-3
    time_unit: str = "dt*seconds"
    discretization: str = "euler"
    reset: str = "zero"

    def node(self, g, name, node):
        if isinstance(node, (N.CubaLIF, N.CubaLI)):
            node.w_in = np.asarray(node.tau_syn, dtype=np.float64) / g.dt


@dataclasses.dataclass(frozen=True)
class SinabsConvention(Convention):
    """sinabs 3.1 ``sinabs.to_nir`` (time constants in steps, no ``dt``).

    sinabs' updates (``sinabs/layers/functional/lif.py``), ``norm_input=True`` (default):
    ``LIF``: ``v[t] = a*v[t-1] + (1-a)*x[t]`` with ``a = exp(-1/tau_mem)``; ``IAF``:
    ``v[t] = v[t-1] + x[t]``; ``ExpLeak`` (NIR ``LI``) the LIF without spikes; spikes
    ``MultiSpike`` (default: ``floor(v/thr)`` spikes when ``v > 0``) or ``SingleSpike``
    (``v - thr >= 0``), reset ``MembraneSubtract`` (``v -= spikes*thr``, within the step).

    The exporter writes ``tau = tau_mem`` in steps and ``r = 1``. Mapped: time unit ``steps``
    (``tau_graph = tau_file*dt``, ``dt`` default 1 step = 1.0), the ``exact`` rule
    (``beta = exp(-dt/tau)``), ``reset="subtract"`` within the step, ``compare="ge"``. ``MultiSpike``
    agrees while no neuron reaches ``2*thr`` in one step; ``norm_input=False`` is not recorded in the
    file and would need ``r = 1/(1-a)``.
    """

    name: ClassVar[str] = "sinabs"
    framework: ClassVar[str] = "sinabs to_nir"
    dt: float = 1.0
    time_unit: str = "steps"
    discretization: str = "exact"
    reset: str = "subtract"
    compare: str = "ge"
    multi_spike: bool = True


@dataclasses.dataclass(frozen=True)
class RockpoolConvention(Convention):
    """Rockpool 3.1 ``rockpool.nn.modules.torch.nir.to_nir`` (``LIFTorch``, ``LinearTorch``).

    Rockpool's ``LIFTorch`` update per step (``lif_torch.py``), ``a = exp(-dt/tau_mem)``,
    ``b = exp(-dt/tau_syn)``: ``isyn = b*(isyn + x[t])``, ``v = a*v + isyn + bias``,
    ``spikes = floor(v/thr)`` where ``v >= thr`` (up to ``max_spikes_per_dt``, default 2**16),
    ``v -= spikes*thr``. The exporter writes ``tau_mem``, ``tau_syn`` in seconds,
    ``r = tau_mem*a/dt`` and no ``w_in``, and (default sample data) a leading batch dimension of
    1 in the Input/Output types. Mapped: the ``exact`` rule at the module's ``dt`` (default 1e-3),
    ``w_in = 1/(1-b)`` (the graph's current is rockpool's ``isyn + x`` before the decay) and
    ``r = b/(1-a)`` (so ``(1-a)*r*i`` is rockpool's decayed ``isyn``), ``reset="subtract"`` within the
    step, ``compare="ge"``. ``LIFNeuronTorch`` (NIR ``LIF``): ``v = a*v + x``: ``r = 1/(1-a)``.
    ``ExpSynTorch`` (NIR ``LI``): ``i = b*(i + x)``: ``r = b/(1-b)``.
    """

    name: ClassVar[str] = "rockpool"
    framework: ClassVar[str] = "rockpool to_nir"
    dt: float = 1e-3
    discretization: str = "exact"
    reset: str = "subtract"
    compare: str = "ge"
    multi_spike: bool = True

    def node(self, g, name, node):
        if isinstance(node, N.CubaLIF):
            a, b = self._decay(g, node.tau_mem), self._decay(g, node.tau_syn)
            node.w_in = 1.0 / (1.0 - b)
            node.r = b / (1.0 - a)
        elif isinstance(node, N.LIF):
            node.r = 1.0 / (1.0 - self._decay(g, node.tau))
        elif isinstance(node, N.LI):
            b = self._decay(g, node.tau)
            node.r = b / (1.0 - b)


@dataclasses.dataclass(frozen=True)
class SpyxConvention(Convention):
    """spyx 1.0 ``spyx.nir.to_nir(model, input_shape, output_shape, dt=1)``.

    spyx's updates (``spyx/nn.py``): ``LIF``: ``s[t] = H(V[t-1] - thr)``,
    ``V[t] = beta*V[t-1] + x[t] - s[t]*thr``; ``IF`` the same with ``beta = 1``; ``PSU_LIF``
    (NIR ``LI`` + ``Threshold``): ``V = beta*V + x``, ``s = V > thr``. The spike of step ``t`` is
    computed from the membrane of step ``t-1``. The exporter writes ``tau = dt/(1-beta)`` and
    ``r = beta`` (not the input gain, which is 1). Mapped: forward Euler at ``dt`` (default 1),
    ``r = tau/dt`` (so ``(1-beta)*r = 1``), ``reset="subtract"`` one step late
    (``reset_delay=True``: ``v[t] = beta*v[t-1] + x[t] - thr*s[t-1]`` with ``s[t] = v[t] > thr``),
    and a one-step Delay after each spiking layer (spyx emits ``s[t-1]`` at step ``t``).
    ``CuBaLIF`` subtracts ``beta*thr`` (its reset is applied before the membrane decay), which the
    graph's reset cannot express: refused.
    """

    name: ClassVar[str] = "spyx"
    framework: ClassVar[str] = "spyx nir.to_nir"
    dt: float = 1.0
    discretization: str = "euler"
    reset: str = "subtract"
    reset_delay: bool = True

    def node(self, g, name, node):
        if isinstance(node, N.CubaLIF):
            raise UnsupportedError(
                "spyx CuBaLIF resets by subtracting beta*threshold before the membrane decay; the "
                "graph's subtract reset removes threshold itself, so this update is not expressible "
                "(use spyx LIF, or export the layer as LIF)", node=name)
        if isinstance(node, (N.LIF, N.LI)):
            node.r = np.asarray(node.tau, dtype=np.float64) / g.dt
        if isinstance(node, (N.LIF, N.IF)):
            if isinstance(node, N.IF):
                node.r = np.ones_like(np.asarray(node.r, dtype=np.float64))
            self._delay_after(g, name)


CONVENTIONS: dict[str, Convention] = {c.name: c() for c in (
    NIRConvention, SnnTorchConvention, NorseConvention, SinabsConvention, RockpoolConvention,
    SpyxConvention)}


def get_convention(name: str) -> Convention:
    key = str(name).lower()
    if key not in CONVENTIONS:
        raise NeuroCompileError(f"unknown convention '{name}' (known: {', '.join(CONVENTIONS)})")
    return CONVENTIONS[key]


_ROCKPOOL = re.compile(r".*_(LIFTorch|LinearTorch|ExpSynTorch|LIFNeuronTorch)$")
_SPYX = re.compile(r"layer_\d+(_threshold)?$")


def detect(metadata: dict, node_names: list[str]) -> tuple[str | None, str]:
    """The convention a file reveals, and why (``(None, "")`` when it reveals none)."""
    for key in (META_KEY, "exporter", "framework", "source", "generator"):
        v = metadata.get(key)
        if isinstance(v, str):
            low = v.lower()
            for name in CONVENTIONS:
                if low == name or low.startswith(name + " ") or low.startswith(name + "-"):
                    return name, f"metadata {key}={v!r}"
    inner = [n.split(".")[-1] for n in node_names if n.split(".")[-1] not in ("input", "output")]
    if inner and any(_ROCKPOOL.match(n) for n in inner):
        return "rockpool", "node names like '*_LIFTorch' (rockpool's exporter)"
    if inner and all(_SPYX.match(n) for n in inner):
        return "spyx", "node names 'layer_<i>' (spyx's exporter)"
    return None, ""
