"""``validate``: compile once, run every requested target on the same input, compare, report.

Targets: ``float`` (the reference), ``emulator`` and ``lava`` (Loihi 2 numerics: they must agree
exactly), ``loihi2`` (a real chip when a runtime is present), and any other bit-accurate backend
that provides ``run_raw``. Runs are aligned on the float graph's time base (each Dense hop on a
chip adds a step); exact comparisons use the chip's own time base.
"""
from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from neurocompile.targets.artifact import Artifact, is_artifact, load_artifact
from neurocompile.errors import NeuroCompileError
from neurocompile.utils.outputs import claim_output
from neurocompile.validate.compare import first_mismatch, float_vs_quantized
from neurocompile.validate.diagnostics import loihi2_diagnostics
from neurocompile.validate.metrics import run_metrics
from neurocompile.validate.traces import flat_input, run_target

CHIP_OF = {"emulator": "loihi2", "lava": "loihi2", "loihi2": "loihi2", "loihi2-hw": "loihi2",
           "spinnaker": "spinnaker", "spinnaker-board": "spinnaker"}


def validate(model, x, targets=("float", "emulator"), *, labels=None, report_dir=None,
             artifact: Artifact | None = None, log=lambda m: None, force: bool = False, inputs=(),
             **compile_options) -> dict:
    """Returns the report dict; ``report["ok"]`` is False when an exact comparison failed.

    ``report_dir`` is checked before anything runs: it must be absent, empty or an earlier report
    (``force``: any earlier neurocompile output), and may not be or contain the model or ``inputs``.
    """
    targets = list(dict.fromkeys(targets))
    protected = (model, *inputs) if isinstance(model, (str, Path)) else tuple(inputs)
    if report_dir is not None:
        claim_output(report_dir, "report", force=force, inputs=protected)
    unknown = [t for t in targets if t != "float" and t not in CHIP_OF]
    if unknown:
        raise NeuroCompileError(f"validate does not know target(s) {unknown} (known: float, {', '.join(CHIP_OF)})")
    families = sorted({CHIP_OF[t] for t in targets if t != "float"}) or ["loihi2"]
    artifacts: dict[str, Artifact] = {}
    if artifact is None and isinstance(model, (str, Path)) and is_artifact(model):
        artifact = load_artifact(model)
    if artifact is not None:
        artifacts[CHIP_OF.get(artifact.target, artifact.target)] = artifact
    for fam in families:
        if fam not in artifacts:
            from neurocompile.api import compile as do_compile

            source = model if artifact is None else artifact.graph
            log(f"compiling for {fam}")
            artifacts[fam] = do_compile(source, target=fam, **compile_options)
    main = artifacts.get("loihi2") or next(iter(artifacts.values()))
    art_of = {t: main if t == "float" else artifacts[CHIP_OF[t]] for t in targets}
    x = np.asarray(x)
    xf = flat_input(main, x)
    traces = {}
    for t in targets:
        log(f"running {t}")
        traces[t] = run_target(art_of[t], t, x)
    exact = []
    for a, b in itertools.combinations([t for t in targets if traces[t].exact], 2):
        if CHIP_OF[a] != CHIP_OF[b]:
            continue  # different chips are compared through the float reference, not bit for bit
        m = first_mismatch(art_of[a], traces[a], traces[b])
        exact.append({"a": a, "b": b, "equal": m is None, "first_mismatch": m})
    fvq = {}
    if "float" in traces:
        for t in targets:
            if t != "float":
                fvq[f"float vs {t}"] = float_vs_quantized(art_of[t], traces["float"], traces[t])
    metrics = {t: run_metrics(art_of[t], traces[t], CHIP_OF.get(t), xf) for t in targets}
    diagnostics = {t: loihi2_diagnostics(art_of[t], traces[t]) for t in targets if CHIP_OF.get(t) == "loihi2"
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
