"""Small random netx (.net) files written with h5py, in lava-dl's layout (as its exporter writes)."""
import h5py
import numpy as np


def _neuron(g, i_decay, v_decay, vth, ref_delay=1, kind="CUBA"):
    n = g.create_group("neuron")
    n["type"] = kind
    n["iDecay"], n["vDecay"], n["vThMant"] = np.int64(i_decay), np.int64(v_decay), np.int64(vth)
    n["refDelay"], n["gradedSpike"] = np.int64(ref_delay), False


def write_net(path, layers):
    """layers: dicts with 'type' and the datasets ('neuron': (iDecay, vDecay, vThMant[, refDelay, type])
    or a dict of the neuron group's datasets)."""
    with h5py.File(path, "w") as f:
        root = f.create_group("layer")
        for i, lay in enumerate(layers):
            g = root.create_group(str(i))
            g["type"] = np.array([lay["type"].encode()], dtype="S10")
            for k, v in lay.items():
                if k == "type":
                    continue
                if k == "neuron" and isinstance(v, dict):  # written as given (SDNN: type, vThMant, ...)
                    n = g.create_group("neuron")
                    for nk, nv in v.items():
                        n[nk] = nv
                elif k == "neuron":
                    _neuron(g, *v)
                else:
                    g[k] = v
    return path


def random_dense(path, rng, sizes=(20, 30, 10), delays=False, bias=False):
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        lay = {"type": "dense", "shape": np.array([n_out]),
               "weight": rng.integers(-120, 127, (n_out, n_in)).astype(np.float32) * 2,
               "neuron": (int(rng.choice([4096, 1024, 410])), int(rng.choice([0, 128, 410])) or 128,
                          int(rng.integers(20, 200)), int(rng.integers(1, 3)))}
        if delays:
            lay["delay"] = rng.integers(0, 5, n_out if i % 2 == 0 else n_in).astype(np.float32)
        if bias:
            lay["bias"] = rng.integers(-20, 40, n_out).astype(np.float32)
        layers.append(lay)
    return write_net(path, layers)


def random_conv(path, rng):
    w1 = rng.integers(-60, 100, (4, 2, 3, 3, 1)).astype(np.float32)
    w2 = rng.integers(-60, 100, (6, 4 * 3 * 3)).astype(np.float32)
    layers = [
        {"type": "input", "shape": np.array([2, 8, 8])},
        {"type": "conv", "shape": np.array([4, 3, 3]), "weight": w1, "stride": np.array([2, 2]),
         "padding": np.array([0, 0]), "dilation": np.array([1, 1]), "groups": np.int64(1),
         "bias": rng.integers(0, 30, 4).astype(np.float32), "neuron": (4096, 1024, 60)},
        {"type": "flatten", "shape": np.array([36, 1, 1])},
        {"type": "dense", "shape": np.array([6]), "weight": w2, "neuron": (1024, 512, 80)},
    ]
    return write_net(path, layers)


def sdnn_neuron(vth, **extra):
    """An SDNN neuron group as lava-dl's slayer exports it (``activation``, ``type``, ``vThMant``)."""
    return {"activation": "relu", "type": "SDNN", "vThMant": np.int64(vth), **extra}


def random_sdnn(path, rng, sizes=(16, 24, 20, 8), input_neuron=True, bias=True, delays=False, sigma_output=False):
    """A random netx SDNN dense network: an input layer with an SDNN neuron (netx builds a Delta
    encoder), then sigma-delta dense layers (8-bit-like integer weights, integer biases, small
    thresholds as slayer exports them); optionally a last ``sigma_output`` layer (netx's Sigma)."""
    layers = [{"type": "input", "shape": np.array([sizes[0]]),
               **({"neuron": sdnn_neuron(int(rng.integers(0, 4)))} if input_neuron else {})}]
    pairs = list(zip(sizes[:-1], sizes[1:]))
    for i, (n_in, n_out) in enumerate(pairs):
        sig = sigma_output and i == len(pairs) - 1
        lay = {"type": "dense", "shape": np.array([n_out]),
               "weight": (rng.integers(-40, 48, (n_out, n_in)) * 2).astype(np.float32),
               "neuron": sdnn_neuron(int(rng.integers(0, 24)), **({"sigma_output": True} if sig else {}))}
        if bias and not sig:
            lay["bias"] = rng.integers(-20, 40, n_out).astype(np.float32)
        if delays and not sig:
            lay["delay"] = rng.integers(0, 4, n_out if i % 2 == 0 else n_in).astype(np.float32)
        layers.append(lay)
    return write_net(path, layers)


def random_walk_input(rng, T, n, lo=-60, hi=64, step=6):
    """(T, n) integer inputs that change a little every step (what delta encoding is for)."""
    x = np.cumsum(rng.integers(-step, step + 1, (T, n)), axis=0) + rng.integers(lo // 2, hi // 2, n)
    return np.clip(x, lo, hi).astype(np.int64)


def random_sdnn_conv(path, rng, sigma_output=True):
    """A small SDNN conv network in lava-dl PilotNet's layout: Delta input (C, H, W), two sigma-delta
    convs (strides, an asymmetric padding, per-channel biases), flatten, a sigma-delta dense layer
    and a ``sigma_output`` dense layer."""
    layers = [{"type": "input", "shape": np.array([2, 9, 8]), "neuron": sdnn_neuron(1)},
              {"type": "conv", "shape": np.array([4, 4, 3]),
               "weight": rng.integers(-30, 36, (4, 2, 3, 3)).astype(np.float32), "stride": np.array([2, 2]),
               "padding": np.array([0, 0]), "dilation": np.array([1, 1]), "groups": np.int64(1),
               "bias": rng.integers(-10, 20, 4).astype(np.float32), "neuron": sdnn_neuron(3)},
              {"type": "conv", "shape": np.array([6, 2, 3]),
               "weight": rng.integers(-16, 14, (6, 4, 3, 3)).astype(np.float32), "stride": np.array([1, 1]),
               "padding": np.array([0, 1]), "dilation": np.array([1, 1]), "groups": np.int64(1),
               "bias": rng.integers(-10, 20, 6).astype(np.float32), "neuron": sdnn_neuron(2)},
              {"type": "flatten", "shape": np.array([36, 1, 1])},
              {"type": "dense", "shape": np.array([5]), "weight": (rng.integers(-20, 20, (5, 36)) * 2)
               .astype(np.float32), "bias": rng.integers(-5, 10, 5).astype(np.float32), "neuron": sdnn_neuron(2)},
              {"type": "dense", "shape": np.array([1]), "weight": rng.integers(-16, 12, (1, 5)).astype(np.float32),
               "neuron": sdnn_neuron(6, **({"sigma_output": True} if sigma_output else {}))}]
    return write_net(path, layers)
