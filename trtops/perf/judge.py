"""The performance verdict on one measurement: budgets, and a noise-aware comparison with
the previous accepted engine of the same logical engine on the same GPU. Pure: numbers in,
verdict out (apply, ``bench`` and a re-judged reuse all call :func:`judge`).

A regression is called only when both hold, per case measured by both engines:

- the new median latency exceeds the old by more than ``max_regression``, and
- the difference exceeds :data:`NOISE_FACTOR` times the larger spread of the two
  measurements (spread: coefficient of variation of the repeat medians x the median), so
  a slowdown the GPU's own jitter explains is never a failure.

Budgets apply to the opt cases (:func:`trtops.perf.cases.is_opt`): ``max_latency_ms``
against the median latency, ``min_throughput`` against batch / median latency.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from trtops.names import format_percent
from trtops.perf.cases import is_opt

#: The baseline source of ``bench``: the perf.json it replaces (the same engine).
LAST_MEASUREMENT = "the last measurement"

#: A slowdown must exceed this many times the larger measured spread to be a regression.
NOISE_FACTOR = 3.0


def format_ms(value: float) -> str:
    """Milliseconds with three significant digits and no exponent: 152, 15.2, 1.52, 0.152."""
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 0.1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def format_rate(value: float) -> str:
    """Inferences per second as people read them: 662, 1,480, 12.5."""
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


@dataclass(frozen=True)
class BaselineCase:
    """One case of the previous engine's measurement."""

    median_ms: float
    cv: float  # coefficient of variation of its repeat medians
    shapes: Mapping[str, Any] | None = None  # None: not recorded (a lock entry)

    @classmethod
    def from_json(cls, data: Any) -> BaselineCase:
        """A case as a verdict's baseline or the lock records it (``median_ms``, ``cv``):
        the one reader of both, since either may be edited or hostile.

        Raises:
            ValueError: the median or the spread is not a finite number (a string such
                as ``"nan"`` included: a NaN baseline would make the new verdict
                unwritable as JSON).
        """
        if not isinstance(data, Mapping):
            raise ValueError("not an object")
        median, cv = data.get("median_ms"), data.get("cv") or 0.0
        for value in (median, cv):
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value):
                raise ValueError(f"{value!r} is not a finite number")
        return cls(float(median), float(cv))


@dataclass(frozen=True)
class Baseline:
    """The measurement a new one is compared with: the previous accepted engine of the same
    logical engine on the same GPU (or, for ``bench``, the perf.json it replaces)."""

    key: str
    source: str  # where it came from, for messages: "cache", "lock", "the last measurement"
    gpu: str | None
    cases: Mapping[str, BaselineCase]
    tensorrt: str | None = None
    measured_at: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "source": self.source, "gpu": self.gpu,
                "tensorrt": self.tensorrt, "measured_at": self.measured_at,
                "cases": {label: {"median_ms": c.median_ms, "cv": c.cv}
                          for label, c in sorted(self.cases.items())}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Baseline:
        """The baseline a verdict recorded (to judge a stored measurement again)."""
        return cls(key=str(data.get("key") or ""), source=str(data.get("source") or "cache"),
                   gpu=data.get("gpu"), tensorrt=data.get("tensorrt"),
                   measured_at=data.get("measured_at"),
                   cases={str(label): BaselineCase.from_json(c)
                          for label, c in (data.get("cases") or {}).items()})

    @classmethod
    def from_perf(cls, key: str, perf: Mapping[str, Any], source: str) -> Baseline:
        """The baseline of a stored perf.json (any of its cases)."""
        return cls(key=key, source=source, gpu=(perf.get("gpu") or {}).get("name"),
                   tensorrt=perf.get("tensorrt"), measured_at=perf.get("measured_at"),
                   cases={c["label"]: BaselineCase(float(c["latency_ms"]["median"]),
                                                   float(c.get("cv") or 0.0), c.get("shapes"))
                          for c in perf.get("cases") or ()})


@dataclass
class Check:
    """One budget or comparison of one case."""

    case: str
    kind: str  # max_latency_ms | min_throughput | max_regression
    limit: float
    value: float
    passed: bool
    message: str

    def to_json(self) -> dict[str, Any]:
        return {"case": self.case, "kind": self.kind, "limit": self.limit,
                "value": self.value, "passed": self.passed, "message": self.message}


@dataclass
class Verdict:
    """What the gate says about one measurement."""

    passed: bool
    gated: bool  # a budget or regression limit applied
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # comparisons skipped, with why
    baseline: Baseline | None = None
    summary: str = ""

    @property
    def state(self) -> str:
        """passed | failed | measured (no budget or limit to check)."""
        if not self.passed:
            return "failed"
        return "passed" if self.checks else "measured"

    @property
    def failures(self) -> list[str]:
        return [c.message for c in self.checks if not c.passed]

    def to_json(self) -> dict[str, Any]:
        return {"state": self.state, "passed": self.passed, "summary": self.summary,
                "checks": [c.to_json() for c in self.checks], "notes": list(self.notes),
                "baseline": self.baseline.to_json() if self.baseline else None}


def _budgets(case: Mapping[str, Any], limits: Any) -> list[Check]:
    label, median = case["label"], float(case["latency_ms"]["median"])
    checks = []
    if limits.max_latency_ms is not None:
        limit = float(limits.max_latency_ms)
        ok = median <= limit
        checks.append(Check(label, "max_latency_ms", limit, median, ok,
                            f"{label}: median {format_ms(median)} ms "
                            f"{'within' if ok else 'over'} the budget of {format_ms(limit)} ms"))
    if limits.min_throughput is not None:
        limit, rate = float(limits.min_throughput), float(case["throughput"])
        ok = rate >= limit
        checks.append(Check(label, "min_throughput", limit, rate, ok,
                            f"{label}: {format_rate(rate)} inferences/s "
                            f"{'meets' if ok else 'below'} the minimum of {format_rate(limit)}"))
    return checks


