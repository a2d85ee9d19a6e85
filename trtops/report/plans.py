"""Plans as reports: the same step summary, annotations and JUnit as apply, and the CI job
matrix of targets with builds pending."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from trtops.outcome import RunResult, action_outcome
from trtops.plan.model import Action, Plan

# Planner action kind -> RunResult status, for reports of `trtops plan`.
PLAN_STATUS = {"build": "pending", "rebuild": "pending", "reuse": "reused", "skip": "skipped",
               "rejected": "rejected"}


def result_from_plan(plan: Plan, seconds: float = 0.0) -> RunResult:
    """A plan as a RunResult, so that plans get the same step summary, annotations and
    JUnit as apply: build/rebuild are ``pending``, reuse is ``reused``, skip is ``skipped``
    and rejected stays ``rejected`` (an engine that failed its accuracy check before and is
    not retried: an error worth annotating in a PR).

    Args:
        plan: the plan.
        seconds: how long planning took.

    Returns:
        One outcome per action, in plan order.
    """
    outcomes = [action_outcome(action, PLAN_STATUS.get(action.kind, "error"), action.reason)
                for action in plan.actions]
    return RunResult("plan", outcomes, seconds)


def _add(matrix: dict[str, dict[str, Any]], target: str, manifest: str | None) -> None:
    entry = matrix.setdefault(target, {"target": target, "engines": 0, "manifests": []})
    entry["engines"] += 1
    if manifest and manifest not in entry["manifests"]:
        entry["manifests"].append(manifest)


def matrix_from_plan(plan: Plan | Sequence[Action]) -> list[dict[str, Any]]:
    """Targets with pending work (build or rebuild), for a CI job matrix.

    Args:
        plan: a plan, or its actions.

    Returns:
        One dict per target name in first-seen order: ``target`` (for ``apply --target``),
        ``engines`` (how many engines to build) and ``manifests`` (names of the manifests
        that have them; a target name may be declared in several manifests). Empty when
        nothing needs building.
    """
    actions = plan.actions if isinstance(plan, Plan) else plan
    matrix: dict[str, dict[str, Any]] = {}
    for action in actions:
        if action.pending:
            _add(matrix, action.spec.target.name, action.spec.manifest_name)
    return list(matrix.values())


# --------------------------------------------------------------------------- documents


def _get(data: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def _document_target(action: Mapping[str, Any], engine_id: Any) -> str | None:
    """Target name of an action document, whatever the nesting."""
    for path in (("spec", "target"), ("target",)):
        value = _get(action, *path)
        if isinstance(value, Mapping) and value.get("name"):
            return str(value["name"])
        if isinstance(value, str) and value:
            return value
    return engine_id.target if engine_id is not None else None
