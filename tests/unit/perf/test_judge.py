"""The performance verdict (trtops.perf.judge): budgets at the opt cases, the noise-aware
regression rule, baselines from another GPU or the same engine, the messages' numbers, and
re-judging a stored perf.json under new limits."""

from __future__ import annotations

import pytest

from trtops.perf.cases import is_opt, measure_cases
from trtops.perf.document import perf_document, perf_summary, rejudge, short_text
from trtops.perf.judge import (
    LAST_MEASUREMENT,
    Baseline,
    BaselineCase,
    compare,
    format_ms,
    judge,
)
from trtops.spec import PerformanceSpec, make_engine_spec


def _case(label: str, median: float, cv: float = 0.01, batch: int = 1,
          shapes: dict | None = None) -> dict:
    stats = {"median": median, "p90": median * 1.1, "p99": median * 1.2, "mean": median,
             "min": median * 0.9}
    return {"label": label, "shapes": shapes if shapes is not None else {"input": [batch, 3, 16, 16]},
            "batch": batch, "cuda_graph": False, "iterations": 200, "latency_ms": stats,
            "gpu_ms": stats, "throughput": batch / median * 1000.0,
            "repeat_medians_ms": [median] * 5, "cv": cv}


def _perf(*cases: dict, gpu: str = "NVIDIA H100") -> dict:
    return {"gpu": {"name": gpu, "driver": None, "sm_clock_mhz": None, "mem_clock_mhz": None,
                    "temperature_c": None}, "tensorrt": "10.13.3.9", "cases": list(cases)}


def _baseline(median: float, cv: float = 0.01, gpu: str = "NVIDIA H100", label: str = "opt",
              key: str = "a" * 64) -> Baseline:
    return Baseline(key=key, source="cache", gpu=gpu,
                    cases={label: BaselineCase(median, cv, {"input": [1, 3, 16, 16]})})


def test_no_limits_measures_and_passes():
    verdict = judge(_perf(_case("opt", 1.5)), PerformanceSpec(), None)
    assert verdict.passed and verdict.state == "measured" and not verdict.gated
    assert verdict.summary == "performance: opt 1.50 ms, 667/s"


def test_latency_budget_fails_over_and_passes_within():
    limits = PerformanceSpec(max_latency_ms=1.0)
    over = judge(_perf(_case("opt", 1.5)), limits, None)
    assert not over.passed and over.state == "failed"
    assert over.failures == ["opt: median 1.50 ms over the budget of 1.00 ms"]
    within = judge(_perf(_case("opt", 0.8)), limits, None)
    assert within.passed and within.state == "passed"


def test_throughput_budget():
    verdict = judge(_perf(_case("opt", 2.0, batch=4)), PerformanceSpec(min_throughput=3000), None)
    assert verdict.failures == ["opt: 2,000 inferences/s below the minimum of 3,000"]
    assert judge(_perf(_case("opt", 2.0, batch=4)), PerformanceSpec(min_throughput=1500), None).passed


def test_budgets_apply_to_opt_cases_only():
    perf = _perf(_case("opt", 0.5), _case("big", 9.0, shapes={"input": [8, 3, 16, 16]}))
    assert judge(perf, PerformanceSpec(max_latency_ms=1.0), None).passed
    assert is_opt("opt") and is_opt("profile1.opt") and not is_opt("big")


def test_regression_beyond_limit_and_noise_fails_with_the_numbers():
    verdict = judge(_perf(_case("opt", 1.82, cv=0.011)), PerformanceSpec(max_regression=0.1),
                    _baseline(1.51, cv=0.005))
    assert not verdict.passed
    assert verdict.failures == [
        "opt: median 1.82 ms vs 1.51 ms before (+20.5%, limit 10%, spread +/-1.1%)"]
    assert verdict.to_json()["baseline"]["key"] == "a" * 64


def test_slowdown_within_limit_passes():
    verdict = judge(_perf(_case("opt", 1.55)), PerformanceSpec(max_regression=0.1), _baseline(1.5))
    assert verdict.passed and verdict.state == "passed"
    assert "(+3.3% vs aaaaaaaaaaaa)" in verdict.summary


