"""What the HTML report and its Markdown summary show, gathered once: per engine its outcome
(or cache state), meta.json, accuracy.json, perf.json and what changed since the previous
engine; per page when, where and with which trtops.

Pure: :mod:`trtops.ops.report` reads the cache and fills these; :mod:`trtops.report.html`
and :mod:`trtops.report.github` only render them. Everything read from a cache entry is
untrusted (a pulled entry, a remote's perf.json): :class:`PerfView` keeps only values of
the right type, and renderers escape every string.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from trtops.errors import ExitCode
from trtops.outcome import STATUS_EXIT, EngineOutcome

# Cache states `trtops report` shows (apply shows outcome statuses, STATUS_EXIT's keys).
# An accepted entry whose perf.json verdict failed shows as perf_failed, the status the
# performance gate gives it in apply.
ENTRY_STATE_CLASSES = {"accepted": "ok", "rejected": "fail", "unverified": "warn",
                       "not built": "pending", "missing": "warn", "damaged": "error",
                       "perf_failed": "fail"}
_EXIT_CLASSES = {ExitCode.OK: "ok", ExitCode.CHANGES_PENDING: "pending",
                 ExitCode.ENVIRONMENT: "warn", ExitCode.INTERNAL: "error"}
# Most severe first: the order of the header's counts and of a failures-first listing.
CLASS_ORDER = ("error", "fail", "warn", "pending", "skip", "other", "ok")
LATENCY_STATS = ("median", "p90", "p99")


def state_class(state: str) -> str:
    """The colour class of a state: ok, fail, warn, pending, skip, error; ``other`` for a
    state this version does not know (a newer trtops wrote it): shown as its own text."""
    if state in ENTRY_STATE_CLASSES:
        return ENTRY_STATE_CLASSES[state]
    if state == "skipped":
        return "skip"
    if state in STATUS_EXIT:
        return _EXIT_CLASSES.get(STATUS_EXIT[state], "fail")
    return "other"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _text(value: Any, limit: int = 1000) -> str | None:
    return value[:limit] if isinstance(value, str) else None


def _stats(value: Any) -> dict[str, float]:
    if not isinstance(value, Mapping):
        return {}
    found = {name: _number(value.get(name)) for name in ("median", "p90", "p99", "mean", "min")}
    return {name: number for name, number in found.items() if number is not None and number >= 0}


@dataclass(frozen=True)
class PerfCase:
    """One measured shape of an engine (a ``cases`` item of perf.json)."""

    label: str
    batch: int | None
    cuda_graph: bool | None
    latency_ms: dict[str, float]
    gpu_ms: dict[str, float]
    throughput: float | None
    cv: float | None
    shapes: dict[str, list[int]] = field(default_factory=dict)


@dataclass(frozen=True)
class PerfView:
    """The parts of an entry's perf.json a report shows (see the performance gate)."""

    measured_at: str | None
    gpu: dict[str, str]
    tensorrt: str | None
    cases: list[PerfCase]
    passed: bool | None
    reasons: list[str]
    baseline_key: str | None
    baseline_median_ms: float | None

    @classmethod
    def from_json(cls, data: Any) -> PerfView | None:
        """The view of a perf.json document, keeping only well-typed values; None when it
        is not an object."""
        if not isinstance(data, Mapping):
            return None
        cases: list[PerfCase] = []
        items = data.get("cases") if isinstance(data.get("cases"), list) else []
        for item in items:
            if not isinstance(item, Mapping):
                continue
            batch = item.get("batch")
            shapes = item.get("shapes") if isinstance(item.get("shapes"), Mapping) else {}
            cases.append(PerfCase(
                label=_text(item.get("label"), 200) or f"case {len(cases) + 1}",
                batch=batch if isinstance(batch, int) and not isinstance(batch, bool) else None,
                cuda_graph=item.get("cuda_graph") if isinstance(item.get("cuda_graph"), bool) else None,
                latency_ms=_stats(item.get("latency_ms")),
                gpu_ms=_stats(item.get("gpu_ms")),
                throughput=_number(item.get("throughput")),
                cv=_number(item.get("cv")),
                shapes={str(name)[:200]: [d for d in dims if isinstance(d, int)]
                        for name, dims in list(shapes.items())[:64] if isinstance(dims, list)},
            ))
        gpu = data.get("gpu") if isinstance(data.get("gpu"), Mapping) else {}
        verdict = data.get("verdict") if isinstance(data.get("verdict"), Mapping) else {}
        baseline = verdict.get("baseline") if isinstance(verdict.get("baseline"), Mapping) else {}
        checks = verdict.get("checks") if isinstance(verdict.get("checks"), list) else []
        reasons = [c.get("message") for c in checks
                   if isinstance(c, Mapping) and c.get("passed") is False]
        first_label = cases[0].label if cases else None
        baseline_cases = baseline.get("cases") if isinstance(baseline.get("cases"), Mapping) else {}
        baseline_case = baseline_cases.get(first_label) if first_label is not None else None
        baseline_median = (baseline_case.get("median_ms") if isinstance(baseline_case, Mapping)
                           else None)
        return cls(
            measured_at=_text(data.get("measured_at"), 64),
            gpu={str(k): str(v)[:200] for k, v in gpu.items()
                 if v is not None and isinstance(v, (str, int, float)) and not isinstance(v, bool)},
            tensorrt=_text(data.get("tensorrt"), 64),
            cases=cases[:64],
            passed=verdict.get("passed") if isinstance(verdict.get("passed"), bool) else None,
            reasons=[r[:1000] for r in reasons[:20] if isinstance(r, str)],
            baseline_key=_text(baseline.get("key"), 64),
            baseline_median_ms=_number(baseline_median),
        )

    def delta_percent(self) -> float | None:
        """How much slower (+) or faster (-) the first case's median is than the baseline's."""
        if not self.cases or not self.baseline_median_ms:
            return None
        median = self.cases[0].latency_ms.get("median")
        if median is None:
            return None
        return (median / self.baseline_median_ms - 1.0) * 100.0


