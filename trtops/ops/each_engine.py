"""What `verify` and `bench` share: one run per cached engine, not per action (two actions
with the same key, a model in two manifests or two targets one engine serves, are one
engine: it is checked or measured once and the other actions report the same verdict), and
what a failed run of a cached engine reports."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from trtops.errors import CacheError, TrtopsError
from trtops.outcome import (
    EngineOutcome,
    RunResult,
    action_outcome,
    failure_status,
    failure_text,
    same_engine_outcome,
)
from trtops.plan import Action


def run_each_engine(actions: Sequence[Action], result: RunResult, title: str, doing: str,
                    why_not: Callable[[Action], str],
                    run: Callable[[Action], EngineOutcome]) -> None:
    """Append one outcome per action to ``result``: ``run(action)`` for the first action
    of each engine, that outcome again for the others of the same key, skipped (with
    the reason) for those ``why_not`` refuses.

    Args:
        actions: The plan's actions, in the order outcomes are reported.
        result: Where the outcomes go.
        title: The progress display's title (the command).
        doing: What the progress line says while an engine runs ("measuring").
        why_not: Why an action is not run (its reason to be skipped), or "".
        run: Checks or measures one engine; catches its own errors into the outcome.
    """
    from trtops import console

    todo = [a for a in actions if not why_not(a)]
    done: dict[str, EngineOutcome] = {}
    with console.progress(len({a.key.key for a in todo}), title) as progress:
        for action in actions:
            why = why_not(action)
            if why:
                result.outcomes.append(action_outcome(action, "skipped", why))
                continue
            if action.key.key in done:
                result.outcomes.append(same_engine_outcome(action, done[action.key.key]))
                continue
            item = f"{action.spec.model}/{action.spec.precision}/{action.spec.target.name}"
            progress.start(item, doing)
            outcome = run(action)
            done[action.key.key] = outcome
            result.outcomes.append(outcome)
            progress.finish(item, outcome.status.replace("_", " "), seconds=outcome.seconds)


def cached_engine_failure(action: Action, exc: TrtopsError, started: float) -> EngineOutcome:
    """The outcome of a check or measurement of a cached engine that raised ``exc``: a
    damaged or missing entry (CacheError) makes the engine invalid, not a failed build."""
    status = "invalid" if isinstance(exc, CacheError) else failure_status(exc)
    return action_outcome(action, status, failure_text(exc), seconds=time.monotonic() - started)
