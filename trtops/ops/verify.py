"""`trtops verify`: re-check engines already in the cache against their ONNX models, with
the manifests' current accuracy settings (tolerances, inputs), and record the new verdict.

Accuracy settings are not part of the engine key (they do not change the engine), so
tightening a tolerance never triggers a rebuild: it needs a re-check, which this is.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from trtops.errors import TrtopsError
from trtops.outcome import (
    EngineOutcome,
    RunResult,
    accuracy_summary,
    action_outcome,
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
    from trtops.ops.apply import check_runtime
    from trtops.ops.each_engine import run_each_engine

    started = time.monotonic()
    check_runtime(plan, "check")
    result = RunResult("verify")
    run_each_engine(plan.actions, result, "verify", "checking accuracy", _not_cached,
                    lambda action: _reverify(action, store, toolchain))
    result.seconds = time.monotonic() - started
    return result


def _not_cached(action: Action) -> str:
    if action.kind in ("reuse", "rejected"):
        return ""
    return "not in the cache" if action.pending else action.reason


@contextlib.contextmanager
def _reference(action: Action, store: Any, model: Path) -> Iterator[Path]:
    """What apply's gate compared the engine with: the prepared model without its cast
    (pinned while in use), or the source when nothing but the cast (or nothing) is prepared."""
    from trtops.prepare.options import without_cast

    component = action.key.components.get("prepare")
    if component is None or without_cast(component) is None or not hasattr(store, "root"):
        yield Path(model)
        return
    from trtops.cache.pins import pinned
    from trtops.prepare.runner import ensure_prepared, prepared_chain

    digest = action.key.components["model_digest"]
    base = without_cast(component)
    with pinned(store.root, prepared_chain(digest, base)):
        yield ensure_prepared(store.root, model, digest, action.spec.prepare).model


def _reverify(action: Action, store: Any, toolchain: Any) -> EngineOutcome:
    from trtops.gate.gate import verify_cached_engine
    from trtops.ops.each_engine import cached_engine_failure
    from trtops.sources import ensure_source

    started = time.monotonic()
    spec = action.spec
    try:
        model = ensure_source(spec, Path(spec.source.path).parent.parent)
        with _reference(action, store, model) as reference:
            report = verify_cached_engine(store, action.key.key, reference, spec.accuracy,
                                          precision=spec.precision, verify=toolchain.verify)
    except TrtopsError as exc:
        return cached_engine_failure(action, exc, started)
    accuracy = accuracy_summary(json.loads(report.to_bytes()))
    status = "verified" if report.passed else "accuracy_failed"
    return action_outcome(action, status, report.summary_lines(1)[0], accuracy=accuracy,
                          details="\n".join(report.summary_lines(5)), seconds=time.monotonic() - started)