def test_the_summary_names_the_engine_compared_with_and_the_lock_when_it_stood_in():
    locked = Baseline(key="b" * 64, source="lock", gpu="NVIDIA H100",
                      cases={"opt": BaselineCase(1.5, 0.01)})
    slower = judge(_perf(_case("opt", 1.8)), PerformanceSpec(max_regression=0.1), locked)
    assert slower.summary == ("performance: opt: median 1.80 ms vs 1.50 ms before (+20%, limit "
                              "10%, spread +/-1%) (before: bbbbbbbbbbbb in the lock)")
    assert "(+3.3% vs bbbbbbbbbbbb in the lock)" in judge(
        _perf(_case("opt", 1.55)), PerformanceSpec(max_regression=0.1), locked).summary
    # from the cache: its key alone; a budget failure names no baseline
    cached = judge(_perf(_case("opt", 1.8)), PerformanceSpec(max_regression=0.1), _baseline(1.5))
    assert cached.summary.endswith("(before: aaaaaaaaaaaa)")
    over = judge(_perf(_case("opt", 1.55)), PerformanceSpec(max_regression=0.1, max_latency_ms=1.0),
                 locked)
    assert "before:" not in over.summary


def test_slowdown_over_limit_but_within_noise_passes():
    # +15% over a 10% limit, but the measurements themselves vary by 8%: 3 x 8% of 1.15 ms
    # is more than the 0.15 ms difference.
    check = compare("opt", 1.15, 0.08, BaselineCase(1.0, 0.02), 0.1)
    assert check.passed and check.message.endswith(": within the measured noise")
    assert not compare("opt", 1.15, 0.01, BaselineCase(1.0, 0.01), 0.1).passed


def test_faster_engine_is_no_regression():
    check = compare("opt", 0.9, 0.01, BaselineCase(1.0, 0.01), 0.1)
    assert check.passed and "(-10%, limit 10%" in check.message


def test_other_gpu_or_same_engine_is_not_compared():
    limits = PerformanceSpec(max_regression=0.1)
    other = judge(_perf(_case("opt", 9.0)), limits, _baseline(1.0, gpu="NVIDIA L4"))
    assert other.passed and other.notes == ["no comparison: the previous engine was measured on NVIDIA L4"]
    same = judge(_perf(_case("opt", 9.0)), limits, _baseline(1.0), key="a" * 64)
    assert same.passed and "same engine" in same.notes[0]
    bench = Baseline(key="a" * 64, source=LAST_MEASUREMENT, gpu="NVIDIA H100",
                     cases={"opt": BaselineCase(1.0, 0.01)})
    assert not judge(_perf(_case("opt", 9.0)), limits, bench, key="a" * 64).passed


def test_no_baseline_is_a_note_and_changed_shapes_are_not_compared():
    limits = PerformanceSpec(max_regression=0.1)
    alone = judge(_perf(_case("opt", 9.0)), limits, None)
    assert alone.passed and alone.notes == ["no previous engine measured on this GPU to compare with"]
    moved = judge(_perf(_case("opt", 9.0, shapes={"input": [2, 3, 16, 16]})), limits, _baseline(1.0))
    assert moved.passed and moved.notes == ["opt: not compared (its shapes changed)"]


def test_cases_missing_from_the_baseline_are_skipped():
    perf = _perf(_case("opt", 1.0), _case("b8", 5.0, shapes={"input": [8, 3, 16, 16]}))
    verdict = judge(perf, PerformanceSpec(max_regression=0.1), _baseline(1.0))
    assert [c.case for c in verdict.checks] == ["opt"]


def test_stored_document_is_judged_again_under_new_limits():
    perf = _perf(_case("opt", 1.3))
    verdict = judge(perf, PerformanceSpec(max_regression=0.5), _baseline(1.0))
    document = perf_document(perf, PerformanceSpec().settings(), verdict)
    assert verdict.passed and document["schema"] == 1 and document["verdict"]["state"] == "passed"
    tighter = rejudge(document, PerformanceSpec(max_regression=0.1))
    assert not tighter.passed and "+30%" in tighter.failures[0]
    summary = perf_summary(document, tighter)
    assert summary["state"] == "failed" and summary["latency_ms"] == 1.3
    assert summary["cases"] == {"opt": {"median_ms": 1.3, "cv": 0.01}}
    assert short_text(summary) == "1.30ms 769/s"


@pytest.mark.parametrize("value, text", [(152.3, "152"), (15.23, "15.2"), (1.523, "1.52"),
                                         (0.1523, "0.15"), (0.01523, "0.015")])
def test_format_ms(value, text):
    assert format_ms(value) == text


