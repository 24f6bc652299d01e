"""Checking that a class-based network's forward is a plain chain of its layers."""
from __future__ import annotations

import inspect

from neurocompile.errors import UnsupportedError
from neurocompile.frontends.snntorch.common import _STATE_NAMES, _is_skipped, _neuron_types
from neurocompile.frontends.snntorch.functional_ops import describe, make_recorder


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
    depth = [0]
    hooks = []
    saved_state = {}
    for i, (_, layer) in enumerate(leaves):
        kind = neuron_types.get(type(layer))
        if kind:
            saved_state[i] = {n: getattr(layer, n) for n in _STATE_NAMES[kind]}
        if _is_skipped(layer, nn):
            continue

        def pre(mod, args, kwargs, i=i, kind=kind):
            depth[0] += 1
            copy = lambda v: v.detach().clone() if torch.is_tensor(v) else v  # noqa: E731
            rec = {"leaf": i, "args": tuple(copy(a) for a in args),
                   "kwargs": {k: copy(v) for k, v in kwargs.items()}}
            if kind:
                rec["pre"] = {n: getattr(mod, n).detach().clone() for n in _STATE_NAMES[kind]}
            calls.append(rec)

        def post(mod, args, kwargs, output, i=i, kind=kind):
            depth[0] -= 1
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
            depth[0] = 0
            recorder = make_recorder(torch, depth)
            try:
                with torch.no_grad(), recorder:
                    module(x)
            except Exception as err:  # the user's forward does not take this input
                errors.append(f"forward(x of shape {tuple(x.shape)}) raised {type(err).__name__}: {err}")
                continue
            try:
                return _analyse(calls, leaves, used, x, cls, torch, neuron_types)
            except UnsupportedError as err:
                err.reason += describe(recorder.names)
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
