"""A compact histogram of an output's absolute errors, stored in ``accuracy.json`` so that
reports can plot the error distribution against the tolerance without the arrays.

``abs_histogram`` (per output of each input set)::

    {"log10_min": -7.0, "log10_max": -1.0, "counts": [20 ints], "zeros": 3}

The bins are :data:`BINS` equal steps of ``log10|error|`` from ``10**log10_min`` to
``10**log10_max`` (whole decades, widened to include ``atol`` so the tolerance can be
drawn on the same axis); ``zeros`` counts exact matches (no log), and the output's
``nonfinite`` counts the NaN/inf differences. A few hundred bytes per output, whatever the
output's size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

BINS = 20
# Below this an absolute error is rounding noise of float64 itself; the axis never starts
# lower, so one denormal difference cannot stretch it over 300 decades.
FLOOR_LOG10 = -12


@dataclass(frozen=True)
class ErrorHistogram:
    """Counts of |error| in log-spaced bins (see the module docstring)."""

    log10_min: float
    log10_max: float
    counts: tuple[int, ...]
    zeros: int

    def edges(self) -> list[float]:
        """The ``len(counts) + 1`` bin edges, in error units."""
        step = (self.log10_max - self.log10_min) / max(len(self.counts), 1)
        return [10 ** (self.log10_min + i * step) for i in range(len(self.counts) + 1)]

    def to_json(self) -> dict[str, Any]:
        return {"log10_min": self.log10_min, "log10_max": self.log10_max,
                "counts": list(self.counts), "zeros": self.zeros}

    @classmethod
    def from_json(cls, data: Any) -> ErrorHistogram | None:
        """The histogram of an ``abs_histogram`` document; None when absent (older files)."""
        if not isinstance(data, dict) or not isinstance(data.get("counts"), list):
            return None
        return cls(float(data["log10_min"]), float(data["log10_max"]),
                   tuple(int(c) for c in data["counts"]), int(data.get("zeros", 0)))


def abs_error_histogram(absdiff: np.ndarray, atol: float, bins: int = BINS) -> ErrorHistogram:
    """The histogram of ``absdiff`` (the gate's ``|candidate - reference|``).

    Args:
        absdiff: Absolute differences (any shape; NaN/inf are left out: ``nonfinite``
            counts them).
        atol: The output's absolute tolerance; the axis always reaches it.
        bins: How many log-spaced bins.

    Returns:
        The histogram; all counts zero (and a one-decade axis around ``atol``) when every
        finite difference is zero.
    """
    flat = np.asarray(absdiff, dtype=np.float64).ravel()
    finite = flat[np.isfinite(flat)]
    positive = finite[finite > 0]
    zeros = int(finite.size - positive.size)
    marks = [math.log10(atol)] if atol > 0 else []
    if positive.size:
        marks += [math.log10(float(positive.min())), math.log10(float(positive.max()))]
    if not marks:
        marks = [FLOOR_LOG10 / 2]
    low = max(math.floor(min(marks)), FLOOR_LOG10)
    high = max(math.ceil(max(marks)), low + 1)
    counts = np.zeros(bins, dtype=np.int64)
    if positive.size:
        logs = np.log10(positive)
        index = np.floor((logs - low) / (high - low) * bins).astype(np.int64)
        counts = np.bincount(np.clip(index, 0, bins - 1), minlength=bins)
    return ErrorHistogram(float(low), float(high), tuple(int(c) for c in counts), zeros)
