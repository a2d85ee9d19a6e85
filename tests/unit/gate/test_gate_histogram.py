"""The |error| histogram the gate stores per output (trtops.gate.histogram)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from trtops.cache.entry_schema import EntryInvalid, check_accuracy
from trtops.gate.compare import OutputResult, compare_arrays
from trtops.gate.histogram import BINS, FLOOR_LOG10, ErrorHistogram, abs_error_histogram
from trtops.spec import ToleranceSpec


def test_counts_every_finite_error_once_in_log_bins_and_zeros_apart():
    errors = np.array([0.0, 0.0, 1e-5, 3e-5, 1e-3, 0.5, np.nan, np.inf])
    hist = abs_error_histogram(errors, atol=1e-2)
    assert (hist.log10_min, hist.log10_max) == (-5.0, 0.0)  # whole decades, atol inside
    assert len(hist.counts) == BINS and sum(hist.counts) == 4 and hist.zeros == 2
    edges = hist.edges()
    assert len(edges) == BINS + 1 and edges[0] == pytest.approx(1e-5) and edges[-1] == pytest.approx(1.0)
    for value in (1e-5, 3e-5, 1e-3, 0.5):  # each in the bin whose edges hold it
        index = next(i for i in range(BINS) if edges[i] <= value * (1 + 1e-12) < edges[i + 1])
        assert hist.counts[index] >= 1


def test_the_axis_reaches_the_tolerance_even_when_every_error_is_far_below_it():
    hist = abs_error_histogram(np.array([1e-9, 2e-9]), atol=0.1)
    assert hist.log10_min == -9.0 and hist.log10_max == -1.0


def test_exact_match_gives_empty_bins_and_tiny_errors_stop_at_the_floor():
    same = abs_error_histogram(np.zeros(10), atol=1e-3)
    assert sum(same.counts) == 0 and same.zeros == 10 and same.log10_min < same.log10_max
    tiny = abs_error_histogram(np.array([1e-300, 1e-2]), atol=0.0)
    assert tiny.log10_min == FLOOR_LOG10 and sum(tiny.counts) == 2


def test_compare_stores_it_and_it_round_trips_through_accuracy_json():
    ref = np.linspace(-1, 1, 1000).astype(np.float32)
    cand = ref + np.float32(1e-3)
    result = compare_arrays("y", ref, cand, ToleranceSpec(atol=1e-2, rtol=0.0, stat="max"))
    assert result.abs_histogram is not None and sum(result.abs_histogram.counts) + \
        result.abs_histogram.zeros == 1000
    data = json.loads(json.dumps(result.to_json()))
    assert OutputResult.from_json(data) == result
    document = {"schema": 1, "state": "accepted", "cases": [
        {"label": "opt", "profile": 0, "outputs": [data]}]}
    check_accuracy(document)


def test_old_accuracy_json_without_it_reads_back_with_none():
    ref = np.ones(4, np.float32)
    data = compare_arrays("y", ref, ref, ToleranceSpec(atol=1e-3, rtol=0.0, stat="max")).to_json()
    del data["abs_histogram"]
    assert OutputResult.from_json(data).abs_histogram is None
    assert ErrorHistogram.from_json(None) is None


@pytest.mark.parametrize("histogram", [
    {"log10_min": -3, "log10_max": -3, "counts": [1]},  # empty axis
    {"log10_min": -3, "log10_max": 0, "counts": [-1, 2]},  # negative count
    {"log10_min": -3, "log10_max": 0, "counts": []},
    {"log10_min": -3, "log10_max": 0, "counts": [1] * 1000},  # too many bins
    {"log10_min": "a", "log10_max": 0, "counts": [1]},
])
def test_the_schema_refuses_a_histogram_no_gate_writes(histogram):
    document = {"schema": 1, "cases": [{"label": "opt", "profile": 0, "outputs": [
        {"name": "y", "passed": True, "abs_histogram": histogram}]}]}
    with pytest.raises(EntryInvalid, match="abs_histogram"):
        check_accuracy(document)
