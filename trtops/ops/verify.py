"""`trtops verify`: re-check engines already in the cache against their ONNX models, with
the manifests' current accuracy settings (tolerances, inputs), and record the new verdict.

Accuracy settings are not part of the engine key (they do not change the engine), so
tightening a tolerance never triggers a rebuild: it needs a re-check, which this is.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from trtops.errors import CacheError, TrtopsError
from trtops.outcome import (
    EngineOutcome,
    RunResult,
    accuracy_summary,
    action_outcome,
    failure_status,
    failure_text,
)
from trtops.plan import Action, Plan


def reverify_plan(plan: Plan, store: Any, toolchain: Any) -> RunResult:
    """Re-verify every cached engine of a plan (reuse and rejected actions).

    Args:
        plan: A plan of the manifests (its keys name the cached engines).
        store: The local cache.
        toolchain: See :class:`trtops.ops.toolchain.Toolchain` (TensorRT + Polygraphy).

    Returns:
        One outcome per engine: verified (accepted), accuracy_failed (rejected now),
        skipped (not in the cache or not runnable here).
    """
    from trtops import console
    from trtops.ops.apply import check_runtime

    started = time.monotonic()
    check_runtime(plan, "check")
    result = RunResult("verify")
    cached = [a for a in plan.actions if a.kind in ("reuse", "rejected")]
    done: dict[str, EngineOutcome] = {}
    with console.progress(len(cached), "verify") as progress:
        for action in plan.actions:
            if action.kind not in ("reuse", "rejected"):
                why = "not in the cache" if action.pending else action.reason
                result.outcomes.append(action_outcome(action, "skipped", why))
                continue
            if action.key.key in done:
                earlier = done[action.key.key]
                result.outcomes.append(action_outcome(action, earlier.status, f"same engine as {earlier.id}",
                                                accuracy=earlier.accuracy))
                continue
            item = f"{action.spec.model}/{action.spec.precision}/{action.spec.target.name}"
            progress.start(item, "checking accuracy")
            outcome = _reverify(action, store, toolchain)
            done[action.key.key] = outcome
            result.outcomes.append(outcome)
            progress.finish(item, outcome.status.replace("_", " "), seconds=outcome.seconds)
    result.seconds = time.monotonic() - started
    return result


def _reverify(action: Action, store: Any, toolchain: Any) -> EngineOutcome:
    from trtops.gate.gate import verify_cached_engine
    from trtops.sources import ensure_source

    started = time.monotonic()
    spec = action.spec
    try:
        model = ensure_source(spec, Path(spec.source.path).parent.parent)
        report = verify_cached_engine(store, action.key.key, model, spec.accuracy,
                                      precision=spec.precision, verify=toolchain.verify)
    except TrtopsError as exc:
        status = "invalid" if isinstance(exc, CacheError) else failure_status(exc)
        return action_outcome(action, status, failure_text(exc), seconds=time.monotonic() - started)
    accuracy = accuracy_summary(json.loads(report.to_bytes()))
    status = "verified" if report.passed else "accuracy_failed"
    return action_outcome(action, status, report.summary_lines(1)[0], accuracy=accuracy,
                          details="\n".join(report.summary_lines(5)), seconds=time.monotonic() - started)
