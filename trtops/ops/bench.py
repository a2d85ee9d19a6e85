"""`trtops bench`: measure accepted engines already in the cache again, without rebuilding
them (after a driver upgrade, on a quieter machine, with new shape cases), replace their
perf.json and judge the new numbers against the budgets and against the measurement they
replace (the same engine: ``max_regression`` then says whether the machine got slower).

Needs TensorRT and a GPU like ``verify``: without them, one environment error up front.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from trtops.errors import CacheError, InputError, TrtopsError
from trtops.outcome import (
    EngineOutcome,
    RunResult,
    accuracy_summary,
    action_outcome,
)
from trtops.plan import Action, Plan


def _wanted(plan: Plan, engines: list[str] | None) -> set[str] | None:
    """Spec ids ``--engine`` names (an id, or a key prefix of at least 6 hex digits)."""
    if not engines:
        return None
    from trtops.names import KEY_PREFIX_RE

    ids: set[str] = set()
    for wanted in engines:
        matched = {a.id for a in plan.actions
                   if a.id == wanted or (KEY_PREFIX_RE.match(wanted) and a.key is not None
                                         and a.key.key.startswith(wanted))}
        if not matched:
            raise InputError(f"--engine {wanted!r} names no engine of these manifests",
                             hint="give an engine id manifest/model/precision/target or a key "
                                  "prefix (`trtops status` lists both)")
        ids |= matched
    return ids


def bench_plan(plan: Plan, store: Any, toolchain: Any, *,
               engines: list[str] | None = None) -> RunResult:
    """Measure every accepted cached engine of a plan (or those ``engines`` names) again.

    Args:
        plan: A plan of the manifests (its ``reuse`` actions name the cached engines).
        store: The local cache.
        toolchain: Has ``measure`` (:class:`trtops.ops.toolchain.Toolchain`).
        engines: Engine ids or key prefixes (``--engine``); None: every engine.

    Returns:
        One outcome per engine: benched (measured, the gate passed), perf_failed, or
        skipped (not built, rejected, not runnable here, performance disabled).
    """
    from trtops.ops.apply import check_runtime
    from trtops.ops.each_engine import run_each_engine

    started = time.monotonic()
    wanted = _wanted(plan, engines)
    check_runtime(plan, "measure")
    result = RunResult("bench")
    chosen = [a for a in plan.actions if wanted is None or a.id in wanted]
    run_each_engine(chosen, result, "bench", "measuring", _not_measured,
                    lambda action: _bench(action, store, toolchain))
    from trtops.ops.select import select_from_outcomes

    result.apply_selections(*select_from_outcomes(plan.actions, result.outcomes))
    result.seconds = time.monotonic() - started
    return result


def _not_measured(action: Action) -> str:
    if action.pending:
        return "not in the cache (run `trtops apply` first)"
    if action.kind == "rejected":
        return "rejected: failed its accuracy check, never measured"
    if action.kind != "reuse":
        return action.reason
    if not action.spec.performance.enabled:
        return "performance is disabled for this model (performance: {enabled: false})"
    return ""


def measure_cached(store: Any, key: str, spec: Any, toolchain: Any) -> dict:
    """The cached engine ``key`` measured now on this GPU with ``spec``'s performance
    settings (its bytes checked against meta.json first): a perf.json body, not judged.
    ``bench`` replaces perf.json with it; ``repair`` measures the failed engine by it.

    Raises:
        TrtopsError: no such entry, damaged bytes, or the measurement failed.
    """
    from trtops.cache.entries import fetch_engine, read_engine_meta
    from trtops.cache.store import ENGINE_FILE
    from trtops.engine_io import EngineIO
    from trtops.perf.cases import measure_cases

    meta = read_engine_meta(store, key)
    io = EngineIO.from_json(meta["io"]) if meta.get("io") else None
    with tempfile.TemporaryDirectory(prefix="trtops-measure-") as tmp:
        engine = fetch_engine(store, key, meta, Path(tmp) / ENGINE_FILE)
        return toolchain.measure(engine, measure_cases(spec, io), spec.performance.settings())


def _bench(action: Action, store: Any, toolchain: Any) -> EngineOutcome:
    from trtops.cache.entries import read_accuracy, read_perf, write_perf
    from trtops.ops.each_engine import cached_engine_failure
    from trtops.ops.perf_gate import (
        find_baseline,
        gate_message,
        gated_status,
        judge_measurement,
    )
    from trtops.perf.document import perf_summary
    from trtops.perf.judge import LAST_MEASUREMENT, Baseline

    started = time.monotonic()
    key, spec = action.key.key, action.spec
    try:
        accuracy = read_accuracy(store, key)
        try:
            previous = read_perf(store, key)
        except CacheError:
            previous = None  # a damaged perf.json is what bench replaces
        body = measure_cached(store, key, spec, toolchain)
        gpu = (body.get("gpu") or {}).get("name")
        if previous and (previous.get("gpu") or {}).get("name") == gpu:
            baseline = Baseline.from_perf(key, previous, LAST_MEASUREMENT)
        else:
            baseline = find_baseline(store, action.id, key, gpu,
                                     previous_keys=[action.previous_key])
        document, verdict = judge_measurement(body, spec, key, baseline)
        write_perf(store, key, document)
    except TrtopsError as exc:
        return cached_engine_failure(action, exc, started)
    return action_outcome(action, gated_status("benched", verdict), gate_message("", verdict),
                          accuracy=accuracy_summary(accuracy) if accuracy else None,
                          perf=perf_summary(document, verdict),
                          details="\n".join(verdict.notes),
                          seconds=time.monotonic() - started)


__all__ = ["bench_plan", "measure_cached"]
