"""Per-engine results of a command (apply, verify, pull), the input of every report format
(terminal summary, --json, --junit, GitHub step summary and annotations), and how a failure
becomes an outcome status (the one mapping, in this process or from a build worker)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from trtops.errors import (
    EXIT_PRECEDENCE,
    AccuracyError,
    BuildError,
    EnvironmentMissing,
    ExitCode,
    TrtopsError,
)

if TYPE_CHECKING:  # the planner's model; outcomes are read by modules the planner never needs
    from trtops.plan.model import Action

# status -> exit code contributed (see the README's exit-code table)
STATUS_EXIT = {
    "built": ExitCode.OK,
    "reused": ExitCode.OK,
    "downloaded": ExitCode.OK,
    "pushed": ExitCode.OK,
    "pulled": ExitCode.OK,
    "verified": ExitCode.OK,
    "skipped": ExitCode.OK,
    "pending": ExitCode.CHANGES_PENDING,
    "build_failed": ExitCode.BUILD_FAILED,
    "accuracy_failed": ExitCode.ACCURACY_FAILED,
    "rejected": ExitCode.ACCURACY_FAILED,
    "perf_failed": ExitCode.PERFORMANCE_FAILED,
    "benched": ExitCode.OK,
    "environment": ExitCode.ENVIRONMENT,
    "invalid": ExitCode.USER_ERROR,
    "error": ExitCode.INTERNAL,
}


@dataclass
class EngineOutcome:
    """What happened to one engine."""

    id: str  # manifest_name/model/precision/target
    manifest: str  # manifest file path (for annotations)
    line: int | None  # line of the model in the manifest
    model: str
    precision: str
    target: str
    action: str  # planner action: build | rebuild | reuse | skip | rejected
    status: str  # a key of STATUS_EXIT
    key: str | None = None
    seconds: float | None = None
    message: str = ""  # reason or error, one line
    details: str = ""  # longer text (build log tail, accuracy table)
    accuracy: dict[str, Any] | None = None  # accuracy.json summary (passed, worst outputs)
    engine_bytes: int | None = None
    perf: dict[str, Any] | None = None  # perf.json summary (trtops.perf.document.perf_summary)

    @property
    def failed(self) -> bool:
        return STATUS_EXIT.get(self.status, ExitCode.INTERNAL) not in (ExitCode.OK, ExitCode.CHANGES_PENDING)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RunResult:
    """All outcomes of one command run."""

    command: str
    outcomes: list[EngineOutcome] = field(default_factory=list)
    seconds: float = 0.0
    # select: fastest: the choice per manifest/model/target (trtops.perf.select), and the
    # record per engine id the lock keeps ({"policy", "chosen", "precision", "reason"})
    selections: dict[str, dict[str, Any]] = field(default_factory=dict)
    selected: dict[str, dict[str, Any]] = field(default_factory=dict)

    def exit_code(self) -> ExitCode:
        codes = [STATUS_EXIT.get(o.status, ExitCode.INTERNAL) for o in self.outcomes]
        for code in EXIT_PRECEDENCE:
            if code in codes:
                return code
        return ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for outcome in self.outcomes:
            counts[outcome.status] = counts.get(outcome.status, 0) + 1
        document = {
            "command": self.command,
            "exit_code": int(self.exit_code()),
            "seconds": round(self.seconds, 3),
            "counts": counts,
            "engines": [o.to_json() for o in self.outcomes],
        }
        if self.selections:
            document["selections"] = self.selections
        return document

    def apply_selections(self, selections: dict[str, dict[str, Any]],
                         selected: dict[str, dict[str, Any]]) -> None:
        """Record ``select: fastest``'s choices (:func:`trtops.ops.select.select_from_outcomes`)
        and say on the chosen engines' lines why they were chosen."""
        self.selections, self.selected = selections, selected
        for outcome in self.outcomes:
            record = selected.get(outcome.id)
            if record and record.get("chosen"):
                note = f"selected as {outcome.model}'s default loader: {record['reason']}"
                outcome.message = f"{outcome.message}; {note}" if outcome.message else note


def failure_status(exc: TrtopsError) -> str:
    """The outcome status of an engine whose build, check or publish raised ``exc``."""
    status = getattr(exc, "outcome_status", None)  # a failure reported by a build worker
    if isinstance(status, str):
        return status
    if isinstance(exc, EnvironmentMissing):
        return "environment"
    if isinstance(exc, AccuracyError):
        return "accuracy_failed"
    if isinstance(exc, BuildError):
        return "build_failed"
    if exc.exit_code == ExitCode.USER_ERROR:
        return "invalid"  # bad calibration or accuracy data, for instance
    return "build_failed"


def failure_text(exc: TrtopsError) -> str:
    """An outcome's message for ``exc``: its message, then its hint in parentheses."""
    return exc.message + (f" (hint: {exc.hint})" if exc.hint else "")


def action_outcome(action: Action, status: str, message: str = "", **fields: Any) -> EngineOutcome:
    """The outcome of one planned action: its engine's identity, its key, ``status``.

    Args:
        action: the planner's action.
        status: a key of :data:`STATUS_EXIT`.
        message: reason or error, one line.
        **fields: other :class:`EngineOutcome` fields (seconds, details, accuracy ...).

    Returns:
        The outcome.
    """
    spec = action.spec
    return EngineOutcome(
        id=spec.id, manifest=spec.manifest, line=spec.line, model=spec.model,
        precision=spec.precision, target=spec.target.name, action=action.kind, status=status,
        key=action.key.key if action.key else None, message=message, **fields,
    )


def same_engine_outcome(action: Action, earlier: EngineOutcome) -> EngineOutcome:
    """The outcome of an action whose engine (same key) another action already produced:
    ``earlier``'s verdict under this action's identity."""
    return action_outcome(action, earlier.status, f"same engine as {earlier.id}",
                          accuracy=earlier.accuracy, engine_bytes=earlier.engine_bytes,
                          perf=earlier.perf)


def accuracy_summary(accuracy: dict[str, Any]) -> dict[str, Any]:
    """The fields of an accuracy.json that an outcome reports."""
    return {k: accuracy.get(k) for k in ("state", "passed", "summary", "worst") if k in accuracy}
