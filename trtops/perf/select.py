"""``select: fastest``: of a model's precisions that passed the accuracy check on a target
and were measured, the one with the lowest median latency at the opt case becomes the
model's default loader. Pure: candidates in, the choice and the numbers behind it out.
Ties go to the precision listed first in the manifest."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from trtops.perf.judge import format_ms

POLICY = "fastest"


def choose_fastest(candidates: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The choice among one model's engines on one target.

    Args:
        candidates: In manifest precision order, ``{"precision", "key", "accepted": bool,
            "perf": perf summary (:func:`trtops.perf.document.perf_summary`) or None}``.

    Returns:
        ``{"policy", "precision", "key", "latency_ms", "throughput", "reason",
        "candidates": [{"precision", "key", "latency_ms", "throughput", "eligible",
        "why"}]}``, or None when no candidate is accepted and measured.
    """
    rows = []
    for candidate in candidates:
        perf = candidate.get("perf") or {}
        latency = perf.get("latency_ms")
        why = ("" if candidate.get("accepted") and latency is not None else
               "not accepted" if not candidate.get("accepted") else "not measured")
        rows.append({"precision": candidate["precision"], "key": candidate.get("key"),
                     "latency_ms": latency, "throughput": perf.get("throughput"),
                     "eligible": not why, "why": why})
    eligible = [r for r in rows if r["eligible"]]
    if not eligible:
        return None
    best = min(eligible, key=lambda r: float(r["latency_ms"]))  # min keeps the first of ties
    others = [r for r in eligible if r is not best]
    reason = f"{best['precision']} {format_ms(float(best['latency_ms']))} ms at opt"
    if others:
        runner_up = min(others, key=lambda r: float(r["latency_ms"]))
        speedup = float(runner_up["latency_ms"]) / float(best["latency_ms"])
        reason += (", " + ", ".join(f"{r['precision']} {format_ms(float(r['latency_ms']))} ms"
                                    for r in others)
                   + f" ({speedup:.2f}x faster than {runner_up['precision']})")
    skipped = [f"{r['precision']} {r['why']}" for r in rows if not r["eligible"]]
    if skipped:
        reason += "; " + ", ".join(skipped)
    return {"policy": POLICY, "precision": best["precision"], "key": best["key"],
            "latency_ms": best["latency_ms"], "throughput": best["throughput"],
            "reason": reason, "candidates": rows}


def group_key(spec: Any) -> tuple[str, str, str]:
    """The engines one choice is made among: (manifest, model, target)."""
    return (spec.manifest_name, spec.model, spec.target.name)


__all__ = ["POLICY", "choose_fastest", "group_key"]
