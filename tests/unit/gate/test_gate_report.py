"""AccuracyReport: accuracy.json schema, round trip, worst outputs, CLI summary."""

from __future__ import annotations

import json
import re

import numpy as np

from trtops.gate.compare import compare_outputs
from trtops.gate.report import (
    AccuracyReport,
    CaseResult,
    tolerance_from_json,
    tolerance_to_json,
)
from trtops.spec import ToleranceSpec

TOL = ToleranceSpec(atol=0.1, rtol=0.0, stat="median", outputs=(
    ("mask", ToleranceSpec(atol=0.0, rtol=0.0, stat="quantile", quantile=0.9)),))

OUTPUT_KEYS = {"name", "passed", "max_abs", "mean_abs", "median_abs", "max_rel", "mean_rel",
               "median_rel", "cosine", "stat", "atol", "rtol", "elements", "mismatches",
               "nonfinite", "excess", "shape", "abs_histogram"}


def case(label, profile, offset, mask_nan=False):
    ref = {"logits": np.zeros((2, 4), np.float32), "mask": np.ones((2, 3), np.float32)}
    cand = {"logits": ref["logits"] + offset, "mask": ref["mask"].copy()}
    if mask_nan:
        cand["mask"][0, 0] = np.nan
    return CaseResult(label, profile, {"x": (2, 8)}, compare_outputs(ref, cand, TOL))


def report(*cases):
    return AccuracyReport(precision="fp16", reference="onnxruntime 1.17.1 (CPUExecutionProvider)",
                          tolerance=TOL, cases=list(cases),
                          inputs={"kind": "generated", "seed": 1, "ranges": {}, "iterations": 1},
                          candidate="tensorrt 8.6.0")


def test_json_schema():
    data = report(case("profile0/min", 0, 0.01), case("profile0/max", 0, 0.5)).to_json()
    assert set(data) == {"schema", "state", "summary", "checked_at", "passed", "skipped",
                         "precision", "reference", "candidate", "inputs", "tolerances", "counts",
                         "cases", "worst"}
    assert data["schema"] == 1 and data["passed"] is False and data["skipped"] is False
    assert data["state"] == "rejected"
    assert data["summary"].startswith("accuracy: FAILED (fp16 vs onnxruntime") and "\n" not in data["summary"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", data["checked_at"])
    assert data["precision"] == "fp16" and data["candidate"] == "tensorrt 8.6.0"
    assert data["counts"] == {"cases": 2, "checks": 4, "failed": 1}
    assert data["tolerances"] == {
        "atol": 0.1, "rtol": 0.0, "stat": "median",
        "outputs": {"mask": {"atol": 0.0, "rtol": 0.0, "stat": "quantile", "quantile": 0.9}},
    }
    first = data["cases"][0]
    assert set(first) == {"label", "profile", "shapes", "passed", "error", "outputs"}
    assert first["shapes"] == {"x": [2, 8]} and first["passed"] is True
    logits, mask = first["outputs"]
    assert set(logits) == OUTPUT_KEYS
    assert set(mask) == OUTPUT_KEYS | {"quantile", "quantile_abs", "quantile_rel"}
    assert mask["stat"] == "quantile" and mask["atol"] == 0.0  # the override, as used
    worst = data["worst"][0]
    assert (worst["label"], worst["name"], worst["passed"]) == ("profile0/max", "logits", False)
    assert len(data["worst"]) == 4


def test_bytes_are_strict_json_even_with_nan_outputs():
    r = report(case("profile0/min", 0, 0.0, mask_nan=True))
    raw = r.to_bytes()
    assert raw.endswith(b"\n")
    data = json.loads(raw)  # strict: NaN would not even be written (allow_nan=False)
    mask = data["cases"][0]["outputs"][1]
    assert mask["passed"] is False and mask["max_abs"] is None and mask["nonfinite"] == 1
    assert mask["excess"] is None


def test_round_trip():
    r = report(case("profile0/min", 0, 0.01), case("profile1/opt", 1, 0.5, mask_nan=True))
    r.cases.append(CaseResult("profile1/max", 1, {"x": (64, 8)}, error="out of memory"))
    back = AccuracyReport.from_json(json.loads(r.to_bytes()))
    assert back.to_json() == r.to_json()
    assert back.tolerance == TOL
    assert not back.passed and back.cases[2].error == "out of memory"


def test_tolerance_json_round_trip():
    assert tolerance_from_json(tolerance_to_json(TOL)) == TOL
    plain = ToleranceSpec(1e-3, 1e-3, "elemwise")
    assert tolerance_to_json(plain) == {"atol": 1e-3, "rtol": 1e-3, "stat": "elemwise"}


def test_worst_ranks_failures_first_by_excess():
    r = report(case("a", 0, 0.2), case("b", 0, 0.05), case("c", 0, 0.9))
    worst = [(c.label, o.name, o.passed) for c, o in r.worst(3)]
    assert worst[:2] == [("c", "logits", False), ("a", "logits", False)]
    assert worst[2][2] is True


def test_summary_when_passing():
    lines = report(case("profile0/min", 0, 0.01), case("profile0/max", 0, 0.05)).summary_lines()
    assert lines[0] == ("accuracy: passed (fp16 vs onnxruntime 1.17.1 (CPUExecutionProvider)): "
                        "4 output checks over 2 input sets")
    assert lines[1].startswith("  closest to tolerance: profile0/max 'logits': median abs 0.05 <= atol 0.1")


def test_summary_when_failing_lists_the_worst_and_engine_errors():
    r = report(case("profile0/min", 0, 0.2), case("profile0/opt", 0, 0.9), case("profile0/max", 0, 0.3))
    r.cases.append(CaseResult("profile1/max", 1, {"x": (64, 8)}, error="CUDA out of memory"))
    lines = r.summary_lines(n=3)
    assert lines[0] == ("accuracy: FAILED (fp16 vs onnxruntime 1.17.1 (CPUExecutionProvider)): "
                        "4 of 7 checks failed")
    assert lines[1] == "  profile1/max: engine failed to run: CUDA out of memory"
    assert lines[2].startswith("  profile0/opt 'logits': median abs 0.9 > atol 0.1")
    assert lines[3].startswith("  profile0/max 'logits'")
    assert lines[4] == "  ... and 1 more (see accuracy.json)"


def test_state_for_the_cache():
    assert report(case("a", 0, 0.0)).state == "accepted"
    assert report(case("a", 0, 0.9)).state == "rejected"
    skipped = AccuracyReport(precision="fp16", reference="", tolerance=TOL, cases=[], skipped=True)
    assert skipped.state == "unverified" and skipped.passed
    assert skipped.to_json()["summary"] == "accuracy: skipped (fp16: accuracy.enabled is false)"


def test_no_cases_is_not_a_pass():
    r = report()
    assert not r.passed
    assert "no input sets" in r.summary_lines()[0]


def test_to_error_is_exit_code_4_with_the_worst_outputs():
    from trtops.errors import AccuracyError, ExitCode

    r = report(case("profile0/min", 0, 0.2), case("profile0/opt", 0, 0.9))
    error = r.to_error("m/resnet/fp16/lab")
    assert isinstance(error, AccuracyError) and error.exit_code == ExitCode.ACCURACY_FAILED
    lines = error.render().splitlines()
    assert lines[0].startswith("error: m/resnet/fp16/lab: accuracy FAILED (fp16 vs onnxruntime")
    assert lines[1].startswith("  profile0/opt 'logits': median abs 0.9 > atol 0.1")
    assert lines[2].startswith("  profile0/min 'logits'")
    assert "accuracy.tolerances.fp16" in error.hint and "rejected" in error.hint