@dataclass
class EngineView:
    """One engine of the report: its outcome and what its cache entry says."""

    outcome: EngineOutcome
    state: str  # what the matrix shows: the outcome status (apply) or the entry state (report)
    meta: Mapping[str, Any] | None = None
    accuracy: Mapping[str, Any] | None = None
    perf: PerfView | None = None
    changes: list[str] = field(default_factory=list)  # since the previous engine
    notes: list[str] = field(default_factory=list)  # what could not be read, and why

    @property
    def row(self) -> str:
        """The matrix row: ``manifest/model/precision`` (the id without its target)."""
        head, _, _ = self.outcome.id.rpartition("/")
        return head or self.outcome.id

    @property
    def build_seconds(self) -> float | None:
        return _number((self.meta or {}).get("build_seconds"))

    @property
    def engine_bytes(self) -> int | None:
        size = (self.meta or {}).get("engine_size", self.outcome.engine_bytes)
        return size if isinstance(size, int) and not isinstance(size, bool) else None


@dataclass
class ReportPage:
    """Everything one HTML report shows."""

    command: str  # apply | report
    generated_at: str  # ISO time, UTC
    machine: str  # host name and OS
    platform: str  # TensorRT and GPUs, as the plan saw them ("" when unknown)
    version: str  # trtops
    cache: str
    engines: list[EngineView]
    exit_code: int | None = None  # apply's; None for `trtops report`
    seconds: float | None = None

    @property
    def title(self) -> str:
        """``trtops apply report`` (a run's), ``trtops report`` (the cache's)."""
        return "trtops report" if self.command == "report" else f"trtops {self.command} report"

    def counts(self) -> list[tuple[str, int]]:
        """(state, engines) pairs, most severe class first."""
        found: dict[str, int] = {}
        for engine in self.engines:
            found[engine.state] = found.get(engine.state, 0) + 1
        return sorted(found.items(), key=lambda kv: (CLASS_ORDER.index(state_class(kv[0])), kv[0]))

    def targets(self) -> list[str]:
        """Target names in first-seen order (the matrix columns)."""
        return list(dict.fromkeys(e.outcome.target for e in self.engines))

    def matrix(self) -> list[tuple[str, dict[str, EngineView]]]:
        """Rows of the engines x targets matrix: (row name, target -> engine), in order."""
        rows: dict[str, dict[str, EngineView]] = {}
        for engine in self.engines:
            rows.setdefault(engine.row, {}).setdefault(engine.outcome.target, engine)
        return list(rows.items())
