"""``--convention`` (compile, inspect, validate) and ``--layout`` (run): options kept out of the
commands' signatures (``expose_value=False``; the value lives in the click context)."""
from __future__ import annotations

import click
import numpy as np

from neurocompile.frontends.conventions import CONVENTIONS

_KEY = "neurocompile.convention"
_LAYOUT = "neurocompile.layout"


def _store(key):
    def callback(ctx, param, value):
        ctx.meta[key] = value
        return value
    return callback


def convention_option(f):
    return click.option(
        "--convention", type=click.Choice(sorted(CONVENTIONS)), expose_value=False, callback=_store(_KEY),
        help="Whose exporter wrote the NIR file (its discrete update and time unit; "
             "docs/exporters.md). Default: from the file's metadata, else nir.")(f)


def convention() -> str | None:
    ctx = click.get_current_context(silent=True)
    return ctx.meta.get(_KEY) if ctx is not None else None


def layout_option(f):
    return click.option(
        "--layout", type=click.Choice(["tb", "bt"]), expose_value=False, callback=_store(_LAYOUT),
        help="Axis order of the input: tb = (T, batch, ...) (default), bt = (batch, T, ...) as "
             "rockpool, sinabs and tonic write it. Detected from --labels when unambiguous.")(f)


def arrange(x, graph, labels_path=None, echo=None) -> np.ndarray:
    """``x`` as (T, batch, ...): swapped for ``--layout bt`` or when the labels' length matches only
    the first axis; prints the T and batch it used."""
    from neurocompile.cli.io import load_array
    from neurocompile.ir.batch import sample_shapes

    echo = echo or (lambda m: click.echo(m, err=True))
    ctx = click.get_current_context(silent=True)
    layout = ctx.meta.get(_LAYOUT) if ctx is not None else None
    x = np.asarray(x) if not isinstance(x, np.ndarray) else x
    inputs = graph.inputs
    batched = False
    if len(inputs) == 1 and x.ndim >= 2:
        batched = any(x.ndim == 2 + len(s) for s in sample_shapes(graph, inputs[0]))
    how = "--layout tb" if layout == "tb" else "default (T, batch, ...)"
    if batched and layout is None and labels_path:
        n = int(np.asarray(load_array(labels_path, "labels", min_ndim=1)).size)
        if n == x.shape[0] != x.shape[1]:
            layout, how = "bt", f"batch-first detected: {n} labels match the first axis"
    if layout == "bt":
        if not batched:
            raise click.UsageError("--layout bt needs an input of shape (batch, T, *sample)")
        x = np.swapaxes(x, 0, 1)
        how = how if how.startswith("batch-first") else "--layout bt"
    if batched:
        echo(f"input: T = {x.shape[0]} steps, batch = {x.shape[1]} ({how})")
        if layout is None and x.shape[1] > x.shape[0]:
            echo(f"  note: batch {x.shape[1]} > T {x.shape[0]}; if the array is (batch, T, ...), pass --layout bt")
    elif x.ndim >= 1:
        echo(f"input: T = {x.shape[0]} steps, batch = 1")
    return x
