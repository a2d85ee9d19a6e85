"""The performance gate's side of apply and bench: find the previous engine's measurement
(the baseline), judge a new measurement (:func:`trtops.perf.judge.judge`, pure) and say
what the outcome is. The measurement itself runs where the engine was built
(:func:`trtops.executors.jobs.run_build_job`) or, for ``bench``, here.

The baseline of an engine is the last accepted engine of the same logical engine
(manifest/model/precision/target) measured on the same GPU model: the entry its ref
pointed at before this build (the plan's ``previous_key``), else the newest accepted
engine the lock records for it on a platform of the same GPU (any TensorRT version, so an
upgrade that makes the engine slower is caught), with the medians the lock keeps.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from trtops.errors import CacheError, InputError
from trtops.perf.document import perf_document, perf_summary, rejudge
from trtops.perf.judge import Baseline, BaselineCase, Verdict, judge

log = logging.getLogger("trtops.ops.perf_gate")


def _failed_its_gate(verdict: Any) -> bool:
    """A perf.json verdict or a lock's performance summary whose gate failed: an engine
    published with exit 6 (it is accurate, so it is published) must not become the next
    build's baseline, or each slow release would pass the one after it."""
    return isinstance(verdict, Mapping) and verdict.get("state") == "failed"


def baseline_from_cache(store: Any, keys: Iterable[str | None], new_key: str,
                        gpu: str | None) -> Baseline | None:
    """The measurement of the first accepted entry among ``keys`` (not ``new_key``) that
    was measured on ``gpu``."""
    from trtops.cache.entries import entry_state, read_perf

    for key in keys:
        if not key or key == new_key:
            continue
        try:
            if entry_state(store, key) != "accepted":
                continue
            perf = read_perf(store, key)
        except CacheError as exc:
            log.warning("not comparing with %s: %s", key[:12], exc.message)
            continue
        if perf and _failed_its_gate(perf.get("verdict")):
            # A slow engine is no baseline (each slow release would pass the one after it):
            # the measurement it was compared with, and failed against, stays the baseline.
            recorded = perf["verdict"].get("baseline")
            if isinstance(recorded, Mapping) and (gpu is None or recorded.get("gpu") in (None, gpu)):
                return Baseline.from_json(recorded)
            continue
        if perf and (gpu is None or (perf.get("gpu") or {}).get("name") == gpu):
            return Baseline.from_perf(key, perf, "cache")
    return None


def baseline_from_lock(lock_path: Path | None, spec_id: str, new_key: str,
                       gpu: str | None) -> Baseline | None:
    """The newest accepted engine of ``spec_id`` the lock records with measurements on a
    platform of ``gpu`` (any TensorRT version), other than ``new_key``."""
    if lock_path is None or not Path(lock_path).is_dir() or gpu is None:
        return None
    from trtops.lockfile import read_lock

    try:
        lock = read_lock(lock_path)
    except InputError as exc:
        log.warning("not comparing with the lock: %s", exc.message)
        return None
    found: list[tuple[str, Baseline]] = []
    for section in lock.sections.values():
        entry = section.engines.get(spec_id)
        if (entry is None or section.platform.gpu_name != gpu or entry.key == new_key
                or entry.state != "accepted" or not entry.performance
                or _failed_its_gate(entry.performance)):
            continue
        cases = entry.performance.get("cases")
        if not isinstance(cases, Mapping):
            continue
        try:
            parsed = {str(label): BaselineCase.from_json(c) for label, c in cases.items()}
        except (KeyError, TypeError, ValueError, AttributeError):
            continue
        found.append((entry.built_at or "", Baseline(
            key=entry.key, source="lock", gpu=gpu, cases=parsed,
            tensorrt=section.platform.tensorrt,
            measured_at=entry.performance.get("measured_at"))))
    return max(found, key=lambda item: item[0])[1] if found else None


def find_baseline(store: Any, spec_id: str, new_key: str, gpu: str | None, *,
                  previous_keys: Iterable[str | None] = (),
                  lock_path: Path | None = None) -> Baseline | None:
    """The previous engine's measurement to compare a new one with (see the module)."""
    return (baseline_from_cache(store, previous_keys, new_key, gpu)
            or baseline_from_lock(lock_path, spec_id, new_key, gpu))


def judge_measurement(body: Mapping[str, Any], spec: Any, key: str,
                      baseline: Baseline | None) -> tuple[dict[str, Any], Verdict]:
    """(perf.json, verdict) of a new measurement of ``spec``'s engine ``key``."""
    limits = spec.performance
    verdict = judge(body, limits, baseline, key=key)
    return perf_document(body, limits.settings(), verdict), verdict


def stored_verdict(store: Any, key: str, spec: Any) -> tuple[dict | None, Verdict | None]:
    """(perf summary, verdict) of a cached entry's perf.json judged again under the spec's
    current limits (budgets are not in the key: a reused engine is judged without being
    measured again); (None, None) when it was never measured or the gate is off."""
    from trtops.cache.entries import read_perf

    if not spec.performance.enabled:
        return None, None
    try:
        document = read_perf(store, key)
    except CacheError as exc:
        log.warning("perf.json of %s: %s", key[:12], exc.message)
        return None, None
    if document is None:
        return None, None
    verdict = rejudge(document, spec.performance, key=key)
    return perf_summary(document, verdict), verdict


def gate_message(message: str, verdict: Verdict | None) -> str:
    """An outcome's message with the performance verdict's summary after it."""
    if verdict is None or not verdict.summary:
        return message
    return f"{message}; {verdict.summary}" if message else verdict.summary


def gated_status(status: str, verdict: Verdict | None) -> str:
    """``perf_failed`` for an otherwise successful engine whose verdict failed."""
    if verdict is not None and not verdict.passed and status in ("built", "reused", "downloaded",
                                                                  "verified", "benched"):
        return "perf_failed"
    return status


__all__ = ["baseline_from_cache", "baseline_from_lock", "find_baseline", "gate_message",
           "gated_status", "judge_measurement", "stored_verdict"]
