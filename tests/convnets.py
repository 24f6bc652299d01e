"""Event-camera-style conv nets as NIR files (issue 14): 3x3 convs on a 2-channel input, stride 2
after the first layer, LIF after every conv, Flatten and a dense readout; dt = 1e-3 s.

The same layer layout as ``benchmarks/bench_scale.py`` (whose 2x256x256 network with 8-16-32-64
channels has 983,050 neurons); weights are seeded, with a positive mean so that every layer fires.
``pool_after`` adds a 2x2 SumPool2d after that conv (kept as one strided conv on Loihi 2).
"""
from __future__ import annotations

import numpy as np

DT = 1e-3
BETA = 0.9


def conv_net_nir(size: int, channels=(8, 16, 32, 64), n_out: int = 10, seed: int = 0, pool_after=(),
                 means=(1.5, 1.8, 1.8, 1.8), spread: float = 0.5):
    import nir

    rng = np.random.default_rng(seed)
    tau = DT / (1 - BETA)

    def lif(shape):
        return nir.LIF(tau=np.full(shape, tau), r=np.full(shape, tau / DT), v_leak=np.zeros(shape),
                       v_threshold=np.ones(shape))

    nodes = {"input": nir.Input(input_type={"input": np.array([2, size, size])})}
    edges, prev, c_in, hw = [], "input", 2, size
    for i, c in enumerate(channels):
        stride = 1 if i == 0 else 2
        fan = c_in * 9
        w = rng.normal(means[min(i, len(means) - 1)] / fan, spread / np.sqrt(fan), (c, c_in, 3, 3))
        nodes[f"conv{i}"] = nir.Conv2d(input_shape=(hw, hw), weight=w.astype(np.float32), stride=stride, padding=1,
                                       dilation=1, groups=1, bias=rng.normal(0, 0.02, c).astype(np.float32))
        hw = (hw - 1) // stride + 1
        edges.append((prev, f"conv{i}"))
        prev = f"conv{i}"
        if i in pool_after:
            nodes[f"pool{i}"] = nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                                              padding=np.array([0, 0]))
            edges.append((prev, f"pool{i}"))
            prev = f"pool{i}"
            hw //= 2
        nodes[f"lif{i}"] = lif((c, hw, hw))
        edges.append((prev, f"lif{i}"))
        prev, c_in = f"lif{i}", c
    n_flat = c_in * hw * hw
    nodes["flat"] = nir.Flatten(input_type={"input": np.array([c_in, hw, hw])}, start_dim=0, end_dim=-1)
    nodes["fc"] = nir.Affine(weight=rng.normal(2.0 / n_flat, 2.0 / np.sqrt(n_flat), (n_out, n_flat)),
                             bias=np.zeros(n_out))
    nodes["readout"] = lif((n_out,))
    nodes["output"] = nir.Output(output_type={"output": np.array([n_out])})
    edges += [(prev, "flat"), ("flat", "fc"), ("fc", "readout"), ("readout", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges)


def write_conv_net(path, size: int, **kw) -> str:
    import nir

    nir.write(str(path), conv_net_nir(size, **kw))
    return str(path)
