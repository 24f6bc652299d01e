"""Read lava-dl netx network files (``.net``, HDF5; SLAYER's export format).

A netx file holds ``layer/0``, ``layer/1``, ... (ordered by their integer index), each with a
``type`` (``input``, ``conv``, ``flatten``, ``dense``), a ``shape`` (C, H, W or N), synapse data
(``weight``, optional ``delay``, ``bias``; conv: ``stride``, ``padding``, ``dilation``,
``groups``) and a ``neuron`` group whose parameters are already Loihi integers. The semantics
follow ``lava.lib.dl.netx.hdf5.Network`` (lava-dl 0.6.0), which builds Lava processes:

* ``CUBA``/``LOIHI`` neuron -> Lava ``LIF`` with ``du = iDecay - 1``, ``dv = vDecay``,
  ``vth = vThMant``, ``bias_mant = int(bias)``, ``bias_exp = 6``. Lava decays ``u`` by
  ``du + 1 = iDecay``. ``refDelay`` is *not* used by netx (plain LIF, no refractory period), nor
  here; it is recorded as an assumption when it is not 1. ``gradedSpike`` has no effect on a
  LIF's output (binary).
* Weights are read as ``float -> int`` (truncation) and put through netx's
  ``optimize_weight_bits``: ``w << s``, ``num_weight_bits = 8 - s - n``, ``weight_exp = -s``
  (``s`` from the largest weight, ``n`` the trailing zero bits shared by all weights). Lava's
  Dense then applies its sign-mode truncation; the effective integer weight ``W_eff`` (times
  ``2**weight_exp``) is what reaches ``u``. Conv kernels are used exactly as integers.
* ``delay`` (per output neuron, per input, or a full matrix; clipped to 62 as netx does): a
  spike of step t arrives at ``t + 1 + d``.
* An ``input`` layer with a neuron feeds the external input straight into a LIF (no synapse);
  the graph puts an identity synapse (a 1x1 depthwise conv of weight 1, or an identity matrix
  for flat inputs) in front of it: one step of latency, the same integers. Its ``weight``/
  ``bias`` (netx's unused input transform) are ignored, as netx does.

The graph (dt = 1 step, ``euler``) gets float parameters whose units are the chip's divided by
64: ``v = v_int / 64``, ``i = u_int / 64``, threshold ``vThMant``, weights ``W_eff * 2**weight_exp``,
and per step ``alpha = 1 - iDecay/4096``, ``beta = 1 - vDecay/4096``:

* ``iDecay = 4096`` (u is this step's input): ``LIF(tau = 4096/vDecay, r = 4096/vDecay,
  v_leak = bias * 4096/vDecay)``, i.e. ``v = beta v + x + bias``; with ``vDecay = 0`` too:
  ``IF(r = 1)`` and the bias on the synapse (``Affine``);
* otherwise ``CubaLIF(tau_syn = 4096/iDecay, w_in = 4096/iDecay, tau_mem = 4096/vDecay,
  r = 4096/vDecay, v_leak = bias * 4096/vDecay)``: ``i = alpha i + x``, ``v = beta v + i + bias``.

The float reference is exact up to the chip's rounding (its decays truncate toward zero). The
integers themselves are kept in ``graph.metadata["loihi2_fixed"]`` (group -> ``du``, ``dv``,
``vth``, ``bias``, ``weight_exp``, ``num_weight_bits``, synapse kind), which the Loihi 2 lowering
uses instead of choosing its own (:mod:`neurocompile.targets.loihi2.fixed_params`), so a netx
network compiles bit-exactly to what netx runs on Lava.

Sigma-delta (SDNN) networks
---------------------------
A network whose neurons are ``SDNN`` is built by :func:`build_sdnn_graph`, following netx
(``Network.get_neuron_params`` and the blocks of lava-dl 0.6.0):

* the ``input`` layer's SDNN neuron is Lava's ``Delta`` (``vth = vThMant``, ``spike_exp = 6``,
  ``state_exp = 6``; netx's input transform and bias are not used). netx's ``Input`` block leaves
  its own port unconnected: the input goes to that Delta's ``a_in``, as in lava-dl's own tests.
  The graph gets a ``Delta(vth = vThMant)`` after the Input; on Loihi 2 the host runs it
  (``payload["io"]``: input ``x`` in netx's integers, messages ``delta(64 x)`` with threshold
  ``64 vThMant``, which are Lava's ``(delta(x << 12) with vth << 12) >> 6``). Without an input
  neuron the input is 0/1 spikes (netx's ``input_message_bits = 0``) read by a binary Dense.
* every other SDNN layer is Lava's ``SigmaDelta`` with ReLU (netx passes no activation:
  ``activation`` other than ``relu`` is refused), ``vth = vThMant``, ``bias`` (per neuron or per
  conv channel), ``spike_exp = state_exp = 6`` (Lava scales vth and bias by ``2**12``), no
  ``cum_error``; its Dense gets netx's weights (``optimize_weight_bits``, as for CUBA) and the
  source's graded messages (``messageBits``, default 16). The graph: ``SigmaDelta(vth=vThMant,
  bias=bias, act="relu")`` in units where sigma/act are ``int / 4096`` and messages ``int / 64``,
  so a Dense weight is ``W_eff * 2**weight_exp / 64`` (``/ 4096`` from a 0/1 spike input) and a
  conv kernel ``w / 64``.
* ``sigma_output`` (the last layer of lava-dl's PilotNet SDNN): Lava's ``Sigma``, which sends its
  accumulated sigma every step. Here: ``SigmaDelta(vth=0, act="unit")``, on the chip a
  ``LoihiSigmaDelta`` with ``spike_exp = state_exp = 0``, whose messages are the increments; their
  running sum is netx's output, integer for integer (message sums are how graded outputs are read
  everywhere). Only as the last layer and without bias (netx's Sigma takes none).
* ``spike_exp`` is an argument of ``netx.hdf5.Network``, not stored in the file: 6 (its default)
  is assumed and said so.

* ``conv`` layers (PilotNet SDNN): the integer kernel (graph: ``w / 64``), a per-channel bias;
  dense form keeps them as convolutions in netx SDNN graphs (also when read from the host's
  Delta encoder) and the Loihi 2 program runs them as Lava's Conv with graded input. Should a
  conv be folded into a dense matrix anyway, :mod:`neurocompile.targets.loihi2.fixed_params`
  refuses it, naming the synapse (a Dense cannot hold Lava's Conv exactly).

Mixed SDNN and CUBA layers, ``cum_error``, ``messageBits`` outside 1..24, ``vThMant``/bias beyond
the 24-bit state (``> 2047`` after Lava's ``2**12`` scaling) are refused, naming the layer.

Not supported (an error names the layer): RF neurons, ``dense_rec``, complex dense,
pool/average/concat/convT/unpool (netx cannot run them either), ``dense`` layers without a
neuron, ``iDecay = 0`` (Lava's ``du = -1``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from neurocompile.errors import NeuroCompileError, UnsupportedError
from neurocompile.frontends.hdf5_safe import check_hdf5
from neurocompile.frontends.lfs import refuse_lfs_pointer
from neurocompile.ir import nodes as N
from neurocompile.ir.graph import Graph
from neurocompile.utils.files import open_regular

FIXED_KEY = "loihi2_fixed"
ONE = 4096
MAX_DELAY = 62
VTH_MAX = (1 << 17) - 1
BIAS_MANT = (-(1 << 12), (1 << 12) - 1)
KNOWN = ("input", "conv", "flatten", "dense")


def read_netx(path: str | Path) -> Graph:
    """Load a lava-dl netx ``.net`` file into a Graph (see the module docstring)."""
    path = Path(path)
    refuse_lfs_pointer(path)
    import h5py

    with open_regular(path, "netx file") as fh:
        check_hdf5(fh, str(path), kind="netx")
        fh.seek(0)
        try:
            with h5py.File(fh, "r") as f:
                layers = _read_layers(f, str(path))
        except NeuroCompileError:
            raise
        except Exception as err:  # noqa: BLE001 - h5py fails in many ways on odd files
            msg = " ".join(str(err).split())[:200]
            raise NeuroCompileError(f"cannot read netx (not a lava-dl network file): {msg}", file=str(path)) from None
    try:
        g = build_graph(layers)
    except NeuroCompileError as err:
        raise err.with_context(file=str(path))
    g.metadata["source"] = str(path)
    try:
        g.validate()
    except NeuroCompileError as err:
        raise err.with_context(file=str(path))
    return g


def _value(ds):
    v = ds[()]
    if isinstance(v, bytes):
        return v.decode("ascii", "replace")
    if isinstance(v, np.ndarray) and v.dtype.kind in "SO":
        v = v.reshape(-1)[0]
        return v.decode("ascii", "replace") if isinstance(v, bytes) else str(v)
    return v


def _read_group(g) -> dict:
    import h5py

    out = {}
    for k in g.keys():
        obj = g[k]
        out[k] = _read_group(obj) if isinstance(obj, h5py.Group) else _value(obj)
    return out


def _read_layers(f, file: str) -> list[dict]:
    if "layer" not in f:
        raise NeuroCompileError("no 'layer' group: not a lava-dl netx network file", file=file)
    grp = f["layer"]
    n = len(grp)
    layers = []
    for i in range(n):
        if str(i) not in grp:
            raise NeuroCompileError(f"netx layers must be numbered 0..{n - 1}; layer/{i} is missing", file=file)
        d = _read_group(grp[str(i)])
        d["_name"] = f"layer{i}"
        layers.append(d)
    return layers


# ------------------------------------------------------------------ weights, as netx prepares them
def optimize_weight_bits(weight: np.ndarray) -> tuple[np.ndarray, int, int]:
    """netx's weight preparation (``utils.optimize_weight_bits``): (weights, num_weight_bits,
    weight_exp) as handed to Lava's Dense."""
    w = np.asarray(weight, dtype=np.int64)
    wmax, wmin = int(w.max()), int(w.min())
    if (wmax > 254 and wmin < 0) or (wmin < -256 and wmax > 0):
        w = np.clip(w, -256, 254)
        wmax, wmin = int(w.max()), int(w.min())
    if wmax < 0:
        scale, signed = -256 / wmin, 0
    elif wmin >= 0:
        if wmax == 0:
            return w, 8, 0
        scale, signed = 255 / wmax, 0
    else:
        scale, signed = min(127 / wmax, -128 / wmin), 1
    scale_bits = int(np.floor(np.log2(scale))) + signed
    n = 8
    while n > 0 and np.any(w % (1 << n)):
        n -= 1
    n -= signed
    nwb = 8 - scale_bits - n
    return (w << scale_bits) if scale_bits >= 0 else (w >> -scale_bits), int(nwb), int(-scale_bits)


