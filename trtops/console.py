"""Terminal vs. CI output: the one place that decides whether trtops is interactive.

Interactive (colors, progress bars, rich tables) only when stderr is a terminal, no CI
system is detected, ``TERM`` is not ``dumb`` and ``TRTOPS_PLAIN`` is not set. ``NO_COLOR``
(https://no-color.org) removes colors but keeps the rest. Everything else gets plain,
line-buffered text: CI log viewers show raw ANSI codes and carriage-return progress bars
as garbage, and block-buffered pipes interleave stdout and stderr out of order.

Streams: data (tables, ``--json`` documents) goes to stdout, logs and progress to stderr,
so that ``trtops plan --json > plan.json`` stays parseable whatever is logged.

Consoles are created lazily and follow ``sys.stdout``/``sys.stderr`` at write time, so
tests that redirect the streams see the output.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from trtops.names import switch
from trtops.textsafe import terminal_safe

if TYPE_CHECKING:  # rich is imported lazily: `import trtops.cli` must stay fast
    from rich.console import Console

# Environment variables set by CI systems. `CI` covers GitHub Actions, GitLab CI, CircleCI,
# Travis, Buildkite, Drone, Bitbucket and Woodpecker; the others are for systems that do
# not set it (Azure Pipelines, Jenkins, TeamCity).
CI_VARIABLES = ("CI", "GITHUB_ACTIONS", "GITLAB_CI", "BUILDKITE", "TF_BUILD", "JENKINS_URL",
                "TEAMCITY_VERSION")
PLAIN_VARIABLE = "TRTOPS_PLAIN"
LOGGER_NAME = "trtops"

def _truthy(value: str | None) -> bool:
    """Set to anything but empty or an off word (a CI system's own value counts as on)."""
    return value is not None and value.strip() != "" and switch(value.strip()) is not False


def in_ci(environ: Mapping[str, str] | None = None) -> bool:
    """True when a CI system is detected from its environment variables."""
    env = os.environ if environ is None else environ
    return any(_truthy(env.get(name)) for name in CI_VARIABLES)


def in_github_actions(environ: Mapping[str, str] | None = None) -> bool:
    """True inside a GitHub Actions job (``GITHUB_ACTIONS=true``)."""
    env = os.environ if environ is None else environ
    return env.get("GITHUB_ACTIONS", "").lower() == "true"


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # closed or replaced streams
        return False


@dataclass(frozen=True)
class Mode:
    """How to write to the user: ``interactive`` (progress bars, rich tables) and ``color``."""

    interactive: bool
    color: bool


def detect(stream: IO[str] | None = None, environ: Mapping[str, str] | None = None) -> Mode:
    """Decide the output mode for ``stream`` (default: stderr, where progress goes).

    Args:
        stream: the stream that would show progress and colors.
        environ: environment variables (default: ``os.environ``).

    Returns:
        The :class:`Mode`: interactive only on a terminal outside CI, without
        ``TRTOPS_PLAIN`` and with a ``TERM`` other than ``dumb``; color only when
        interactive and ``NO_COLOR`` is unset or empty.
    """
    env = os.environ if environ is None else environ
    stream = sys.stderr if stream is None else stream
    interactive = (
        _isatty(stream)
        and not in_ci(env)
        and not _truthy(env.get(PLAIN_VARIABLE))
        and env.get("TERM", "") != "dumb"
    )
    # no-color.org: "when present and not an empty string", whatever its value.
    color = interactive and not env.get("NO_COLOR")
    return Mode(interactive=interactive, color=color)


def make_console(*, stderr: bool, mode: Mode | None = None, file: IO[str] | None = None) -> Console:
    """A rich Console for stderr (logs, progress) or stdout (data) in the given mode.

    Args:
        stderr: write to stderr (True) or stdout (False); ignored when ``file`` is given.
        mode: output mode (default: :func:`detect` for that stream).
        file: an explicit stream (tests); default follows ``sys.stderr``/``sys.stdout``.

    Returns:
        A Console. In plain mode it never emits ANSI codes, never wraps long lines (log
        lines stay greppable) and has no live display.
    """
    from rich.console import Console

    if mode is None:
        mode = detect(file if file is not None else (sys.stderr if stderr else sys.stdout))
    if mode.interactive:
        return Console(file=file, stderr=stderr, no_color=not mode.color, highlight=False,
                       emoji=False)
    return Console(
        file=file,
        stderr=stderr,
        force_terminal=False,
        force_interactive=False,
        force_jupyter=False,
        no_color=True,
        color_system=None,
        highlight=False,
        emoji=False,
        soft_wrap=True,
        # Plain output is not wrapped; the width only shapes the rare rich renderable.
        width=int(os.environ.get("COLUMNS", "0") or 0) or 160,
    )


_lock = threading.Lock()
_consoles: dict[str, Console] = {}


def err() -> Console:
    """The shared Console for logs and progress (stderr)."""
    with _lock:
        if "err" not in _consoles:
            _consoles["err"] = make_console(stderr=True)
        return _consoles["err"]


def out() -> Console:
    """The shared Console for data (stdout): tables and documents."""
    with _lock:
        if "out" not in _consoles:
            # Tables on stdout follow the terminal-ness of stdout (`trtops status | less`
            # gets plain text) but CI and TRTOPS_PLAIN still decide.
            _consoles["out"] = make_console(stderr=False, mode=detect(sys.stdout))
        return _consoles["out"]


def reset() -> None:
    """Forget the shared consoles (tests change the environment between runs)."""
    with _lock:
        _consoles.clear()


def is_interactive() -> bool:
    """True when progress bars and colors may be used on stderr."""
    return detect().interactive


# --------------------------------------------------------------------------- streams, logging


@contextlib.contextmanager
def library_output_to_stderr() -> Iterator[None]:
    """Send what libraries print (graph surgeon's and Polygraphy's loggers use ``print``)
    to stderr while they run, so that stdout carries only trtops' own output: a ``--json``
    document must stay parseable (a folding warning once came first on stdout)."""
    with contextlib.redirect_stdout(sys.stderr):
        yield


def line_buffer_streams() -> None:
    """Flush stdout and stderr at every newline, even into a pipe.

    A CI log is a pipe: Python would block-buffer stdout and the job log would show data
    long after the log lines around it, or lose it when the job is killed.
    """
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is None:
            continue
        try:
            reconfigure(line_buffering=True)
        except (ValueError, OSError):  # a detached or closed stream: leave it alone
            pass


class _PlainFormatter(logging.Formatter):
    """``message`` for info, ``warning: message`` for the rest: CI logs add their own time."""

    def format(self, record: logging.LogRecord) -> str:
        from trtops.redact import redact

        text = terminal_safe(redact(record.getMessage()), limit=None, keep_lines=True)
        if record.levelno != logging.INFO:
            text = f"{record.levelname.lower()}: {text}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return redact(text)


class _SafeFormatter(logging.Formatter):
    """Log messages quote names from models and remotes: escaped for the terminal, secrets
    redacted (the rich handler's formatter; tracebacks go through :meth:`format` too)."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        return terminal_safe(super().formatMessage(record), limit=None, keep_lines=True)

    def format(self, record: logging.LogRecord) -> str:
        from trtops.redact import redact

        return redact(super().format(record))


class _StderrHandler(logging.Handler):
    """Writes to whatever ``sys.stderr`` is at emit time (pytest's capture, a redirect)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)


_HANDLER_ATTR = "_trtops_console_handler"


def configure_logging(verbose: bool = False) -> logging.Logger:
    """Route the ``trtops`` logger to stderr: rich in a terminal, plain lines elsewhere.

    Idempotent: calling it again replaces the handler it added before.

    Args:
        verbose: log debug messages too.

    Returns:
        The ``trtops`` logger.
    """
    logger = logging.getLogger(LOGGER_NAME)
    for handler in list(logger.handlers):
        if getattr(handler, _HANDLER_ATTR, False):
            logger.removeHandler(handler)
    handler: logging.Handler
    if is_interactive():
        from rich.logging import RichHandler

        handler = RichHandler(console=err(), show_time=False, show_path=False,
                              markup=False, rich_tracebacks=False)
        handler.setFormatter(_SafeFormatter("%(message)s"))
    else:
        handler = _StderrHandler()
        handler.setFormatter(_PlainFormatter())
    setattr(handler, _HANDLER_ATTR, True)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    return logger


def setup(verbose: bool = False) -> None:
    """Prepare the process for output: line-buffered streams, fresh consoles, logging.

    The CLI calls this once before running a command.
    """
    line_buffer_streams()
    reset()
    configure_logging(verbose)


# --------------------------------------------------------------------------- progress


class Progress:
    """Progress over a known number of items (engines), safe to call from worker threads.

    In a terminal it is a rich progress bar whose description shows the current item, with
    one line printed above the bar per finished item. Elsewhere every call prints one plain
    line on stderr: ``[3/8] model/fp16/lab: building...`` then ``[3/8] model/fp16/lab: built
    (12.3s)``, so that a CI log tells which engine was being built when a job died.

    Use as a context manager::

        with Progress(len(actions), "apply") as progress:
            progress.start("resnet50/fp16/lab", "building")
            progress.update("resnet50/fp16/lab", "verifying")
            progress.finish("resnet50/fp16/lab", "built")
    """

    def __init__(self, total: int, title: str = "", *, interactive: bool | None = None,
                 console: Console | None = None) -> None:
        self.total = max(int(total), 0)
        self.title = title
        self.interactive = is_interactive() if interactive is None else interactive
        self._console = console
        self._lock = threading.Lock()
        self._index: dict[str, int] = {}
        self._started: dict[str, float] = {}
        self._next = 0
        self._bar: Any = None
        self._task: Any = None

    # -- context manager
    def __enter__(self) -> Progress:
        if self.interactive:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
            )
            from rich.progress import (
                Progress as RichProgress,
            )

            self._bar = RichProgress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=self._console or err(),
                transient=True,
            )
            self._bar.__enter__()
            self._task = self._bar.add_task(self.title or "working", total=self.total or None)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None

    # -- reporting
    def _position(self, item: str) -> str:
        index = self._index.get(item)
        if index is None:
            self._next += 1
            index = self._index[item] = self._next
        width = len(str(self.total)) if self.total else 1
        return f"[{index:>{width}}/{self.total}]"

    def _plain(self, line: str) -> None:
        line = terminal_safe(line, limit=None)
        if self._console is not None:
            self._console.print(line, markup=False, highlight=False)
            return
        sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def start(self, item: str, message: str = "working") -> None:
        """Begin work on ``item`` (takes the next position) with ``message``."""
        with self._lock:
            self._started[item] = time.monotonic()
            self._phase(item, message)

    def update(self, item: str, message: str) -> None:
        """A new phase of work on ``item`` (verifying, uploading...)."""
        with self._lock:
            self._phase(item, message)

    def _phase(self, item: str, message: str) -> None:
        # Caller holds self._lock.
        position = self._position(item)
        if self._bar is not None:
            self._bar.update(self._task, description=terminal_safe(f"{item}: {message}", limit=None))
        else:
            self._plain(f"{position} {item}: {message}...")

    def finish(self, item: str, message: str = "done", *, seconds: float | None = None) -> None:
        """``item`` is done with ``message`` (its status); the elapsed time is appended."""
        with self._lock:
            position = self._position(item)
            started = self._started.pop(item, None)
            if seconds is None and started is not None:
                seconds = time.monotonic() - started
            suffix = f" ({seconds:.1f}s)" if seconds is not None else ""
            line = terminal_safe(f"{position} {item}: {message}{suffix}", limit=None)
            if self._bar is not None:
                self._bar.console.print(line, markup=False, highlight=False)
                self._bar.update(self._task, advance=1, description=self.title or "working")
            else:
                self._plain(line)


def progress(total: int, title: str = "") -> Progress:
    """A :class:`Progress` in the mode :func:`detect` chose."""
    return Progress(total, title)
