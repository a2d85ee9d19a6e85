"""trtops.perf.stats: percentiles as numpy computes them, summaries, spread, throughput."""

from __future__ import annotations

import math

import numpy as np
import pytest

from trtops.perf.stats import (
    SUMMARY_KEYS,
    batch_size,
    coefficient_of_variation,
    percentile,
    round_summary,
    summarize,
    throughput,
)


@pytest.mark.parametrize("q", [0, 10, 50, 90, 99, 100])
@pytest.mark.parametrize("n", [1, 2, 7, 100, 1001])
def test_percentile_matches_numpy_linear(q, n):
    values = list(np.random.default_rng(n).gamma(2.0, 1.5, size=n))
    assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)), rel=1e-12)


def test_percentile_of_unsorted_input_and_even_median():
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.5
    assert percentile([5.0], 99) == 5.0


@pytest.mark.parametrize("bad", [-1, 100.5])
def test_percentile_refuses_out_of_range(bad):
    with pytest.raises(ValueError, match="0..100"):
        percentile([1.0], bad)


def test_percentile_and_summary_refuse_no_values():
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        summarize([])


def test_summary_keys_and_order():
    values = [float(v) for v in range(1, 101)]
    summary = summarize(values)
    assert tuple(summary) == SUMMARY_KEYS
    assert summary["median"] == 50.5
    assert summary["p90"] == pytest.approx(90.1)
    assert summary["p99"] == pytest.approx(99.01)
    assert summary["mean"] == 50.5
    assert summary["min"] == 1.0
    assert summary["min"] <= summary["median"] <= summary["p90"] <= summary["p99"]


def test_coefficient_of_variation():
    assert coefficient_of_variation([]) == 0.0
    assert coefficient_of_variation([3.0]) == 0.0
    assert coefficient_of_variation([2.0, 2.0, 2.0]) == 0.0
    assert coefficient_of_variation([0.0, 0.0]) == 0.0
    values = [1.0, 1.02, 0.98, 1.01]
    expected = float(np.std(values, ddof=1) / np.mean(values))
    assert coefficient_of_variation(values) == pytest.approx(expected)


def test_throughput_is_batch_over_median_seconds():
    assert throughput(1, 2.0) == 500.0
    assert throughput(8, 0.5) == 16000.0
    for bad in (0.0, -1.0, math.nan):
        with pytest.raises(ValueError, match="positive"):
            throughput(1, bad)


def test_batch_size_is_the_first_inputs_leading_dim():
    assert batch_size({"input": [4, 3, 32, 32], "mask": [9, 1]}) == 4
    assert batch_size({"scalar": [], "tokens": [2, 128]}) == 2
    assert batch_size({"scalar": []}) == 1
    assert batch_size({}) == 1


def test_round_summary():
    assert round_summary({"median": 0.1234567891, "min": 1 / 3}) == {"median": 0.12346, "min": 0.33333}
