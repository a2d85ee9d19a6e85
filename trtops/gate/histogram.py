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
    # One selection, no copy of every finite value: outputs reach hundreds of MiB.
    positive = flat[(flat > 0) & (flat < np.inf)]  # NaN compares False both ways
    zeros = int(np.count_nonzero(flat == 0))
    marks = [math.log10(atol)] if atol > 0 else []
    if positive.size:
        marks += [math.log10(float(positive.min())), math.log10(float(positive.max()))]
    if not marks:
        marks = [FLOOR_LOG10 / 2]
    low = max(math.floor(min(marks)), FLOOR_LOG10)
    high = max(math.ceil(max(marks)), low + 1)
    histogram = ErrorHistogram(float(low), float(high), (0,) * bins, zeros)
    if not positive.size:
        return histogram
    # Binning by the edges (no log of every element: several times faster on big outputs);
    # errors below the floor count in the first bin, rounding at the top in the last.
    edges = np.asarray(histogram.edges())
    counts, _ = np.histogram(np.clip(positive, edges[0], edges[-1]), bins=edges)
    return ErrorHistogram(float(low), float(high), tuple(int(c) for c in counts), zeros)