def dense_effective(weight: np.ndarray, name: str) -> tuple[np.ndarray, int, int]:
    """(W_eff, weight_exp, num_weight_bits): the integer weights Lava's fixed_pt Dense really uses
    for netx's prepared weights (sign mode, clip, low bits dropped; the rule of
    ``LoihiDense.effective_weights``, restated: frontends do not import targets)."""
    w, nwb, exp = optimize_weight_bits(weight)
    if not 1 <= nwb <= 8 or not -8 <= exp <= 7:
        raise UnsupportedError(f"netx weights give num_weight_bits={nwb}, weight_exp={exp} (outside Loihi's "
                               f"1..8 and -8..7)", node=name)
    mode = "excitatory" if w.min() >= 0 else ("inhibitory" if w.max() <= 0 else "mixed")
    full = 256
    k = 8 - nwb
    if mode == "mixed":
        lo, hi, k, sign = -full, full - 1, k + 1, 1
    elif mode == "inhibitory":
        lo, hi, sign = -(full - 1), 0, -1
    else:
        lo, hi, sign = 0, full - 1, 1
    m = np.clip(w, lo, hi) * sign
    return ((m >> k) << k) * sign, exp, nwb


# ------------------------------------------------------------------ graph
def _neuron(layer: dict, name: str, bias: np.ndarray | None, size_shape: tuple):
    """(node, fixed-params record, bias-on-synapse) for a layer's neuron."""
    cfg = layer.get("neuron")
    if cfg is None:
        raise UnsupportedError("a netx layer without a neuron (netx's default non-leaky integrator) is not "
                               "supported", node=name)
    kind = str(cfg.get("type", ""))
    if kind not in ("CUBA", "LOIHI"):
        raise UnsupportedError(f"netx neuron type '{kind}' is not supported (CUBA, LOIHI and SDNN only)", node=name)
    i_decay, v_decay, vth = int(cfg["iDecay"]), int(cfg["vDecay"]), int(cfg["vThMant"])
    if not 1 <= i_decay <= ONE:
        raise UnsupportedError(f"iDecay={i_decay}: Lava's du = iDecay - 1 must be 0..4095", node=name)
    if not 0 <= v_decay <= ONE - 1:
        raise UnsupportedError(f"vDecay={v_decay}: Loihi's dv must be 0..4095", node=name)
    if not 0 < vth <= VTH_MAX:
        raise UnsupportedError(f"vThMant={vth}: Loihi's vth must be 1..{VTH_MAX}", node=name)
    b = np.zeros(1) if bias is None else np.asarray(bias, dtype=np.float64)
    if b.size and (b.min() < BIAS_MANT[0] or b.max() > BIAS_MANT[1]):
        raise UnsupportedError(f"bias {b.min():.0f}..{b.max():.0f} outside Loihi's 13-bit bias_mant", node=name)
    common = dict(v_threshold=float(vth), v_reset=0.0, reset="zero", reset_delay=False, compare="gt",
                  refractory=0)
    bias_on_syn = False
    if i_decay == ONE and v_decay == 0:
        node = N.IF(r=1.0, **common)
        bias_on_syn = True
    elif v_decay == 0:
        raise UnsupportedError(f"vDecay=0 with iDecay={i_decay} < 4096 (a non-leaky membrane fed by a decaying "
                               f"current) has no float graph form", node=name)
    elif i_decay == ONE:
        k = ONE / v_decay
        node = N.LIF(tau=k, r=k, v_leak=_bias_shape(b, size_shape) * k, **common)
    else:
        ks, km = ONE / i_decay, ONE / v_decay
        node = N.CubaLIF(tau_syn=ks, tau_mem=km, w_in=ks, r=km, v_leak=_bias_shape(b, size_shape) * km, **common)
    rec = {"du": i_decay - 1, "dv": v_decay, "vth": vth,
           "bias": [int(x) for x in np.ravel(b)] if bias is not None else [], "bias_exp": 6,
           "ref_delay": int(cfg.get("refDelay", 1))}
    return node, rec, bias_on_syn


