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
from trtops.perf.cases import is_opt

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


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


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
class PerfCheck:
    """One budget or regression check of the performance gate (a ``verdict.checks`` item)."""

    case: str
    kind: str  # max_latency_ms | min_throughput | max_regression (or a newer kind, as text)
    passed: bool
    message: str


@dataclass(frozen=True)
class PerfView:
    """The parts of an entry's perf.json a report shows: the measurement and the performance
    gate's verdict (:meth:`trtops.perf.judge.Verdict.to_json`, written by
    :func:`trtops.perf.document.perf_document`)."""

    measured_at: str | None
    gpu: dict[str, str]
    tensorrt: str | None
    cases: list[PerfCase]
    state: str | None  # the verdict: passed | failed | measured (no budget or limit set)
    passed: bool | None
    summary: str | None
    checks: list[PerfCheck]
    notes: list[str]  # comparisons the gate skipped, with why
    baseline_key: str | None  # the previous engine it was compared with
    baseline_source: str | None  # cache | lock | the last measurement
    baseline_ms: dict[str, float]  # the previous engine's median latency per case label

    @classmethod
    def from_json(cls, data: Any) -> PerfView | None:
        """The view of a perf.json document, keeping only well-typed values; None when it
        is not an object."""
        if not isinstance(data, Mapping):
            return None
        cases: list[PerfCase] = []
        for item in _list(data.get("cases")):
            if not isinstance(item, Mapping):
                continue
            batch = item.get("batch")
            shapes = _mapping(item.get("shapes"))
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
        gpu = _mapping(data.get("gpu"))
        verdict = _mapping(data.get("verdict"))
        baseline = _mapping(verdict.get("baseline"))
        checks = [PerfCheck(case=_text(c.get("case"), 200) or "", kind=_text(c.get("kind"), 64) or "",
                            passed=c["passed"], message=_text(c.get("message")) or "")
                  for c in _list(verdict.get("checks"))
                  if isinstance(c, Mapping) and isinstance(c.get("passed"), bool)]
        baseline_ms = {}
        for label, case in list(_mapping(baseline.get("cases")).items())[:64]:
            median = _number(_mapping(case).get("median_ms"))
            if isinstance(label, str) and median is not None and median > 0:
                baseline_ms[label[:200]] = median
        return cls(
            measured_at=_text(data.get("measured_at"), 64),
            gpu={str(k): str(v)[:200] for k, v in gpu.items()
                 if v is not None and isinstance(v, (str, int, float)) and not isinstance(v, bool)},
            tensorrt=_text(data.get("tensorrt"), 64),
            cases=cases[:64],
            state=_text(verdict.get("state"), 32),
            passed=verdict.get("passed") if isinstance(verdict.get("passed"), bool) else None,
            summary=_text(verdict.get("summary")),
            checks=checks[:40],
            notes=[n[:1000] for n in _list(verdict.get("notes"))[:20] if isinstance(n, str)],
            baseline_key=_text(baseline.get("key"), 64),
            baseline_source=_text(baseline.get("source"), 64),
            baseline_ms=baseline_ms,
        )

    @property
    def failures(self) -> list[str]:
        """The failed checks' messages (why the gate failed this engine)."""
        return [check.message for check in self.checks if not check.passed]

    @property
    def headline(self) -> PerfCase | None:
        """The case reports compare by: the first opt case (what budgets and ``select:
        fastest`` use), else the first case."""
        return next((c for c in self.cases if is_opt(c.label)), self.cases[0] if self.cases else None)

    def delta_percent(self, case: PerfCase | None = None) -> float | None:
        """How much slower (+) or faster (-) a case's median (the headline case's by default)
        is than the previous engine's median of the same case."""
        case = case or self.headline
        if case is None or case.label not in self.baseline_ms:
            return None
        median = case.latency_ms.get("median")
        if median is None:
            return None
        return (median / self.baseline_ms[case.label] - 1.0) * 100.0


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
    # `select: fastest`: the lock's record of the model's choice on this target
    # ({"policy", "chosen", "precision", "reason"}, trtops.ops.select); None without one
    selection: Mapping[str, Any] | None = None

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
