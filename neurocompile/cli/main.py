"""The ``neurocompile`` command line."""
from __future__ import annotations

import json
import sys

import click
import numpy as np

from neurocompile._version import __version__
from neurocompile.cli import exporter_opts as xo
from neurocompile.cli import parallel_opts as po
from neurocompile.cli.errors import report_and_exit

EPILOG_COMPILE = """\b
Examples:
  neurocompile compile zoo:digits -o build/digits            # default target: emulator (Loihi 2 numerics)
  neurocompile compile zoo:digits --target float -o build/digits-float
  neurocompile compile net.nir --dt 1e-3 --reset subtract -o build/net
  neurocompile compile mynet.py:make_net --weights net.pt --input-shape 1,28,28 -o build/net
"""


class Group(click.Group):
    """Runs every command inside the error handler so bad input never shows a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except Exception as err:  # noqa: BLE001
            report_and_exit(err, debug=ctx.obj.get("debug", False) if ctx.obj else False)


def _shape(text: str | None):
    if not text:
        return None
    try:
        return tuple(int(s) for s in text.replace("x", ",").split(",") if s.strip())
    except ValueError:
        raise click.BadParameter(f"expected integers like 1,28,28, got '{text}'") from None


def _check_dt(ctx, param, value):
    """--dt must be a finite time step > 0 (click's float accepts inf, nan, 0 and negatives)."""
    import math

    from neurocompile.errors import NeuroCompileError

    if value is not None and not (math.isfinite(value) and value > 0):
        raise NeuroCompileError(f"--dt must be a finite time step in seconds > 0, got {value}")
    return value


FORCE = click.option("--force", is_flag=True,
                     help="Also replace an earlier neurocompile output of another kind (never other files).")


def model_options(f):
    f = click.option("--weights", type=click.Path(), help=(
        "State-dict file for an snnTorch model (loaded weights_only)."
    ))(f)
    f = click.option("--input-shape", help="Input shape of one sample, e.g. 1,28,28 (snnTorch models).")(f)
    f = click.option("--discretization", type=click.Choice(["euler", "exact"]), help=(
        "How time constants become per-step decays."
    ))(f)
    f = click.option("--reset", type=click.Choice(["zero", "subtract", "none"]), help=(
        "Reset mode where the source has none (NIR)."
    ))(f)
    f = click.option("--dt", type=float, callback=_check_dt,
                     help="Time step in seconds (NIR has none; default 1e-4).")(f)
    return xo.convention_option(f)


def _load_opts(dt, reset, discretization, input_shape, weights):
    return {k: v for k, v in dict(dt=dt, reset=reset, discretization=discretization, convention=xo.convention(),
                                  input_shape=_shape(input_shape), weights=weights).items() if v is not None}


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.version_option(__version__, prog_name="neurocompile")
@click.pass_context
def cli(ctx, debug):
    """Compile trained spiking neural networks for neuromorphic hardware and run them."""
    ctx.obj = {"debug": debug}


@cli.command(epilog=EPILOG_COMPILE)
@click.argument("model")
@click.option("--target", "-t", default="emulator", show_default=True, help=(
    "Backend to compile for (see `neurocompile targets`)."
))
@click.option("--output", "-o", required=True, type=click.Path(), help="Artifact directory to write.")
@click.option("--dump-ir", type=click.Path(), help="Write the graph after every pass into this directory.")
@click.option("--calibration", type=click.Path(), help=(
    "Sample inputs .npy (T, batch, *shape) to choose fixed-point scales (and ONNX normalisation)."
))
@click.option("--chips", type=int, help="Chips available to the mapping (default 1).")
@click.option("--split-weights", is_flag=True, help=(
    "Loihi 2: a second matrix per synapse layer holds the rounding residual (~16-bit weights, twice the "
    "synapses)."
))
@click.option("--input-bits", type=int, help="Loihi 2: payload bits of graded input spikes (default 8, up to 24).")
@click.option("--max-weight-exp", type=int, help=(
    "Loihi 2: the largest weight exponent (default 7; 0 makes programs `export --format netx` can write)."))
@click.option("--input-encoding", type=click.Choice(["spikes", "current"]), help=(
    "How the chip receives the input: 0/1 spikes, or the analog values as a current (graded spikes on "
    "Loihi 2, host-driven current on SpiNNaker). Default: current when the calibration samples are analog."
))
@FORCE
@model_options
def compile(model, target, output, dump_ir, calibration, chips, split_weights, input_bits, max_weight_exp,
            input_encoding, force, dt, reset, discretization, input_shape, weights):
    """Compile MODEL (.nir, .onnx, zoo:NAME, file.py:factory) for a target into an artifact.

    The output must be absent, empty or an earlier artifact; nothing else is replaced.
    """
    from neurocompile.api import compile as do_compile
    from neurocompile.api import load_model, model_options
    from neurocompile.cli.io import load_array
    from neurocompile.errors import NeuroCompileError
    from neurocompile.targets.registry import get_target
    from neurocompile.utils.outputs import claim_output

    claim_output(output, "artifact", force=force, inputs=(model, calibration, weights))
    if dump_ir:
        claim_output(dump_ir, "ir-dump", inputs=(model, calibration, weights, output))

    calib = load_array(calibration, "calibration") if calibration else None
    opts = model_options(model, target, dict(_load_opts(dt, reset, discretization, input_shape, weights),
                                             calibration=calib, input_encoding=input_encoding))
    defaults = get_target(target).frontend_defaults
    if str(model).endswith(".onnx") and defaults:
        click.echo(f"ONNX for {target}: " + ", ".join(f"{k}={opts.get(k, v)}" for k, v in defaults.items()), err=True)
    graph = load_model(model, **opts)
    try:
        art = do_compile(graph, target=target, log=lambda m: click.echo(m, err=True), dump_ir=dump_ir,
                         dt=dt, discretization=discretization, calibration=calib, chips=chips,
                         split_weights=split_weights, input_encoding=input_encoding, input_bits=input_bits,
                         max_weight_exp=max_weight_exp)
    except NeuroCompileError as err:
        raise err.with_context(file=model)
    art.save(output, force=force, inputs=(model, calibration, weights))
    for a in art.graph.assumptions:
        click.echo(f"assumed: {a}", err=True)
    _print_report(art.report)
    click.echo(f"wrote {output} (target {target})")


def _print_report(report: dict) -> None:
    for line in report.get("summary", []):
        click.echo(line)


EPILOG_RUN = """\b
Examples:
  neurocompile run build/digits --input X.npy -o out.npz
  neurocompile run build/digits --input X.npy --labels y.npy --probe 1.v -o out.npz
"""


@cli.command(epilog=EPILOG_RUN)
@click.argument("artifact", type=click.Path())
@click.option("--input", "-i", "input_path", required=True, type=click.Path(), help=(
    "Input .npy: (T, batch, *shape) or (T, *shape)."
))
@click.option("--output", "-o", type=click.Path(), help="Write outputs and probes to this .npz.")
@click.option("--probe", "-p", multiple=True, help="Record NODE (its output) or NODE.v / NODE.i (state). Repeatable.")
@click.option("--labels", type=click.Path(), help=(
    "Labels .npy (batch,): print accuracy (argmax of output spike counts)."
))
@click.option("--on", "on", help=(
    "Where to run: the artifact's target name = the real chip (spinnaker: board in ~/.spynnaker.cfg; loihi2: "
    "Loihi2HwCfg); lava = Lava's CPU models. Default: the emulator."
))
@FORCE
@po.parallel_options
@xo.layout_option
def run(artifact, input_path, output, probe, labels, on, force, workers, scheduler, cache, shard_size):
    """Run a compiled ARTIFACT on an input array and report outputs, spikes and accuracy."""
    from neurocompile.api import run as do_run
    from neurocompile.cli.io import load_array, save_result
    from neurocompile.targets.artifact import load_artifact
    from neurocompile.utils.outputs import claim_output

    protected = (artifact, input_path, labels)
    if output:
        claim_output(output, "outputs", force=force, inputs=protected)
    art = load_artifact(artifact)
    x = xo.arrange(load_array(input_path), art.graph, labels)
    try:
        par = po.parallel_settings(workers, scheduler, cache, shard_size, po.batch_of(x))
        result = po.run_parallel(art, x, probe, on, par) if par else _run_with_progress(do_run, art, x, probe, on)
    except Exception as err:
        from neurocompile.errors import NeuroCompileError

        if isinstance(err, NeuroCompileError):
            err.with_context(file=input_path if "input" in err.reason else None)
        raise
    if output:
        save_result(output, result, art, force=force, inputs=protected)
        click.echo(f"wrote {output}")
    _print_activity(result)
    if labels:
        _print_accuracy(art.graph, result, load_array(labels, "labels", min_ndim=1), labels)


def _run_with_progress(do_run, art, x, probe, on):
    T = int(np.shape(x)[0]) if np.ndim(x) else 0
    with click.progressbar(length=T, label="running", file=sys.stderr) as bar:
        last = [0]

        def progress(done, total):
            bar.update(done - last[0])
            last[0] = done

        return do_run(art, x, probes=probe, record_spikes=True, on=on, progress=progress)


def _print_activity(result) -> None:
    counts = {k[:-4]: v for k, v in result.probes.items() if k.endswith(".out")}
    if not counts:
        return
    click.echo("spikes per layer (total over batch and time; mean per sample):")
    for name, arr in counts.items():
        total = float(np.count_nonzero(arr))
        click.echo(f"  {name:<20} {int(total):>10}  {total / arr.shape[1]:10.1f}")


def _print_accuracy(graph, result, labels, path) -> None:
    from neurocompile.errors import NeuroCompileError
    from neurocompile.ir.readout import predict

    pred = predict(graph, result.output)
    labels = np.asarray(labels).ravel()
    if labels.shape[0] != pred.shape[0]:
        raise NeuroCompileError(f"{labels.shape[0]} labels for a batch of {pred.shape[0]}", file=path)
    acc = float((pred == labels).mean())
    click.echo(f"accuracy: {acc * 100:.2f}% ({int((pred == labels).sum())}/{len(labels)})")


@cli.command()
@click.argument("model")
@model_options
def inspect(model, dt, reset, discretization, input_shape, weights):
    """Show nodes, shapes, parameters and assumptions of a model or artifact.

    \b
    Examples:
      neurocompile inspect ../shared/fixtures/nir-paper/braille_noDelay_bias_zero.nir
      neurocompile inspect build/digits
    """
    from neurocompile.api import load_model
    from neurocompile.targets.artifact import is_artifact, load_artifact

    if is_artifact(model):
        art = load_artifact(model)
        click.echo(f"artifact for target '{art.target}'")
        click.echo(art.graph.summary())
        _print_report(art.report)
        return
    graph = load_model(model, **_load_opts(dt, reset, discretization, input_shape, weights))
    click.echo(graph.summary())


@cli.command()
def targets():
    """List installed backends and whether each can run here.

    \b
    Example:
      neurocompile targets
    """
    from neurocompile.targets.registry import list_backends

    for name, desc, ok, why, chip in list_backends():
        click.echo(f"{name:<10} {'yes' if ok else 'no ':<4} {desc}" + ("" if ok else f"  [{why}]"))
        if chip:
            click.echo(f"{'':<15}{chip}")


@cli.command("zoo-data")
@click.argument("name")
@click.option("--output", "-o", required=True, type=click.Path(), help="Directory for X.npy and y.npy.")
@FORCE
def zoo_data(name, output, force):
    """Write the held-out split of a shipped model's data set (X.npy, y.npy) and calibration samples.

    \b
    Example:
      neurocompile zoo-data digits -o build/digits-data
    """
    import importlib

    from neurocompile.errors import NeuroCompileError
    from neurocompile.frontends.loader import ZOO
    from neurocompile.utils.atomic import atomic_path
    from neurocompile.utils.outputs import claim_output, marker

    if name not in ZOO:
        raise NeuroCompileError(f"no shipped model '{name}' (available: {', '.join(ZOO)})")
    path = claim_output(output, "data", force=force)
    zoo = importlib.import_module(ZOO[name])
    x, y = zoo.test_data()
    with atomic_path(path) as tmp:
        tmp.mkdir()
        mname, content = marker("data")
        (tmp / mname).write_text(json.dumps(dict(content, zoo=name)) + "\n")
        np.save(tmp / "X.npy", x)
        np.save(tmp / "y.npy", y)
        if hasattr(zoo, "calibration_data"):
            np.save(tmp / "calib.npy", zoo.calibration_data())
    click.echo(f"wrote {output}/X.npy {x.shape}, y.npy {y.shape} (held-out split) and calib.npy (training samples)")


EPILOG_VALIDATE = """\b
Examples:
  neurocompile validate zoo:digits --input X.npy --labels y.npy --targets float,emulator,lava --report build/report
  neurocompile validate build/braille --input X.npy --targets emulator,lava
Exit codes: 0 all exact comparisons equal; 3 a comparison that must be exact is not; 2 bad input.
"""


@cli.command(epilog=EPILOG_VALIDATE)
@click.argument("model")
@click.option("--input", "-i", "input_path", required=True, type=click.Path(), help="Input .npy (T, batch, *shape).")
@click.option("--targets", default="float,emulator", show_default=True, help=(
    "Comma-separated: float, emulator, lava, loihi2, spinnaker, any installed target, or TARGET:RUNNER "
         "(spinnaker:board, loihi2:chip)."
))
@click.option("--report", "report_dir", type=click.Path(), help="Write report.json, report.md and PNG plots here.")
@click.option("--labels", type=click.Path(), help="Labels .npy (batch,) for accuracy per target.")
@click.option("--calibration", type=click.Path(), help="Calibration inputs for compiling a model.")
@click.option("--input-encoding", type=click.Choice(["spikes", "current"]), help=(
    "How the chip receives the input: 0/1 spikes, or the analog values as a current (graded spikes on "
    "Loihi 2, host-driven current on SpiNNaker). Default: current when the calibration samples are analog."
))
@FORCE
@model_options
@po.parallel_options
def validate(model, input_path, targets, report_dir, labels, calibration, input_encoding, force, dt, reset,
             discretization, input_shape, weights, workers, scheduler, cache, shard_size):
    """Run MODEL_OR_ARTIFACT on several targets with the same input and show where they differ."""
    from neurocompile.cli.io import load_array
    from neurocompile.validate import validate as do_validate

    x = load_array(input_path)
    calib = load_array(calibration, "calibration") if calibration else None
    rep = do_validate(model, x, [t.strip() for t in targets.split(",") if t.strip()],
                      labels=load_array(labels, "labels", min_ndim=1) if labels else None, report_dir=report_dir,
                      log=lambda m: click.echo(m, err=True), calibration=calib, force=force,
                      inputs=(input_path, labels, calibration, weights),
                      **(po.parallel_settings(workers, scheduler, cache, shard_size, po.batch_of(x)) or {}),
                      progress=po.validate_progress, **_load_opts(dt, reset, discretization, input_shape, weights),
                      **({"input_encoding": input_encoding} if input_encoding else {}))
    _print_validation(rep)
    if not rep["ok"]:
        sys.exit(3)


def _print_validation(rep: dict) -> None:
    for c in rep["exact"]:
        if c["equal"]:
            click.echo(f"{c['a']} vs {c['b']}: identical (all spikes, u, v)")
        else:
            m = c["first_mismatch"]
            click.echo(f"{c['a']} vs {c['b']}: DIFFER first at step {m['step']} node '{m['node']}' neuron "
                       f"{m['neuron']} ({m['variable']}): {c['a']}={m[c['a']]} {c['b']}={m[c['b']]}")
            for inp in m["inputs"]:
                click.echo(f"    input via {inp['synapses']} from {inp['source']}: "
                           f"{c['a']}={inp[c['a']]} {c['b']}={inp[c['b']]}")
    for name, c in rep["float_vs_quantized"].items():
        click.echo(f"{name}: class agreement {c['class_agreement']:.1%}; difference first exceeds "
                   f"{c['tolerance']:.0%} at: {c['difference_grows_at'] or 'nowhere'}")
        for layer in c["layers"]:
            if not layer.get("readout"):
                click.echo(f"    {layer['node']:<16} float {layer['float_spikes']:>8}  quantized "
                           f"{layer['quantized_spikes']:>8}  ({layer['rel_count_diff']:.1%})")
    for t, a in rep.get("accuracy", {}).items():
        click.echo(f"accuracy {t}: {a:.2%}")
    for t, d in rep.get("diagnostics", {}).items():
        for w in d["warnings"]:
            click.echo(f"warning ({t}): {w}")
    if rep.get("files"):
        click.echo("report: " + ", ".join(rep["files"]))


@cli.command()
@click.argument("what", type=click.Choice(["loihi"]))
@click.option("--env", "env_dir", type=click.Path(), help=(
    "Where to create it (default: the checkout's .venv-lava, else ~/.cache/neurocompile/lava-env)."))
def setup(what, env_dir):
    """Create and check a target's separate runtime environment.

    \b
    Example:
      neurocompile setup loihi     # Python 3.10 venv with lava-nc 0.10.0 and numpy<2
    Then `neurocompile targets` shows lava as runnable; NEUROCOMPILE_LAVA_PYTHON overrides.
    """
    from neurocompile.targets.loihi2.lava.setup_env import setup_lava_env

    py = setup_lava_env(env_dir, log=lambda m: click.echo(m, err=True))
    click.echo(py)


@cli.command()
@click.argument("model")
@click.option("--samples", required=True, type=click.Path(), help="Samples .npy (N, *shape), one per sample.")
@click.option("--steps", type=int, help="Time steps (ONNX: default the converter's choice; otherwise required).")
@click.option("--scale", type=float, help=(
    "Rate code: the value that spikes at every step (default: the samples' largest value)."))
@click.option("--output", "-o", required=True, type=click.Path(), help="Where to write the (T, N, *shape) input .npy.")
def encode(model, samples, steps, scale, output):
    """Encode samples as the time-stepped input MODEL (an artifact) takes.

    ONNX conversions use their recorded encoding. Other artifacts: a spike-input artifact gets a
    deterministic rate code (floor(T*x/scale) evenly spaced spikes), a current-input one the
    sample repeated at every step.

    \b
    Example:
      neurocompile compile net.onnx --calibration calib.npy -o build/net
      neurocompile encode build/net --samples test.npy -o build/X.npy
      neurocompile run build/net --input build/X.npy --labels labels.npy
    """
    from neurocompile.api import is_artifact, load_model
    from neurocompile.cli.io import load_array
    from neurocompile.errors import NeuroCompileError
    from neurocompile.frontends.onnx import encode_input
    from neurocompile.targets.artifact import load_artifact
    from neurocompile.targets.input_encoding import rate_code
    from neurocompile.utils.atomic import atomic_path
    from neurocompile.utils.outputs import claim_output

    claim_output(output, "array", inputs=(model, samples))
    graph = load_model(model)
    xs = load_array(samples, "samples", min_ndim=1)
    if "onnx" in graph.metadata:
        x = encode_input(graph, xs, steps)
    else:
        if not steps:
            raise NeuroCompileError("--steps is needed (the model records no time-step count)", file=model)
        shape = tuple(graph.infer_shapes()[graph.inputs[0]])
        if tuple(xs.shape[1:]) != shape:
            raise NeuroCompileError(f"samples have shape {tuple(xs.shape[1:])} per sample; the model takes {shape}",
                                    file=samples)
        encoding = load_artifact(model).report.get("input", {}).get("encoding") if is_artifact(model) else None
        if encoding in ("current", "values"):
            x = np.broadcast_to(xs, (steps,) + xs.shape).astype(np.float32)
        else:
            full = scale if scale is not None else float(np.max(xs)) if xs.size else 1.0
            x = rate_code(xs, steps, full)
            click.echo(f"rate code over {steps} steps, full scale {full:g}", err=True)
    with atomic_path(output) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, x)
    click.echo(f"wrote {output} {x.shape}")


from neurocompile.cli.export import export as _export  # noqa: E402 - the command lives in cli/export.py

cli.add_command(_export)


def main():  # console-script entry point
    cli(prog_name="neurocompile")


if __name__ == "__main__":
    main()
