"""``validate``: compile once, run every requested target on the same input, compare, report.

Targets: ``float`` (the reference) and any registered target name (its default runner) or
``TARGET:RUNNER`` (``spinnaker:board``, ``loihi2:chip``). Exact runners of one family (Loihi 2's
emulator and Lava) must agree bit for bit; different families meet through the float reference. Runs
are aligned on the float graph's time base (each Dense hop on a chip adds a step); exact comparisons
use the chip's own time base.
"""
from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from neurocompile.api import compile as do_compile
from neurocompile.errors import BackendError, NeuroCompileError
from neurocompile.ir.batch import batched_input
from neurocompile.targets.artifact import Artifact, is_artifact, load_artifact
from neurocompile.targets.registry import get_target, resolve_run
from neurocompile.utils.outputs import claim_output
from neurocompile.validate.compare import first_mismatch, float_vs_quantized
from neurocompile.validate.diagnostics import loihi2_diagnostics
from neurocompile.validate.metrics import run_metrics
from neurocompile.validate.sharded import sharded_run
from neurocompile.validate.traces import run_target


def validate(model, x, targets=("float", "emulator"), *, labels=None, report_dir=None,
             artifact: Artifact | None = None, log=lambda m: None, force: bool = False, inputs=(),
             workers: int | None = 1, scheduler=None, cache=None, shard_size: int | None = None,
             progress=None, **compile_options) -> dict:
    """Returns the report dict; ``report["ok"]`` is False when an exact comparison failed.

    ``report_dir`` is checked before anything runs: it must be absent, empty or an earlier report
    (``force``: any earlier neurocompile output), and may not be or contain the model or ``inputs``.

    ``workers`` (local processes; None: the machine's cores) or ``scheduler`` (a Dask scheduler
    address or Client) run every target data-parallel, in shards of the batch that merge into the
    single-process traces (``neurocompile.parallel``); ``cache`` keeps finished shards (a
    directory, or True for ~/.cache/neurocompile) so that a rerun resumes; ``progress(t, done, n)``.
    """
    targets = list(dict.fromkeys(targets))
    protected = (model, *inputs) if isinstance(model, (str, Path)) else tuple(inputs)
    if report_dir is not None:
        claim_output(report_dir, "report", force=force, inputs=protected)
    runs = {}
    for t in targets:
        if t == "float":
            continue
        try:
            runs[t] = resolve_run(t)
        except BackendError as err:
            raise NeuroCompileError(f"validate: {err.reason}") from None
    fam_of = {t: tgt.kind() for t, (tgt, _) in runs.items()}
    families = list(dict.fromkeys(fam_of.values())) or ["loihi2"]
    artifacts: dict[str, Artifact] = {}
    if artifact is None and isinstance(model, (str, Path)) and is_artifact(model):
        artifact = load_artifact(model)
    if artifact is not None:
        artifacts[get_target(artifact.target).kind()] = artifact
    for fam in families:
        if fam not in artifacts:
            source = model if artifact is None else artifact.graph
            log(f"compiling for {fam}")
            artifacts[fam] = do_compile(source, target=fam, **compile_options)
    main = artifacts.get("loihi2") or artifacts.get(families[0]) or next(iter(artifacts.values()))
    art_of = {t: main if t == "float" else artifacts[fam_of[t]] for t in targets}
    x = np.asarray(x)
    xf = batched_input(main.graph, x, flat=True)
    traces = {}
    for t in targets:
        log(f"running {t}")
        if workers != 1 or scheduler is not None or shard_size is not None:
            traces[t] = sharded_run(art_of[t], t, x, runs[t][1] if t in runs else None, workers=workers,
                                    scheduler=scheduler, cache=cache, shard_size=shard_size,
                                    progress=(lambda d, n, t=t: progress(t, d, n)) if progress else None)
        else:
            traces[t] = run_target(art_of[t], t, x, runner=runs[t][1] if t in runs else None)
    exact = []
    for a, b in itertools.combinations([t for t in targets if traces[t].exact], 2):
        if fam_of[a] != fam_of[b]:
            continue  # different chips are compared through the float reference, not bit for bit
        m = first_mismatch(art_of[a], traces[a], traces[b])
        exact.append({"a": a, "b": b, "equal": m is None, "first_mismatch": m})
    fvq = {}
    if "float" in traces:
        for t in targets:
            if t != "float":
                fvq[f"float vs {t}"] = float_vs_quantized(art_of[t], traces["float"], traces[t])
    metrics = {t: run_metrics(art_of[t], traces[t], fam_of.get(t), xf) for t in targets}
    diagnostics = {t: loihi2_diagnostics(art_of[t], traces[t]) for t in targets if fam_of.get(t) == "loihi2"
                   and traces[t].raw is not None}
    if "spinnaker" in artifacts:
        diagnostics["spinnaker"] = {"groups": {}, "synapses": {}, "warnings": [],
                                    "report": artifacts["spinnaker"].report.get("spinnaker", {})}
    report = {"model": str(model), "targets": targets, "steps": int(xf.shape[0]), "batch": int(xf.shape[1]),
              "exact": exact, "float_vs_quantized": fvq, "metrics": metrics, "diagnostics": diagnostics,
              "resources": {fam: a.report.get("resources", a.report.get("spinnaker", {}).get("resources", {}))
                            for fam, a in artifacts.items()},
              "ok": all(c["equal"] for c in exact)}
    if labels is not None:
        labels = np.asarray(labels).ravel()
        acc = {}
        from neurocompile.ir.readout import predict

        for t, tr in traces.items():
            pred = predict(main.graph, next(iter(tr.outputs.values())))
            if len(labels) != len(pred):
                raise NeuroCompileError(f"{len(labels)} labels for a batch of {len(pred)}")
            acc[t] = float((pred == labels).mean())
        report["accuracy"] = acc
    if report_dir is not None:
        from neurocompile.validate.report import write_report

        report["files"] = write_report(report_dir, report, traces, main, force=force, inputs=protected)
    return report
