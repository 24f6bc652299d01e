"""Small random netx (.net) files written with h5py, in lava-dl's layout (as its exporter writes)."""
import h5py
import numpy as np


def _neuron(g, i_decay, v_decay, vth, ref_delay=1, kind="CUBA"):
    n = g.create_group("neuron")
    n["type"] = kind
    n["iDecay"], n["vDecay"], n["vThMant"] = np.int64(i_decay), np.int64(v_decay), np.int64(vth)
    n["refDelay"], n["gradedSpike"] = np.int64(ref_delay), False


def write_net(path, layers):
    """layers: dicts with 'type' and the datasets ('neuron': (iDecay, vDecay, vThMant[, refDelay]))."""
    with h5py.File(path, "w") as f:
        root = f.create_group("layer")
        for i, lay in enumerate(layers):
            g = root.create_group(str(i))
            g["type"] = np.array([lay["type"].encode()], dtype="S10")
            for k, v in lay.items():
                if k == "type":
                    continue
                if k == "neuron":
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
