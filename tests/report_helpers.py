"""Report pages and perf.json documents for the report tests (tests/unit/report,
tests/func): hostile names, a measured engine, accuracy with and without histograms."""

from __future__ import annotations

import numpy as np

from trtops.gate.compare import compare_arrays
from trtops.outcome import EngineOutcome
from trtops.report.page import EngineView, PerfView, ReportPage
from trtops.spec import ToleranceSpec

HOSTILE = "<script>alert(1)</script>"
BIDI = "evil\u202eexe.onnx"


def outcome(model: str, status: str, *, precision: str = "fp16", target: str = "lab",
            **extra) -> EngineOutcome:
    return EngineOutcome(id=f"vision/{model}/{precision}/{target}", manifest="manifests/vision.yaml",
                         line=7, model=model, precision=precision, target=target,
                         action=extra.pop("action", "build"), status=status, **extra)


def accuracy(name: str = "logits", offset: float = 1e-3, *, histogram: bool = True) -> dict:
    ref = np.linspace(-1, 1, 512).astype(np.float32)
    check = compare_arrays(name, ref, ref + np.float32(offset),
                           ToleranceSpec(atol=1e-2, rtol=1e-2, stat="median")).to_json()
    if not histogram:
        del check["abs_histogram"]
    return {"schema": 1, "state": "accepted", "passed": True, "summary": "accuracy: passed",
            "cases": [{"label": "profile0/opt", "profile": 0, "shapes": {"x": [1, 512]},
                       "passed": True, "error": None, "outputs": [check]}]}


def perf(label: str = "opt", *, baseline: float | None = 1.0, passed: bool = True,
         reasons: tuple[str, ...] = ()) -> PerfView:
    """The view of a two-case perf.json written by the gate's own writer; ``baseline``: the
    previous engine's median of ``label`` (``big`` gets 4.4 ms); ``reasons``: failed checks."""
    from trtops.perf.document import perf_document
    from trtops.perf.judge import Baseline, BaselineCase, Check, Verdict, compare

    body = {
        "gpu": {"name": "NVIDIA H100 80GB HBM3", "driver": "550.54", "sm_clock_mhz": 1980,
                "temperature_c": 41},
        "tensorrt": "10.13.3.9",
        "cases": [{"label": label, "shapes": {"x": [8, 3, 224, 224]}, "batch": 8, "cuda_graph": True,
                   "iterations": 200,
                   "latency_ms": {"median": 1.2, "p90": 1.3, "p99": 1.6, "mean": 1.25, "min": 1.1},
                   "gpu_ms": {"median": 1.1, "p90": 1.2, "p99": 1.4, "mean": 1.15, "min": 1.0},
                   "throughput": 6666.7, "repeat_medians_ms": [1.2, 1.21], "cv": 0.008},
                  {"label": "big", "shapes": {"x": [32, 3, 224, 224]}, "batch": 32,
                   "cuda_graph": False, "iterations": 200,
                   "latency_ms": {"median": 4.0, "p90": 4.4, "p99": 5.0, "mean": 4.1, "min": 3.9},
                   "gpu_ms": {}, "throughput": 8000.0, "repeat_medians_ms": [4.0], "cv": 0.01}]}
    previous = None if baseline is None else Baseline(
        key="cd" * 32, source="cache", gpu="NVIDIA H100 80GB HBM3", tensorrt="10.12.0.36",
        measured_at="2026-11-01T10:00:00Z",
        cases={label: BaselineCase(baseline, 0.008), "big": BaselineCase(4.4, 0.01)})
    # the regression checks the gate makes of both cases (max_regression 25%: both pass)
    checks = [] if previous is None else [
        compare(case["label"], case["latency_ms"]["median"], case["cv"],
                previous.cases[case["label"]], 0.25) for case in body["cases"]]
    checks += [Check(case=label, kind="max_latency_ms", limit=1.0, value=1.2, passed=False,
                     message=reason) for reason in reasons]
    verdict = Verdict(passed=passed and not reasons, gated=True, checks=checks, baseline=previous,
                      summary="; ".join(reasons))
    view = PerfView.from_json(perf_document(
        body, {"warmup": 20, "iterations": 200, "repeats": 5, "cuda_graph": "auto"}, verdict,
        measured_at="2026-12-01T10:00:00Z"))
    assert view is not None
    return view


def page(*engines: EngineView, command: str = "apply") -> ReportPage:
    return ReportPage(command=command, generated_at="2026-12-06T09:00:00Z", machine="ci-1 (Linux)",
                      platform="NVIDIA H100 (cc 9.0), TensorRT 10.13.3.9", version="0.1.0",
                      cache="/tmp/cache", engines=list(engines), exit_code=0, seconds=3.2)


def hostile_page() -> ReportPage:
    evil = outcome(HOSTILE, "built", precision="fp16", target=BIDI, key="ab" * 32,
                   message=f'output "{HOSTILE}" <img src=x onerror=alert(2)>',
                   details=HOSTILE)
    evil.id = f"{HOSTILE}/{HOSTILE}/fp16/{BIDI}"
    hostile_perf = perf(label=HOSTILE, reasons=(f"median of {HOSTILE} 1.2 ms",))
    return page(EngineView(evil, HOSTILE, meta={"tensorrt_version": HOSTILE,
                                                "gpu": {"name": HOSTILE, "compute_capability": "9.0"},
                                                "created_at": BIDI},
                           accuracy=accuracy(name=HOSTILE, offset=0.5), perf=hostile_perf,
                           changes=[HOSTILE, BIDI], notes=[HOSTILE]))


def perf_json(median: float, baseline: dict | None = None, passed: bool = True) -> dict:
    """A perf.json as the performance gate writes it (its own writer, so the schema stays one).

    ``baseline``: ``{"key": ..., "median_ms": ...}`` for the previous engine's opt case.
    """
    from trtops.perf.document import perf_document
    from trtops.perf.judge import Baseline, BaselineCase, Check, Verdict

    stats = {"median": median, "p90": median * 1.1, "p99": median * 1.3, "mean": median, "min": median * 0.9}
    body = {"gpu": {"name": "NVIDIA H200", "driver": "570.86", "sm_clock_mhz": 1980,
                    "mem_clock_mhz": 3201, "temperature_c": 38},
            "tensorrt": "8.6.0",
            "cases": [{"label": "opt", "shapes": {"input": [2, 3, 16, 16]}, "batch": 2,
                       "cuda_graph": True, "iterations": 200, "latency_ms": stats, "gpu_ms": stats,
                       "throughput": 2 / median * 1000, "repeat_medians_ms": [median] * 5, "cv": 0.004}]}
    previous = None if baseline is None else Baseline(
        key=baseline["key"], source="cache", gpu="NVIDIA H200", tensorrt="8.6.0", measured_at=None,
        cases={"opt": BaselineCase(float(baseline["median_ms"]), 0.004)})
    checks = [] if passed else [Check(case="opt", kind="max_latency_ms", limit=0.5, value=median,
                                      passed=False, message=f"median {median} ms > budget 0.5 ms")]
    verdict = Verdict(passed=passed, gated=True, summary="" if passed else checks[0].message,
                      checks=checks, notes=[], baseline=previous)
    return perf_document(body, {"warmup": 20, "iterations": 200, "repeats": 5, "cuda_graph": "auto"},
                         verdict, measured_at="2026-12-06T09:00:00Z")