def _bias_shape(b: np.ndarray, shape: tuple):
    if b.size <= 1:
        return float(b.reshape(-1)[0]) if b.size else 0.0
    if len(shape) == 3 and b.size == shape[0]:
        return b.reshape(-1, 1, 1)
    return b.reshape(shape)


def _int_array(layer: dict, key: str, name: str) -> np.ndarray:
    if key not in layer:
        raise NeuroCompileError(f"netx layer has no '{key}'", node=name)
    v = np.asarray(layer[key])
    if v.dtype.kind not in "iuf" or not np.all(np.isfinite(v)):
        raise NeuroCompileError(f"netx '{key}' must be numeric and finite", node=name)
    return v.astype(np.float64).astype(np.int64)  # netx: float -> int truncates toward zero


def _pair(layer: dict, key: str, default: int) -> tuple[int, int]:
    v = np.ravel(np.asarray(layer.get(key, default), dtype=np.int64))
    return (int(v[0]), int(v[0])) if v.size == 1 else (int(v[0]), int(v[1]))


def build_graph(layers: list[dict]) -> Graph:
    kinds = [(lay["_name"], _neuron_kind(lay)) for lay in layers if _neuron_kind(lay) is not None]
    if any(k == SDNN for _, k in kinds):
        other = next(((n, k) for n, k in kinds if k != SDNN), None)
        if other is not None:
            raise UnsupportedError(f"netx neuron type '{other[1]}' in an SDNN network: a Loihi 2 program here holds "
                                   f"sigma-delta or LIF groups, not both", node=other[0])
        return build_sdnn_graph(layers)
    g = Graph(dt=1.0, discretization="euler")
    fixed: dict[str, dict] = {}
    notes: set[str] = set()
    prev: str | None = None       # the last node (a group, the Input, or a Flatten)
    shape: tuple | None = None    # its per-sample shape
    flat_next = False

    def start(in_shape: tuple) -> str:
        g.add("input", N.Input(shape=tuple(int(s) for s in in_shape)))
        return "input"

    for layer in layers:
        name, kind = layer["_name"], _layer_kind(layer)
        if kind == "input":
            in_shape = tuple(int(s) for s in np.ravel(layer["shape"]))
            if prev is not None:
                raise UnsupportedError("an input layer must come first", node=name)
            prev, shape = start(in_shape), in_shape
            if "neuron" in layer:
                node, rec, _ = _neuron(layer, name, None, shape)
                size = int(np.prod(shape))
                if len(shape) == 3:
                    syn = N.Conv2d(weight=np.ones((shape[0], 1, 1, 1)), bias=0.0, stride=(1, 1), padding=(0, 0),
                                   dilation=(1, 1), groups=shape[0])
                    rec["synapse"] = "conv"
                else:
                    syn = N.Linear(weight=np.eye(size))
                    rec.update(synapse="dense", weight_exp=0, num_weight_bits=8)
                g.add(f"{name}.syn", syn)
                g.add(name, node)
                g.chain(prev, f"{name}.syn", name)
                fixed[name] = rec
                prev = name
                notes.add("a netx input layer with a neuron gets an identity synapse in front (one step of "
                          "latency; netx feeds the input straight into the neuron)")
                if "bias" in layer or "weight" in layer:
                    notes.add("the input layer's weight/bias (netx's input transform) are ignored, as netx does")
            continue
        if kind == "flatten":
            flat_next = True
            continue
        out_shape = tuple(int(s) for s in np.ravel(layer["shape"]))
        if kind == "conv":
            w = _int_array(layer, "weight", name)
            w = w.reshape(w.shape[:4])
            if prev is None:
                raise NeuroCompileError("the input shape of a conv layer is unknown (no input layer)", node=name)
            if len(shape) != 3:
                raise UnsupportedError("a conv layer needs a (C, H, W) input", node=name)
            syn = N.Conv2d(weight=w.astype(np.float64), bias=0.0, stride=_pair(layer, "stride", 1),
                           padding=_pair(layer, "padding", 0), dilation=_pair(layer, "dilation", 1),
                           groups=int(np.ravel(layer.get("groups", 1))[0]))
            if "delay" in layer:
                raise UnsupportedError("delays on conv layers are not supported", node=name)
            bias = _int_array(layer, "bias", name) if "bias" in layer else None
            node, rec, on_syn = _neuron(layer, name, bias, out_shape)
            if on_syn and bias is not None:
                syn.bias = bias.astype(np.float64)
            rec["synapse"] = "conv"
            g.add(f"{name}.syn", syn)
            g.connect(prev, f"{name}.syn")
            last = f"{name}.syn"
        else:  # dense
            if prev is None:
                n_in0 = int(np.asarray(layer["weight"]).reshape(int(np.prod(out_shape)), -1).shape[1])
                prev, shape = start((n_in0,)), (n_in0,)
            size = int(np.prod(out_shape))
            if "weight_rec" in layer or "weight" not in layer or isinstance(layer["weight"], dict):
                raise UnsupportedError("recurrent/complex dense layers are not supported", node=name)
            w = _int_array(layer, "weight", name).reshape(size, -1)
            n_in = int(np.prod(shape))
            if w.shape[1] != n_in:
                raise NeuroCompileError(f"dense weight {w.shape} does not match its input of {n_in} values",
                                        node=name)
            if len(shape) > 1 or flat_next:
                if len(shape) > 1:
                    g.add(f"{name}.flatten", N.Flatten())
                    g.connect(prev, f"{name}.flatten")
                    prev = f"{name}.flatten"
                flat_next = False
            w_eff, exp, nwb = dense_effective(w, name)
            bias = _int_array(layer, "bias", name) if "bias" in layer else None
            node, rec, on_syn = _neuron(layer, name, bias, (size,))
            weight = w_eff.astype(np.float64) * 2.0 ** exp
            syn = N.Affine(weight=weight, bias=bias.astype(np.float64)) if (on_syn and bias is not None) \
                else N.Linear(weight=weight)
            rec.update(synapse="dense", weight_exp=exp, num_weight_bits=nwb)
            last = _add_dense_synapse(g, layer, name, syn, prev, w.shape, notes)
        g.add(name, node)
        g.connect(last, name)
        if rec["ref_delay"] != 1:
            notes.add("refDelay is ignored, as netx does (Lava's LIF has no refractory period)")
        fixed[name] = rec
        prev, shape = name, out_shape if kind == "conv" else (int(np.prod(out_shape)),)
    if prev is None or prev == "input":
        raise NeuroCompileError("the netx file has no neuron layer")
    g.add("output", N.Output())
    g.connect(prev, "output")
    g.metadata[FIXED_KEY] = {"format": "netx", "groups": fixed}
    g.metadata["netx_layers"] = [lay["_name"] for lay in layers]
    for n in sorted(notes):
        g.assume(n)
    return g