def compare(label: str, new_median: float, new_cv: float, old: BaselineCase,
            limit: float) -> Check:
    """The regression check of one case (see the module's rule).

    Args:
        label: The case.
        new_median: The new median latency (ms).
        new_cv: The new measurement's coefficient of variation (repeat medians).
        old: The previous engine's case.
        limit: ``max_regression`` as a fraction.

    Returns:
        The check; its message says both medians, the change, the limit and the spread.
    """
    delta = new_median - old.median_ms
    change = delta / old.median_ms if old.median_ms > 0 else 0.0
    spread = max(new_cv, old.cv)
    noise = NOISE_FACTOR * max(new_cv * new_median, old.cv * old.median_ms)
    slower = change > limit
    beyond_noise = delta > noise
    passed = not (slower and beyond_noise)
    text = (f"{label}: median {format_ms(new_median)} ms vs {format_ms(old.median_ms)} ms "
            f"before ({'+' if change >= 0 else '-'}{format_percent(abs(change))}, limit "
            f"{format_percent(limit)}, spread +/-{format_percent(spread)})")
    if slower and not beyond_noise:
        text += ": within the measured noise"
    return Check(label, "max_regression", limit, change, passed, text)


def judge(perf: Mapping[str, Any], limits: Any, baseline: Baseline | None, *,
          key: str | None = None) -> Verdict:
    """The verdict on a measurement.

    Args:
        perf: The measurement (:meth:`Toolchain.measure`'s body, or a stored perf.json).
        limits: A :class:`~trtops.spec.PerformanceSpec` (budgets, ``max_regression``).
        baseline: The previous engine's measurement on the same GPU, or None.
        key: The measured engine's key (a baseline of the same key is not "previous").

    Returns:
        The verdict: passed unless a budget or a regression check failed.
    """
    cases = list(perf.get("cases") or ())
    checks: list[Check] = []
    notes: list[str] = []
    for case in cases:
        if is_opt(case["label"]):
            checks.extend(_budgets(case, limits))
    used = None
    if limits.max_regression is not None and baseline is not None:
        gpu = (perf.get("gpu") or {}).get("name")
        if key and baseline.key == key and baseline.source != LAST_MEASUREMENT:
            notes.append("no comparison: the previous measurement is of this same engine")
        elif baseline.gpu and gpu and baseline.gpu != gpu:
            notes.append(f"no comparison: the previous engine was measured on {baseline.gpu}")
        else:
            used = baseline
            for case in cases:
                old = baseline.cases.get(case["label"])
                if old is None:
                    continue
                if old.shapes is not None and dict(old.shapes) != dict(case.get("shapes") or {}):
                    notes.append(f"{case['label']}: not compared (its shapes changed)")
                    continue
                checks.append(compare(case["label"], float(case["latency_ms"]["median"]),
                                      float(case.get("cv") or 0.0), old,
                                      float(limits.max_regression)))
    elif limits.max_regression is not None:
        notes.append("no previous engine measured on this GPU to compare with")
    passed = all(c.passed for c in checks)
    verdict = Verdict(passed=passed, gated=bool(getattr(limits, "gated", False)), checks=checks,
                      notes=notes, baseline=used)
    verdict.summary = summary_line(perf, verdict)
    return verdict


def headline(perf: Mapping[str, Any]) -> str:
    """The first opt case in words: ``opt 1.51 ms, 662/s`` (empty without cases)."""
    for case in perf.get("cases") or ():
        if is_opt(case["label"]):
            return (f"{case['label']} {format_ms(float(case['latency_ms']['median']))} ms, "
                    f"{format_rate(float(case['throughput']))}/s")
    return ""


def baseline_name(baseline: Baseline | None) -> str:
    """The previous engine in a message: its short key, and ``in the lock`` when the lock's
    medians stood in for it (a CI job with an empty cache: "before" then means the numbers
    committed with the last release, not anything this machine measured)."""
    if baseline is None:
        return "before"
    return f"{baseline.key[:12]} in the lock" if baseline.source == "lock" else baseline.key[:12]


def summary_line(perf: Mapping[str, Any], verdict: Verdict) -> str:
    """One line: the failures (or the headline numbers and what was checked), and which
    engine a regression was measured against."""
    failures = verdict.failures
    if failures:
        text = "performance: " + "; ".join(failures)
        if verdict.baseline is not None and any(
                c.kind == "max_regression" and not c.passed for c in verdict.checks):
            text += f" (before: {baseline_name(verdict.baseline)})"
        return text
    text = "performance: " + (headline(perf) or "measured")
    regressions = [c for c in verdict.checks if c.kind == "max_regression"]
    if regressions:
        worst = max(regressions, key=lambda c: c.value)
        text += (f" ({'+' if worst.value >= 0 else '-'}{format_percent(abs(worst.value))} vs "
                 f"{baseline_name(verdict.baseline)})")
    return text


__all__ = ["LAST_MEASUREMENT", "NOISE_FACTOR", "Baseline", "BaselineCase", "Check", "Verdict",
           "baseline_name", "compare", "format_ms", "format_rate", "headline", "judge", "summary_line"]
