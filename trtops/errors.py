"""Error types and the exit-code contract.

Every error a user can fix derives from :class:`TrtopsError`; the CLI catches it once and
maps it to an exit code. :class:`InternalError` is a bug in trtops (exit 70).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from trtops.textsafe import terminal_safe

#: Longest hint shown: hints may list names from a model (see textsafe.name_list).
_MAX_HINT = 2000


class ExitCode(IntEnum):
    OK = 0
    USER_ERROR = 1
    CHANGES_PENDING = 2
    BUILD_FAILED = 3
    ACCURACY_FAILED = 4
    ENVIRONMENT = 5
    PERFORMANCE_FAILED = 6
    INTERNAL = 70


@dataclass(frozen=True)
class SourceLocation:
    """Where in a manifest something was written (1-based line and column)."""

    file: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        if self.line is None:
            return self.file
        if self.column is None:
            return f"{self.file}:{self.line}"
        return f"{self.file}:{self.line}:{self.column}"


class TrtopsError(Exception):
    """A problem the user can fix. ``hint`` says how."""

    exit_code: ExitCode = ExitCode.USER_ERROR

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def render(self) -> str:
        # Messages quote names from models, remotes and files: escaped for the terminal.
        text = f"error: {terminal_safe(self.message, limit=None, keep_lines=True)}"
        if self.hint:
            text += f"\n  hint: {terminal_safe(self.hint, limit=_MAX_HINT, keep_lines=True)}"
        return text


@dataclass(frozen=True)
class Problem:
    """One finding in a manifest: where, which field, what is wrong, what to do."""

    location: SourceLocation
    field: str
    message: str
    hint: str | None = None
    # "warning": worth knowing, nothing to fix (validate prints it and still passes; it
    # never stops a plan or apply).
    severity: str = "error"

    def render(self) -> str:
        where = f"{self.location}: " if self.location else ""
        text = f"{where}{self.field}: {self.message}" if self.field else f"{where}{self.message}"
        if self.hint:
            text += f" ({terminal_safe(self.hint, limit=_MAX_HINT)})"
        return terminal_safe(text, limit=None)


class ManifestError(TrtopsError):
    """One or more problems in manifest files, all reported at once."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        summary = f"{count} problem{'s' if count != 1 else ''} in manifest(s)"
        super().__init__(summary)

    def render(self) -> str:
        lines = [f"error: {p.render()}" for p in self.problems]
        lines.append(f"{self.message}; nothing was built")
        return "\n".join(lines)


class InputError(TrtopsError):
    """Bad command-line arguments or input files other than manifests."""


class CacheError(TrtopsError):
    """The engine cache is unusable (corrupt entry, lock timeout, unreachable remote)."""


class RemoteError(CacheError):
    """A remote cache could not be reached or refused a request."""


class EnvironmentMissing(TrtopsError):
    """TensorRT, a GPU or another runtime dependency is missing for what was asked."""

    exit_code = ExitCode.ENVIRONMENT


class BuildError(TrtopsError):
    """A TensorRT build failed. ``cause`` names why, where known (a key of
    ``trtops.trt.failure_causes.CAUSES``: ``shapes``, ``unsupported_node``, ...)."""

    exit_code = ExitCode.BUILD_FAILED

    def __init__(self, message: str, hint: str | None = None, cause: str | None = None) -> None:
        super().__init__(message, hint)
        self.cause = cause


class AccuracyError(TrtopsError):
    """An engine disagreed with its ONNX model beyond the tolerances."""

    exit_code = ExitCode.ACCURACY_FAILED


class PlanMismatch(TrtopsError):
    """A saved plan no longer matches the cache or platform it was made for."""


class InternalError(Exception):
    """A bug in trtops. Not a TrtopsError on purpose: it must never be mistaken for user error."""


#: The exit code of a run whose engines failed differently: the first of these present
#: (docs/exit-codes.md says why). A slow engine is still a correct one: a performance
#: failure ranks below every failure that leaves no usable engine.
EXIT_PRECEDENCE = (ExitCode.INTERNAL, ExitCode.ENVIRONMENT, ExitCode.BUILD_FAILED,
                   ExitCode.ACCURACY_FAILED, ExitCode.PERFORMANCE_FAILED, ExitCode.USER_ERROR)


@dataclass
class Outcome:
    """Exit code accumulator for commands that process many engines."""

    codes: list[ExitCode] = field(default_factory=list)

    def add(self, code: ExitCode) -> None:
        self.codes.append(code)

    @property
    def exit_code(self) -> ExitCode:
        failures = [c for c in self.codes if c not in (ExitCode.OK, ExitCode.CHANGES_PENDING)]
        if failures:
            # Build failures outrank accuracy failures: they say less about the engine.
            order = EXIT_PRECEDENCE
            for code in order:
                if code in failures:
                    return code
        return ExitCode.OK