def _layer_kind(layer) -> str:
    """The layer's netx ``type``, refused by name unless this reader knows it."""
    kind = str(layer.get("type", ""))
    if kind not in KNOWN:
        raise UnsupportedError(f"netx layer type '{kind}' is not supported (input, conv, flatten, dense)",
                               node=layer["_name"])
    return kind

def _add_dense_synapse(g, layer, name: str, syn, prev: str, wshape, notes: set) -> str:
    """Add the dense synapse node ``<name>.syn`` after ``prev``, with the layer's delays (per input
    before it, per output after it); return the node the neuron group reads."""
    g.add(f"{name}.syn", syn)
    last = f"{name}.syn"
    if "delay" not in layer:
        g.connect(prev, last)
        return last
    row, col = _delays(layer, name, wshape, notes)
    if col is not None and np.any(col):
        g.add(f"{name}.delay_in", N.Delay(delay=col.astype(np.float64)))
        g.connect(prev, f"{name}.delay_in")
        prev = f"{name}.delay_in"
    g.connect(prev, last)
    if row is not None and np.any(row):
        g.add(f"{name}.delay", N.Delay(delay=row.astype(np.float64)))
        g.connect(last, f"{name}.delay")
        last = f"{name}.delay"
    return last

def _delays(layer: dict, name: str, wshape: tuple, notes: set):
    d = _int_array(layer, "delay", name)
    if d.size and d.min() < 0:
        raise NeuroCompileError("negative synaptic delay", node=name)
    if d.size and d.max() > MAX_DELAY:
        notes.add(f"delays above {MAX_DELAY} steps are clipped to {MAX_DELAY}, as netx does")
        d = np.clip(d, 0, MAX_DELAY)
    n_out, n_in = wshape
    if d.ndim == 0 or d.size == 1:
        return np.full(n_out, int(d.reshape(-1)[0])), None
    if d.ndim == 1:
        if d.size == n_out:
            return d, None
        if d.size == n_in:
            return None, d
    if d.shape == (n_out, n_in):
        if np.all(d == d[:, :1]):
            return d[:, 0], None
        if np.all(d == d[:1, :]):
            return None, d[0]
        raise UnsupportedError("per-synapse delays that are neither per output nor per input neuron have no "
                               "graph form", node=name)
    raise NeuroCompileError(f"delay of shape {d.shape} does not fit weights {wshape}", node=name)


