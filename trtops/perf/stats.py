"""Statistics of timing samples: percentiles, the summary perf.json keeps, the spread of
repeated runs and throughput. Pure (no numpy: a few thousand floats per case).

Percentiles interpolate linearly between the closest ranks (numpy's default ``linear``
method), so p50 of an even count is the usual median and p99 of 100 samples is not the
maximum.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence

# The keys of every latency summary (``latency_ms``, ``gpu_ms``), in the order reports show them.
SUMMARY_KEYS = ("median", "p90", "p99", "mean", "min")


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) of ``values``, linear between the closest ranks.

    Raises:
        ValueError: no values, or ``q`` outside 0..100.
    """
    if not values:
        raise ValueError("percentile of no values")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile must be within 0..100, got {q}")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    fraction = position - low
    return ordered[low] + (ordered[high] - ordered[low]) * fraction


def summarize(values: Sequence[float]) -> dict[str, float]:
    """``{"median", "p90", "p99", "mean", "min"}`` of the samples (same unit as the input).

    Raises:
        ValueError: no values.
    """
    if not values:
        raise ValueError("summary of no values")
    return {
        "median": percentile(values, 50.0),
        "p90": percentile(values, 90.0),
        "p99": percentile(values, 99.0),
        "mean": math.fsum(values) / len(values),
        "min": min(values),
    }


def coefficient_of_variation(values: Sequence[float]) -> float:
    """Sample standard deviation over the mean: how far repeated medians disagree (0.01 =
    1%). 0.0 for fewer than two values or a zero mean (nothing to compare)."""
    if len(values) < 2:
        return 0.0
    mean = math.fsum(values) / len(values)
    if mean == 0:
        return 0.0
    return statistics.stdev(values) / abs(mean)


def throughput(batch: int, median_ms: float) -> float:
    """Inferences per second: ``batch`` items every ``median_ms`` milliseconds.

    Raises:
        ValueError: a latency that is not positive (a timer cannot measure that).
    """
    if not median_ms > 0:
        raise ValueError(f"latency must be positive to give a throughput, got {median_ms} ms")
    return batch / (median_ms / 1000.0)


def batch_size(shapes: Mapping[str, Sequence[int]]) -> int:
    """The batch of one call: the leading dimension of the first input that has one (1 when
    every input is a scalar). Inputs are taken in the mapping's order, the engine's."""
    for dims in shapes.values():
        if len(dims) > 0:
            return max(int(dims[0]), 0)
    return 1


def round_summary(summary: Mapping[str, float], digits: int = 5) -> dict[str, float]:
    """A summary with every value rounded (milliseconds to 10 ns by default), for JSON."""
    return {key: round(float(value), digits) for key, value in summary.items()}


__all__ = [
    "SUMMARY_KEYS",
    "batch_size",
    "coefficient_of_variation",
    "percentile",
    "round_summary",
    "summarize",
    "throughput",
]
