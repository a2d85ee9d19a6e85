"""The stored ``perf.json`` of an entry and what reports show of it.

``perf.json`` is the measurement (:meth:`trtops.ops.toolchain.Toolchain.measure`'s body:
``gpu``, ``tensorrt``, ``cases``) plus ``schema``, ``measured_at``, ``settings`` and the
``verdict`` (:class:`trtops.perf.judge.Verdict`, with the baseline it was compared with).
Mutable like ``accuracy.json``: ``trtops bench`` replaces it. Checked by
:func:`trtops.cache.entry_schema.check_perf` wherever it is written or read.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from trtops.perf.cases import is_opt
from trtops.perf.judge import Baseline, Verdict, headline, judge

PERF_SCHEMA = 1


def perf_document(body: Mapping[str, Any], settings: Mapping[str, Any], verdict: Verdict, *,
                  measured_at: str | None = None) -> dict[str, Any]:
    """The perf.json of a measurement and its verdict."""
    stamp = measured_at or datetime.now(timezone.utc).replace(microsecond=0).isoformat()
    document = dict(body)
    document.update({"schema": PERF_SCHEMA, "measured_at": stamp, "settings": dict(settings),
                     "verdict": verdict.to_json()})
    return document


def rejudge(document: Mapping[str, Any], limits: Any, *, key: str | None = None) -> Verdict:
    """The verdict on a stored perf.json under the manifest's current budgets and limit,
    against the baseline it was compared with when it was measured (budgets are not in
    the engine key: a reused engine is judged again, without measuring)."""
    recorded = ((document.get("verdict") or {}).get("baseline"))
    baseline = Baseline.from_json(recorded) if isinstance(recorded, Mapping) else None
    return judge(document, limits, baseline, key=key)


def opt_case(document: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The first opt case of a measurement (what ``select: fastest`` and tables compare)."""
    for case in document.get("cases") or ():
        if is_opt(case["label"]):
            return case
    return None


def perf_summary(document: Mapping[str, Any] | None,
                 verdict: Verdict | None = None) -> dict[str, Any] | None:
    """What outcomes, ``status``, the lock and the reports carry of a perf.json: the opt
    case's median latency, throughput and spread, the verdict's state and summary, and
    every case's median (the lock keeps them as the next build's baseline)."""
    if not document:
        return None
    stored = document.get("verdict") or {}
    case = opt_case(document)
    summary: dict[str, Any] = {
        "state": verdict.state if verdict is not None else stored.get("state", "measured"),
        "summary": verdict.summary if verdict is not None else stored.get("summary", ""),
        "gpu": (document.get("gpu") or {}).get("name"),
        "measured_at": document.get("measured_at"),
    }
    if case is not None:
        summary.update({"case": case["label"], "latency_ms": case["latency_ms"]["median"],
                        "throughput": case["throughput"], "cv": case.get("cv")})
    summary["cases"] = {c["label"]: {"median_ms": c["latency_ms"]["median"], "cv": c.get("cv", 0.0)}
                        for c in document.get("cases") or ()}
    return summary


def short_text(summary: Mapping[str, Any] | None) -> str:
    """``1.51 ms 662/s`` for a table cell (empty when not measured)."""
    if not summary or summary.get("latency_ms") is None:
        return ""
    from trtops.perf.judge import format_ms, format_rate

    return f"{format_ms(float(summary['latency_ms']))}ms {format_rate(float(summary['throughput']))}/s"


__all__ = ["PERF_SCHEMA", "headline", "opt_case", "perf_document", "perf_summary", "rejudge",
           "short_text"]