# ------------------------------------------------------------------ sigma-delta (SDNN) networks
SDNN = "SDNN"
SPIKE_EXP = 6        # netx.hdf5.Network(spike_exp=6), the default; not stored in the file
STATE_EXP = 6        # netx passes state_exp=6 to every Delta/SigmaDelta
SDNN_MESSAGE_BITS = 16   # netx's num_message_bits for SDNN neurons without 'messageBits'
STATE_UNIT = float(1 << (SPIKE_EXP + STATE_EXP))   # integer sigma/act per float unit (4096)
MESSAGE_UNIT = float(1 << SPIKE_EXP)               # integer message per float unit (64)
SD_STATE_MAX = (1 << 23) - 1                       # 24-bit state on the chip
SD_VTH_MAX = SD_STATE_MAX >> (SPIKE_EXP + STATE_EXP)                       # 2047
SD_BIAS = (-((1 << 23) >> (SPIKE_EXP + STATE_EXP)), SD_STATE_MAX >> (SPIKE_EXP + STATE_EXP))


def _neuron_kind(layer: dict) -> str | None:
    cfg = layer.get("neuron")
    return str(cfg.get("type", "")) if isinstance(cfg, dict) else None


def _sd_config(layer: dict, name: str, *, is_input: bool = False) -> dict:
    """netx's parameters of an SDNN neuron (``Network.get_neuron_params``), checked."""
    cfg = layer["neuron"]
    act = str(cfg.get("activation", "relu")).lower()
    if act != "relu":
        raise UnsupportedError(f"SDNN activation '{act}': netx ignores it and runs Lava's SigmaDelta with ReLU "
                               f"(refused rather than computing a different function)", node=name)
    if bool(np.any(cfg.get("cum_error", False))):
        raise UnsupportedError("SDNN cum_error: netx does not pass it to Lava (its neurons run without "
                               "cumulative error)", node=name)
    nmb = int(np.ravel(cfg.get("messageBits", SDNN_MESSAGE_BITS))[0])
    if not 1 <= nmb <= 24:
        raise UnsupportedError(f"messageBits={nmb}: Loihi 2 graded spikes carry 1..24 bits", node=name)
    sigma = "sigma_output" in cfg  # netx tests the key, not its value: sigma_output=False is a Sigma too
    if sigma and is_input:
        raise UnsupportedError("an input layer with sigma_output (netx would build a Delta encoder, ignoring "
                               "it) is not supported", node=name)
    if "vThMant" not in cfg and not sigma:
        raise NeuroCompileError("SDNN neuron without vThMant", node=name)
    vth = int(np.ravel(cfg.get("vThMant", 0))[0])
    if not sigma and not 0 <= vth <= (VTH_MAX if is_input else SD_VTH_MAX):
        raise UnsupportedError(f"vThMant={vth}: Lava scales it by 2**{SPIKE_EXP + STATE_EXP} (spike_exp + "
                               f"state_exp); Loihi 2's 24-bit sigma-delta state holds 0..{SD_VTH_MAX}", node=name)
    return {"vth": vth, "message_bits": nmb, "sigma_output": sigma}


