"""Compare an engine's outputs with the reference's, per output, under a tolerance.

Semantics follow Polygraphy's ``CompareFunc.simple`` so that a verdict here agrees with
``polygraphy run model.onnx --trt --onnxrt --atol A --rtol R --check-error-stat S``:

- ``absdiff = |candidate - reference|`` (booleans: ``candidate xor reference``),
  ``reldiff = absdiff / |reference|`` where zeros in the reference are replaced by
  ``2.22e-16`` (Polygraphy's epsilon): the relative error is relative to the *reference*.
- ``elemwise``: an element is a mismatch when it exceeds **both** tolerances
  (``absdiff > atol and reldiff > rtol``); the output passes when no element is a mismatch.
  This is not numpy's ``allclose`` (``absdiff <= atol + rtol*|ref|``): an element passes if
  it is within *either* tolerance, as in Polygraphy.
- ``max`` / ``mean`` / ``median`` / ``quantile``: the chosen statistic of ``absdiff`` and of
  ``reldiff`` is computed over the whole output; the output passes when the absolute
  statistic is ``<= atol`` **or** the relative statistic is ``<= rtol``.
- NaN anywhere in the difference (a NaN in either output) is always a mismatch, as in
  Polygraphy. Matching infinities (same sign in both outputs) compare equal, as with
  Polygraphy's ``infinities_compare_equal=True``: masks that use ``-inf`` are legitimate.
- Outputs of different shapes fail (Polygraphy's default ``check_shapes=True``); an output
  missing from the candidate fails.

Differences are computed in float64 (Polygraphy uses float32 for fp16 outputs); this only
changes the reported numbers in their last digits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from trtops.gate.histogram import ErrorHistogram, abs_error_histogram
from trtops.spec import ToleranceSpec

EPSILON = 2.220446049250313e-16  # Polygraphy's: keeps reldiff finite where the reference is 0
DEFAULT_QUANTILE = 0.99  # Polygraphy's default error_quantile
STATISTICS = ("elemwise", "max", "mean", "median", "quantile")


@dataclass(frozen=True)
class OutputResult:
    """How one output of one input set compared with the reference.

    ``excess`` is the factor by which the tolerance would have to grow for the output to
    pass (``<= 1`` passes; ``inf`` for NaN or a missing/mis-shaped output): it ranks the
    worst outputs across statistics and tolerances.
    """

    name: str
    passed: bool
    stat: str
    atol: float
    rtol: float
    quantile: float | None
    max_abs: float
    mean_abs: float
    median_abs: float
    max_rel: float
    mean_rel: float
    median_rel: float
    quantile_abs: float | None
    quantile_rel: float | None
    cosine: float
    elements: int
    mismatches: int  # elements outside both tolerances (reported for every statistic)
    nonfinite: int  # elements whose difference is NaN or infinite
    excess: float
    shape: tuple[int, ...]
    reason: str | None = None  # why it failed when no numbers could be compared
    # |error| in log-spaced bins, for the report's plot (None: not computed, older files)
    abs_histogram: ErrorHistogram | None = None

    def checked(self) -> tuple[float, float]:
        """The (absolute, relative) statistic the verdict was taken on."""
        if self.stat == "mean":
            return self.mean_abs, self.mean_rel
        if self.stat == "median":
            return self.median_abs, self.median_rel
        if self.stat == "quantile":
            return _or_nan(self.quantile_abs), _or_nan(self.quantile_rel)
        return self.max_abs, self.max_rel  # max and elemwise

    def describe(self) -> str:
        """One human line: what was checked, against what, and by how much it missed."""
        if self.reason:
            return self.reason
        abs_value, rel_value = self.checked()
        stat = self.stat
        if stat == "quantile":
            stat = f"q{self.quantile:g}"
        if self.stat == "elemwise":
            text = (f"{self.mismatches} of {self.elements} elements beyond atol {self.atol:g} "
                    f"and rtol {self.rtol:g} (max abs {_fmt(abs_value)}, max rel {_fmt(rel_value)})")
        else:
            abs_op = "<=" if _within(abs_value, self.atol) else ">"
            rel_op = "<=" if _within(rel_value, self.rtol) else ">"
            text = (f"{stat} abs {_fmt(abs_value)} {abs_op} atol {self.atol:g}, "
                    f"{stat} rel {_fmt(rel_value)} {rel_op} rtol {self.rtol:g}")
        extras = [f"cosine {_fmt_cos(self.cosine)}"]
        if self.nonfinite:
            extras.append(f"{self.nonfinite} NaN/inf differences")
        return f"{text}; {', '.join(extras)}"

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "passed": self.passed,
            "stat": self.stat,
            "atol": self.atol,
            "rtol": self.rtol,
            "max_abs": _json_float(self.max_abs),
            "mean_abs": _json_float(self.mean_abs),
            "median_abs": _json_float(self.median_abs),
            "max_rel": _json_float(self.max_rel),
            "mean_rel": _json_float(self.mean_rel),
            "median_rel": _json_float(self.median_rel),
            "cosine": _json_float(self.cosine),
            "elements": self.elements,
            "mismatches": self.mismatches,
            "nonfinite": self.nonfinite,
            "excess": _json_float(self.excess),
            "shape": list(self.shape),
        }
        if self.stat == "quantile":
            data["quantile"] = self.quantile
            data["quantile_abs"] = _json_float(self.quantile_abs)
            data["quantile_rel"] = _json_float(self.quantile_rel)
        if self.reason is not None:
            data["reason"] = self.reason
        if self.abs_histogram is not None:
            data["abs_histogram"] = self.abs_histogram.to_json()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OutputResult:
        return cls(
            name=data["name"],
            passed=bool(data["passed"]),
            stat=data["stat"],
            atol=float(data["atol"]),
            rtol=float(data["rtol"]),
            quantile=data.get("quantile"),
            max_abs=_from_json_float(data.get("max_abs")),
            mean_abs=_from_json_float(data.get("mean_abs")),
            median_abs=_from_json_float(data.get("median_abs")),
            max_rel=_from_json_float(data.get("max_rel")),
            mean_rel=_from_json_float(data.get("mean_rel")),
            median_rel=_from_json_float(data.get("median_rel")),
            quantile_abs=_from_json_float(data["quantile_abs"]) if "quantile_abs" in data else None,
            quantile_rel=_from_json_float(data["quantile_rel"]) if "quantile_rel" in data else None,
            cosine=_from_json_float(data.get("cosine")),
            elements=int(data.get("elements", 0)),
            mismatches=int(data.get("mismatches", 0)),
            nonfinite=int(data.get("nonfinite", 0)),
            excess=_from_json_float(data.get("excess"), default=math.inf),
            shape=tuple(int(d) for d in data.get("shape", ())),
            reason=data.get("reason"),
            abs_histogram=ErrorHistogram.from_json(data.get("abs_histogram")),
        )


def compare_outputs(
    reference: dict[str, np.ndarray],
    candidate: dict[str, np.ndarray],
    tolerance: ToleranceSpec,
) -> list[OutputResult]:
    """Compare every reference output with the candidate's output of the same name.

    Args:
        reference: Output name -> array from the reference runtime (ONNX Runtime).
        candidate: Output name -> array from the engine under test. Extra outputs are ignored.
        tolerance: The resolved tolerance; per-output overrides are applied by name
            (:meth:`ToleranceSpec.for_output`).

    Returns:
        One :class:`OutputResult` per reference output, in the reference's order. See the
        module docstring for the exact pass/fail semantics of each statistic.
    """
    results = []
    for name, ref in reference.items():
        tol = tolerance.for_output(name)
        if name not in candidate:
            results.append(_failed(name, tol, np.shape(ref),
                                   f"output '{name}' is missing from the engine's outputs"))
            continue
        results.append(compare_arrays(name, np.asarray(ref), np.asarray(candidate[name]), tol))
    return results


def compare_arrays(name: str, reference: np.ndarray, candidate: np.ndarray,
                   tolerance: ToleranceSpec) -> OutputResult:
    """Compare one output (see :func:`compare_outputs`).

    Args:
        name: Output name, for the result.
        reference: The reference array.
        candidate: The engine's array.
        tolerance: The tolerance for this output (overrides already applied).

    Returns:
        The comparison result.
    """
    stat = tolerance.stat
    if stat not in STATISTICS:
        raise ValueError(f"unknown statistic {stat!r}; expected one of {', '.join(STATISTICS)}")
    if reference.shape != candidate.shape:
        return _failed(name, tolerance, reference.shape,
                       f"shape mismatch: reference {_shape(reference.shape)}, "
                       f"engine {_shape(candidate.shape)}")

    atol, rtol = float(tolerance.atol), float(tolerance.rtol)
    q = _quantile_of(tolerance)
    elements = int(reference.size)
    if elements == 0:
        return OutputResult(name, True, stat, atol, rtol, q, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
                            0.0 if stat == "quantile" else None,
                            0.0 if stat == "quantile" else None,
                            1.0, 0, 0, 0, 0.0, tuple(reference.shape))

    absdiff, reldiff = _differences(reference, candidate)
    with np.errstate(invalid="ignore"):
        mismatch = (np.isnan(absdiff) | (absdiff > atol)) & (np.isnan(reldiff) | (reldiff > rtol))
    mismatches = int(np.count_nonzero(mismatch))
    nonfinite = int(np.count_nonzero(~np.isfinite(absdiff)))

    max_abs, max_rel = float(np.max(absdiff)), float(np.max(reldiff))
    mean_abs, mean_rel = float(np.mean(absdiff)), float(np.mean(reldiff))
    median_abs, median_rel = float(np.median(absdiff)), float(np.median(reldiff))
    quantile_abs = quantile_rel = None
    if stat == "quantile":
        quantile_abs = float(np.quantile(absdiff, q))
        quantile_rel = float(np.quantile(reldiff, q))

    if stat == "elemwise":
        passed = mismatches == 0
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.minimum(_ratio_array(absdiff, atol), _ratio_array(reldiff, rtol))
        excess = float(np.max(ratio))
    else:
        abs_value, rel_value = {
            "max": (max_abs, max_rel),
            "mean": (mean_abs, mean_rel),
            "median": (median_abs, median_rel),
            "quantile": (quantile_abs, quantile_rel),
        }[stat]
        passed = _within(abs_value, atol) or _within(rel_value, rtol)
        excess = min(_ratio(abs_value, atol), _ratio(rel_value, rtol))

    return OutputResult(
        name=name, passed=passed, stat=stat, atol=atol, rtol=rtol, quantile=q,
        max_abs=max_abs, mean_abs=mean_abs, median_abs=median_abs,
        max_rel=max_rel, mean_rel=mean_rel, median_rel=median_rel,
        quantile_abs=quantile_abs, quantile_rel=quantile_rel,
        cosine=cosine_similarity(reference, candidate),
        elements=elements, mismatches=mismatches, nonfinite=nonfinite, excess=excess,
        shape=tuple(int(d) for d in reference.shape),
        abs_histogram=abs_error_histogram(absdiff, atol),
    )


def cosine_similarity(reference: np.ndarray, candidate: np.ndarray) -> float:
    """Cosine similarity of two same-shaped arrays over the positions finite in both.

    Args:
        reference: The reference array.
        candidate: The engine's array.

    Returns:
        A value in [-1, 1]; 1.0 when both are all zeros, 0.0 when only one is, NaN when no
        position is finite in both.
    """
    a = np.asarray(reference, dtype=np.float64).ravel()
    b = np.asarray(candidate, dtype=np.float64).ravel()
    finite = np.isfinite(a) & np.isfinite(b)
    if not finite.all():
        a, b = a[finite], b[finite]
    if a.size == 0:
        return math.nan if finite.size else 1.0
    # Scale first so that large activations cannot overflow the dot products.
    scale = max(float(np.max(np.abs(a))), float(np.max(np.abs(b))))
    if scale == 0.0:
        return 1.0
    a, b = a / scale, b / scale
    norm_a, norm_b = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if norm_a == 0.0 or norm_b == 0.0:
        return 0.0
    return float(np.clip(np.dot(a, b) / (norm_a * norm_b), -1.0, 1.0))


# --------------------------------------------------------------------------- helpers


def _differences(reference: np.ndarray, candidate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if reference.dtype == np.bool_ and candidate.dtype == np.bool_:
        absdiff = np.logical_xor(reference, candidate).astype(np.float64)
    elif np.issubdtype(reference.dtype, np.integer) and np.issubdtype(candidate.dtype, np.integer):
        # Integer subtraction is exact; float64 would round ids above 2**53.
        absdiff = np.abs(reference.astype(np.int64) - candidate.astype(np.int64)).astype(np.float64)
    else:
        ref = reference.astype(np.float64)
        cand = candidate.astype(np.float64)
        with np.errstate(invalid="ignore", over="ignore"):
            absdiff = np.abs(cand - ref)
        same_inf = np.isinf(ref) & (ref == cand)
        if same_inf.any():
            absdiff[same_inf] = 0.0
    magnitude = np.abs(reference.astype(np.float64))
    magnitude[magnitude == 0] = EPSILON
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        reldiff = absdiff / magnitude
    # inf/inf: the candidate is finite where the reference is infinite (or vice versa).
    reldiff[np.isinf(magnitude) & (absdiff == 0)] = 0.0
    return absdiff, reldiff


def _quantile_of(tolerance: ToleranceSpec) -> float | None:
    if tolerance.stat != "quantile":
        return tolerance.quantile
    return float(tolerance.quantile) if tolerance.quantile is not None else DEFAULT_QUANTILE


def _within(value: float | None, tol: float) -> bool:
    # NaN statistics always fail, as in Polygraphy.
    return value is not None and not math.isnan(value) and value <= tol


def _ratio(value: float | None, tol: float) -> float:
    if value is None or math.isnan(value):
        return math.inf
    if tol > 0:
        return value / tol
    return 0.0 if value == 0 else math.inf


def _ratio_array(values: np.ndarray, tol: float) -> np.ndarray:
    if tol > 0:
        ratio = values / tol
    else:
        ratio = np.where(values == 0, 0.0, np.inf)
    return np.where(np.isnan(values), np.inf, ratio)


def _failed(name: str, tolerance: ToleranceSpec, shape: tuple[int, ...], reason: str) -> OutputResult:
    nan = math.nan
    return OutputResult(
        name=name, passed=False, stat=tolerance.stat, atol=float(tolerance.atol),
        rtol=float(tolerance.rtol), quantile=_quantile_of(tolerance),
        max_abs=nan, mean_abs=nan, median_abs=nan, max_rel=nan, mean_rel=nan, median_rel=nan,
        quantile_abs=None, quantile_rel=None, cosine=nan,
        elements=int(np.prod(shape)) if shape else 1, mismatches=0, nonfinite=0,
        excess=math.inf, shape=tuple(int(d) for d in shape), reason=reason,
    )


def _shape(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def _json_float(value: float | None) -> float | None:
    # JSON has no NaN/inf; null means "not finite" (see ``nonfinite``/``reason``).
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def _from_json_float(value: Any, default: float = math.nan) -> float:
    return default if value is None else float(value)


def _or_nan(value: float | None) -> float:
    return math.nan if value is None else value


def _fmt(value: float) -> str:
    if value is None or math.isnan(value):
        return "nan"
    return f"{value:.3g}"


def _fmt_cos(value: float) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    return f"{value:.6f}"