def test_measure_cases_one_per_profile_then_named_shapes(tmp_path):
    spec = make_engine_spec(
        tmp_path / "m.onnx", profiles=[{"input": ([1, 3, 8, 8], [2, 3, 8, 8], [4, 3, 8, 8])},
                                       {"input": ([8, 3, 8, 8], [8, 3, 8, 8], [16, 3, 8, 8])}],
        performance=PerformanceSpec(shapes=(("b1", (("input", (1, 3, 8, 8)),)),)))
    io = {"tensors": [{"name": "input", "mode": "input", "shape": [-1, 3, 8, 8]},
                      {"name": "scale", "mode": "input", "shape": [1]}]}
    assert measure_cases(spec, io) == [
        {"label": "profile0.opt", "shapes": {"scale": [1], "input": [2, 3, 8, 8]}},
        {"label": "profile1.opt", "shapes": {"scale": [1], "input": [8, 3, 8, 8]}},
        {"label": "b1", "shapes": {"scale": [1], "input": [1, 3, 8, 8]}},
    ]
    static = make_engine_spec(tmp_path / "m.onnx")
    assert measure_cases(static, io) == [{"label": "opt", "shapes": {"scale": [1]}}]


@pytest.mark.parametrize("case", [{"median_ms": "nan"}, {"median_ms": "inf", "cv": 0.01},
                                  {"median_ms": float("nan")}, {"median_ms": 1.0, "cv": "1e999"},
                                  {"median_ms": True}, {"cv": 0.1}, [1.0]])
def test_a_recorded_baseline_case_must_be_finite_numbers(case):
    # The lock and a perf.json's verdict.baseline are read through this one parser; a NaN
    # baseline made the new verdict unwritable (ValueError from json, exit 70).
    with pytest.raises((ValueError, KeyError)):
        BaselineCase.from_json(case)
    assert BaselineCase.from_json({"median_ms": 2, "cv": 0.01}) == BaselineCase(2.0, 0.01)



@pytest.mark.parametrize("median", ["nan", "Infinity", 1.5])
def test_a_lock_baseline_that_is_not_a_finite_number_is_not_compared_with(tmp_path, median):
    # A hand-edited (or hostile) lock: "nan" once became a NaN baseline, and the new
    # engine's perf.json could not be written (exit 70).
    from trtops.keys.canonical import sha256_json
    from trtops.keys.engine_key import key_components, key_of
    from trtops.lockfile import LockEntry, LockPlatform, LockSection, write_section
    from trtops.ops.perf_gate import baseline_from_lock

    gpu = "NVIDIA H100 80GB HBM3"
    components = key_components(model_digest=sha256_json("m"), build={"precision": "fp16"},
                                tensorrt="10.13.3.9", gpu="cc9.0-nvidia-h100-80gb-hbm3")
    old = LockEntry(key=key_of(components), components=components,
                    engine={"sha256": sha256_json("engine"), "size": 10},
                    accuracy={"state": "accepted"}, built_at="2025-01-01T00:00:00+00:00",
                    performance={"cases": {"opt": {"median_ms": median, "cv": 0.01}}})
    lock = tmp_path / "trtops.lock"
    write_section(lock, LockSection(LockPlatform(gpu, "9.0", "10.13.3.9"), {"m/conv/fp16/lab": old}))
    found = baseline_from_lock(lock, "m/conv/fp16/lab", "f" * 64, gpu)
    if median == 1.5:
        assert found is not None and found.cases["opt"].median_ms == 1.5
    else:
        assert found is None


def test_an_engine_that_failed_its_performance_gate_is_no_baseline(tmp_path):
    # exit 6 still publishes the (accurate) engine and the lock records it; comparing the
    # next build with it would let every slow release pass the one after it.
    from trtops.keys.canonical import sha256_json
    from trtops.keys.engine_key import key_components, key_of
    from trtops.lockfile import LockEntry, LockPlatform, LockSection, write_section
    from trtops.ops.perf_gate import baseline_from_lock

    gpu = "NVIDIA H100 80GB HBM3"
    components = key_components(model_digest=sha256_json("m"), build={"precision": "fp16"},
                                tensorrt="10.13.3.9", gpu="cc9.0-nvidia-h100-80gb-hbm3")

    def lock_with(state):
        entry = LockEntry(key=key_of(components), components=components,
                          engine={"sha256": sha256_json("engine"), "size": 10},
                          accuracy={"state": "accepted"}, built_at="2025-01-01T00:00:00+00:00",
                          performance={"state": state, "cases": {"opt": {"median_ms": 9.0, "cv": 0.01}}})
        lock = tmp_path / state / "trtops.lock"
        write_section(lock, LockSection(LockPlatform(gpu, "9.0", "10.13.3.9"), {"m/conv/fp16/lab": entry}))
        return lock

    assert baseline_from_lock(lock_with("failed"), "m/conv/fp16/lab", "f" * 64, gpu) is None
    assert baseline_from_lock(lock_with("passed"), "m/conv/fp16/lab", "f" * 64, gpu) is not None