def _sd_bias(layer: dict, name: str, sigma_output: bool) -> np.ndarray | None:
    if "bias" not in layer:
        return None
    if sigma_output:
        raise UnsupportedError("a sigma_output layer with a bias (netx's Sigma process takes none: netx "
                               "cannot build it)", node=name)
    b = _int_array(layer, "bias", name)
    if b.size and (b.min() < SD_BIAS[0] or b.max() > SD_BIAS[1]):
        raise UnsupportedError(f"bias {b.min()}..{b.max()}: Lava scales it by 2**{SPIKE_EXP + STATE_EXP}; "
                               f"Loihi 2's 24-bit sigma-delta state holds {SD_BIAS[0]}..{SD_BIAS[1]}", node=name)
    return b


def build_sdnn_graph(layers: list[dict]) -> Graph:
    """The graph of a netx network of SDNN neurons (see the module docstring, "Sigma-delta")."""
    g = Graph(dt=1.0, discretization="euler")
    fixed: dict[str, dict] = {}
    notes: set[str] = {f"netx runs SDNN layers with spike_exp={SPIKE_EXP} (netx.hdf5.Network's default; "
                       f"another value passed to Network changes the integers)"}
    prev: str | None = None
    shape: tuple | None = None
    src_unit, src_bits, encoder = 1.0, 0, None   # the source's message unit and message bits
    sigma_layer = None

    def start(in_shape: tuple) -> str:
        g.add("input", N.Input(shape=tuple(int(s) for s in in_shape)))
        notes.add("no SDNN input layer: the input is 0/1 spikes (netx's default input_message_bits=0)")
        return "input"

    for layer in layers:
        name, kind = layer["_name"], _layer_kind(layer)
        if sigma_layer is not None:
            raise UnsupportedError("a sigma_output layer must be the last layer (it sends its running sum "
                                   "every step, which no Loihi 2 group sends to a synapse)", node=sigma_layer)
        if kind == "input":
            if prev is not None:
                raise UnsupportedError("an input layer must come first", node=name)
            in_shape = tuple(int(s) for s in np.ravel(layer["shape"]))
            g.add("input", N.Input(shape=in_shape))
            prev, shape = "input", in_shape
            if "neuron" in layer:
                cfg = _sd_config(layer, name, is_input=True)
                g.add(name, N.Delta(vth=float(cfg["vth"])))
                g.connect("input", name)
                fixed[name] = {"kind": "delta", "vth": cfg["vth"], "spike_exp": SPIKE_EXP, "state_exp": STATE_EXP,
                               "num_message_bits": cfg["message_bits"]}
                prev, src_unit, src_bits, encoder = name, MESSAGE_UNIT, cfg["message_bits"], name
                notes.add("the input layer's Delta encoder runs on the host (netx: Lava's Delta process); the "
                          "input values are netx's integers")
                if "bias" in layer or "weight" in layer:
                    notes.add("the input layer's weight/bias (netx's input transform) are ignored, as netx does")
            else:
                notes.add("SDNN input layer without a neuron: the input is 0/1 spikes (netx's default "
                          "input_message_bits=0)")
            continue
        if kind == "flatten":  # a (C, H, W) source is flattened (C order) by the dense layer that reads it
            continue
        if "neuron" not in layer:
            raise UnsupportedError("a netx layer without a neuron (netx's default non-leaky integrator) is not "
                                   "supported", node=name)
        out_shape = tuple(int(s) for s in np.ravel(layer["shape"]))
        cfg = _sd_config(layer, name)
        sig = cfg["sigma_output"]
        bias = _sd_bias(layer, name, sig)
        if kind == "conv":
            if prev is None or len(shape) != 3:
                raise UnsupportedError("a conv layer needs a (C, H, W) input layer before it", node=name)
            if "delay" in layer:
                raise UnsupportedError("delays on conv layers are not supported", node=name)
            w = _int_array(layer, "weight", name)
            w = w.reshape(w.shape[:4])
            syn = N.Conv2d(weight=w.astype(np.float64) * (src_unit / STATE_UNIT), bias=0.0,
                           stride=_pair(layer, "stride", 1), padding=_pair(layer, "padding", 0),
                           dilation=_pair(layer, "dilation", 1), groups=int(np.ravel(layer.get("groups", 1))[0]))
            rec = {"synapse": "conv"}
            g.add(f"{name}.syn", syn)
            g.connect(prev, f"{name}.syn")
            last = f"{name}.syn"
            size_shape = out_shape
        else:  # dense
            if "weight_rec" in layer or "weight" not in layer or isinstance(layer["weight"], dict):
                raise UnsupportedError("recurrent/complex dense layers are not supported", node=name)
            size = int(np.prod(out_shape))
            if prev is None:
                n_in0 = int(np.asarray(layer["weight"]).reshape(size, -1).shape[1])
                prev, shape = start((n_in0,)), (n_in0,)
            w = _int_array(layer, "weight", name).reshape(size, -1)
            n_in = int(np.prod(shape))
            if w.shape[1] != n_in:
                raise NeuroCompileError(f"dense weight {w.shape} does not match its input of {n_in} values",
                                        node=name)
            if len(shape) > 1:
                g.add(f"{name}.flatten", N.Flatten())
                g.connect(prev, f"{name}.flatten")
                prev = f"{name}.flatten"
            w_eff, exp, nwb = dense_effective(w, name)
            syn = N.Linear(weight=w_eff.astype(np.float64) * 2.0 ** exp * (src_unit / STATE_UNIT))
            rec = {"synapse": "dense", "weight_exp": exp, "num_weight_bits": nwb}
            last = _add_dense_synapse(g, layer, name, syn, prev, w.shape, notes)
            size_shape = (size,)
        if sig:  # Lava Sigma: sigma += a, sends sigma; here: its increments (their running sum is netx's output)
            node = N.SigmaDelta(vth=0.0, bias=0.0, act="unit")
            rec.update(kind="sigma_delta", sigma_output=True, vth=0, bias=[], act="unit", spike_exp=0, state_exp=0,
                       message_unit=STATE_UNIT)
            sigma_layer = name
            notes.add(f"the sigma_output layer '{name}' sends the increments of its sigma (netx's Sigma sends "
                      f"sigma itself, their running sum; sums over time, e.g. class scores, are the same)")
        else:
            node = N.SigmaDelta(vth=float(cfg["vth"]), bias=0.0 if bias is None else _bias_shape(
                bias.astype(np.float64), size_shape), act="relu")
            rec.update(kind="sigma_delta", vth=cfg["vth"], bias=[] if bias is None else [int(x) for x in bias],
                       act="relu", spike_exp=SPIKE_EXP, state_exp=STATE_EXP, message_unit=MESSAGE_UNIT)
        rec.update(state_unit=STATE_UNIT, in_unit=src_unit, in_message_bits=src_bits,
                   num_message_bits=cfg["message_bits"])
        g.add(name, node)
        g.connect(last, name)
        fixed[name] = rec
        prev, shape = name, out_shape if kind == "conv" else (int(np.prod(out_shape)),)
        src_unit, src_bits = MESSAGE_UNIT, cfg["message_bits"]
    if prev is None or not isinstance(g.nodes[prev], N.SigmaDelta):
        raise NeuroCompileError("the netx file has no neuron layer")
    g.add("output", N.Output())
    g.connect(prev, "output")
    g.metadata[FIXED_KEY] = {"format": "netx", "kind": "sigma_delta", "encoder": encoder, "groups": fixed}
    g.metadata["netx_layers"] = [lay["_name"] for lay in layers]
    for n in sorted(notes):
        g.assume(n)
    return g
