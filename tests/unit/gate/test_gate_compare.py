"""compare_outputs: statistics, verdict semantics per statistic, NaN/inf, agreement with
Polygraphy's CompareFunc.simple."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from trtops.gate.compare import compare_arrays, compare_outputs, cosine_similarity
from trtops.spec import ToleranceSpec


def tol(atol=1e-5, rtol=1e-5, stat="elemwise", quantile=None, outputs=()):
    return ToleranceSpec(atol=atol, rtol=rtol, stat=stat, quantile=quantile, outputs=tuple(outputs))


def one(ref, cand, tolerance, name="y"):
    return compare_arrays(name, np.asarray(ref), np.asarray(cand), tolerance)


def test_identical_outputs_pass_every_statistic():
    ref = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)
    for stat, q in [("elemwise", None), ("max", None), ("mean", None), ("median", None),
                    ("quantile", 0.9)]:
        result = one(ref, ref.copy(), tol(0.0, 0.0, stat, q))
        assert result.passed, stat
        assert result.max_abs == result.mean_abs == result.median_abs == 0.0
        assert result.max_rel == 0.0
        assert result.cosine == pytest.approx(1.0)
        assert result.mismatches == 0
        assert result.elements == 24
        assert result.shape == (2, 3, 4)


def test_statistics_are_exact():
    ref = np.array([1.0, 2.0, 4.0, -8.0], dtype=np.float32)
    cand = np.array([1.5, 2.0, 4.0, -6.0], dtype=np.float32)
    result = one(ref, cand, tol(stat="quantile", quantile=0.5))
    assert result.max_abs == pytest.approx(2.0)
    assert result.mean_abs == pytest.approx(2.5 / 4)
    assert result.median_abs == pytest.approx(0.25)
    assert result.max_rel == pytest.approx(0.5)
    assert result.mean_rel == pytest.approx((0.5 + 0.25) / 4)
    assert result.median_rel == pytest.approx(0.125)
    assert result.quantile_abs == pytest.approx(0.25)
    assert result.mismatches == 2


def test_elemwise_passes_an_element_within_either_tolerance():
    # element 0: abs 0.5 > atol 0.1 but rel 0.005 <= rtol 0.01 -> ok (large value)
    # element 1: abs 0.05 <= atol 0.1 although rel 5.0 > rtol -> ok (value near 0)
    ref = np.array([100.0, 0.01])
    ok = np.array([100.5, 0.06])
    assert one(ref, ok, tol(0.1, 0.01)).passed
    # element 1 now beyond both
    bad = np.array([100.5, 0.2])
    result = one(ref, bad, tol(0.1, 0.01))
    assert not result.passed and result.mismatches == 1


def test_elemwise_is_not_numpys_allclose():
    # allclose would pass (0.11 <= 0.1 + 0.01*10 = 0.2); Polygraphy semantics do not:
    # abs 0.11 > atol 0.1 and rel 0.011 > rtol 0.01.
    ref, cand = np.array([10.0]), np.array([10.11])
    assert np.allclose(cand, ref, atol=0.1, rtol=0.01)
    assert not one(ref, cand, tol(0.1, 0.01)).passed


@pytest.mark.parametrize(
    "stat,quantile,passed",
    [
        ("elemwise", None, False),  # one element is 1.0 off
        ("max", None, False),  # max abs 1.0 > 0.5
        ("mean", None, True),  # mean abs 0.2
        ("median", None, True),  # median abs 0
        ("quantile", 0.5, True),  # q0.5 = 0
        ("quantile", 0.9, False),  # q0.9 = 0.6 (linear interpolation)
    ],
)
def test_each_statistic_checks_its_own_number(stat, quantile, passed):
    ref = np.full(5, 10.0)
    cand = np.array([10.0, 10.0, 10.0, 10.0, 11.0])
    # rtol 0: only the absolute statistic can pass
    result = one(ref, cand, tol(0.5, 0.0, stat, quantile))
    assert result.passed is passed
    assert (result.excess <= 1) is passed


def test_scalar_statistic_passes_when_relative_error_is_within_rtol():
    ref = np.full(4, 1000.0)
    cand = ref + 1.0  # abs 1 > atol 0.1, rel 0.001 <= rtol 0.01
    assert one(ref, cand, tol(0.1, 0.01, "mean")).passed
    assert not one(ref, cand, tol(0.1, 0.0001, "mean")).passed


def test_quantile_defaults_to_099_when_unset():
    result = one(np.zeros(3), np.zeros(3), tol(stat="quantile"))
    assert result.quantile == 0.99
    assert result.to_json()["quantile"] == 0.99


def test_relative_error_is_relative_to_the_reference():
    result = one(np.array([2.0]), np.array([3.0]), tol())
    assert result.max_rel == pytest.approx(0.5)  # |3-2| / |2|, not / |3|


def test_zero_reference_uses_epsilon_not_nan():
    result = one(np.array([0.0, 0.0]), np.array([0.0, 1e-3]), tol(1e-2, 0.0))
    assert result.passed
    assert math.isfinite(result.max_rel) and result.max_rel > 1e9


def test_nan_in_the_engine_output_always_fails():
    ref = np.ones(8, dtype=np.float32)
    cand = ref.copy()
    cand[3] = np.nan
    for stat in ("elemwise", "max", "mean", "median"):
        result = one(ref, cand, tol(1e9, 1e9, stat))
        assert not result.passed, stat  # NaN propagates into every statistic
        assert result.nonfinite == 1
    data = result.to_json()
    assert data["max_abs"] is None and data["nonfinite"] == 1
    json.dumps(data, allow_nan=False)


def test_nan_in_both_outputs_is_still_a_mismatch():
    ref = np.array([1.0, np.nan])
    assert not one(ref, ref.copy(), tol(1.0, 1.0)).passed


def test_matching_infinities_compare_equal_and_mismatched_ones_fail():
    ref = np.array([-np.inf, 1.0, np.inf], dtype=np.float32)
    assert one(ref, ref.copy(), tol(0.0, 0.0)).passed
    flipped = np.array([np.inf, 1.0, np.inf], dtype=np.float32)
    result = one(ref, flipped, tol(1.0, 1.0))
    assert not result.passed and result.nonfinite == 1
    finite = np.array([-1e30, 1.0, np.inf], dtype=np.float32)
    assert not one(ref, finite, tol(1e9, 1e9)).passed


def test_shape_mismatch_and_missing_output_fail_with_a_reason():
    results = compare_outputs(
        {"a": np.zeros((2, 3)), "b": np.zeros(4)},
        {"a": np.zeros((3, 2))},
        tol(),
    )
    assert [r.passed for r in results] == [False, False]
    assert "shape mismatch" in results[0].reason and "[2, 3]" in results[0].reason
    assert "missing" in results[1].reason
    assert results[0].excess == math.inf
    for r in results:
        assert r.describe() == r.reason
        json.dumps(r.to_json(), allow_nan=False)


def test_extra_engine_outputs_are_ignored_and_order_follows_the_reference():
    results = compare_outputs({"b": np.ones(2), "a": np.ones(2)},
                              {"a": np.ones(2), "b": np.ones(2), "debug": np.zeros(9)}, tol())
    assert [r.name for r in results] == ["b", "a"]


def test_per_output_override():
    tolerance = tol(1e-6, 1e-6, outputs=[("loose", tol(1.0, 1.0, "mean"))])
    ref = {"tight": np.ones(3), "loose": np.ones(3)}
    cand = {"tight": np.ones(3), "loose": np.ones(3) + 0.5}
    tight, loose = compare_outputs(ref, cand, tolerance)
    assert tight.passed and tight.stat == "elemwise" and tight.atol == 1e-6
    assert loose.passed and loose.stat == "mean" and loose.atol == 1.0
    cand["tight"] = np.ones(3) + 0.5
    assert not compare_outputs(ref, cand, tolerance)[0].passed


def test_integer_and_boolean_outputs():
    ids = np.array([5, 2**40 + 1, 7], dtype=np.int64)
    assert one(ids, ids.astype(np.int64), tol(0.0, 0.0)).passed
    # int32 engine output against int64 reference (TensorRT 8.6 narrows int64)
    small = np.array([5, 6, 7], dtype=np.int64)
    assert one(small, small.astype(np.int32), tol(0.0, 0.0)).passed
    result = one(small, np.array([5, 6, 8], dtype=np.int32), tol(0.0, 0.0))
    assert not result.passed and result.max_abs == 1.0
    mask = np.array([True, False, True])
    assert one(mask, mask.copy(), tol(0.0, 0.0)).passed
    result = one(mask, np.array([True, True, True]), tol(0.0, 0.0, "mean"))
    assert not result.passed and result.mean_abs == pytest.approx(1 / 3)


def test_fp16_engine_output_against_fp32_reference():
    ref = np.linspace(-4, 4, 101, dtype=np.float32)
    cand = ref.astype(np.float16)
    assert one(ref, cand, tol(1e-2, 1e-2, "median")).passed
    assert not one(ref, cand, tol(1e-7, 1e-7, "max")).passed


def test_empty_output_passes():
    result = one(np.zeros((0, 4)), np.zeros((0, 4)), tol(0.0, 0.0, "quantile", 0.5))
    assert result.passed and result.elements == 0 and result.cosine == 1.0


def test_cosine_similarity():
    a = np.array([1.0, 0.0])
    assert cosine_similarity(a, a) == pytest.approx(1.0)
    assert cosine_similarity(a, np.array([0.0, 1.0])) == pytest.approx(0.0)
    assert cosine_similarity(a, -a) == pytest.approx(-1.0)
    assert cosine_similarity(np.zeros(3), np.zeros(3)) == 1.0
    assert cosine_similarity(np.zeros(3), np.ones(3)) == 0.0
    big = np.array([3e38, 3e38], dtype=np.float32)
    assert cosine_similarity(big, big) == pytest.approx(1.0)
    # non-finite positions are left out
    assert cosine_similarity(np.array([1.0, np.nan]), np.array([1.0, 5.0])) == pytest.approx(1.0)


def test_describe_mentions_the_checked_statistic_and_tolerances():
    result = one(np.full(4, 10.0), np.array([10, 10, 10, 13.0]), tol(0.5, 0.01, "max"))
    text = result.describe()
    assert "max abs 3 > atol 0.5" in text and "rtol 0.01" in text and "cosine" in text
    text = one(np.full(4, 10.0), np.array([10, 10, 10, 13.0]), tol(0.5, 0.01)).describe()
    assert "1 of 4 elements" in text


# --------------------------------------------------------------------------- Polygraphy


@pytest.mark.parametrize("stat", ["elemwise", "max", "mean", "median", "quantile"])
def test_verdicts_agree_with_polygraphy_compare_func_simple(stat):
    """The same arrays and tolerances give the same verdict as ``polygraphy run`` would."""
    pytest.importorskip("polygraphy")
    from polygraphy import comparator
    from polygraphy.comparator.struct import IterationResult
    from polygraphy.logger import G_LOGGER

    rng = np.random.default_rng(7)
    # SimpleCompareFunc in newer Polygraphy; CompareFunc.simple (0.53) is the same function.
    simple = getattr(comparator, "SimpleCompareFunc", None) or comparator.CompareFunc.simple
    verdicts = []
    for trial in range(40):
        shape = (3, 17)
        ref = (rng.standard_normal(shape) * rng.choice([0.01, 1.0, 100.0])).astype(np.float32)
        noise = rng.standard_normal(shape) * rng.choice([1e-6, 1e-4, 1e-2, 1.0])
        cand = (ref + noise * rng.random(shape)).astype(np.float32)
        if trial % 5 == 0:
            ref[0, :3] = 0.0  # exercise the epsilon path
        atol = float(rng.choice([0.0, 1e-5, 1e-3, 1e-1]))
        rtol = float(rng.choice([0.0, 1e-5, 1e-3, 1e-1]))
        quantile = float(rng.choice([0.5, 0.9, 0.99]))
        ours = compare_outputs({"y": ref}, {"y": cand},
                               tol(atol, rtol, stat, quantile if stat == "quantile" else None))[0]
        func = simple(atol=atol, rtol=rtol, check_error_stat=stat,
                                  error_quantile=quantile, infinities_compare_equal=True)
        with G_LOGGER.verbosity(G_LOGGER.CRITICAL):
            theirs = func(
                IterationResult({"y": cand}, runner_name="engine"),  # runner0: candidate
                IterationResult({"y": ref}, runner_name="reference"),  # runner1: reference
            )
        assert ours.passed == bool(theirs["y"]), (trial, atol, rtol, ours)
        verdicts.append(ours.passed)
    assert any(verdicts) and not all(verdicts)  # both verdicts were exercised
