"""One TensorRT logger per process, routing messages to whoever is capturing them.

TensorRT keeps the first logger it is given as its process-wide logger ("the logger passed
into createInferBuilder differs from one already provided"). A logger per build would
therefore either lose messages or, once garbage-collected, leave TensorRT with a dangling
pointer. So trtops creates exactly one :class:`trt.ILogger` subclass instance, never frees
it, and lets each build register a :class:`LogCapture` sink for the time it runs.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any, Callable, TextIO

if TYPE_CHECKING:
    import tensorrt

    from trtops.trt.api import TensorRT

_LOCK = threading.Lock()
_SINKS: list["LogCapture"] = []
_LOGGER: Any = None

SEVERITY_TAGS = {0: "F", 1: "E", 2: "W", 3: "I", 4: "V"}
ERROR = 1
WARNING = 2
INFO = 3


class LogCapture:
    """Collects TensorRT and trtops messages for one build.

    Args:
        echo: called with each warning/error line as it happens (progress for the user).
        max_lines: how many lines ``text`` keeps (the newest).
        min_severity: the most verbose severity kept (3 = info, 4 = verbose).
        stream: a text stream that gets every kept line as it happens (to watch a build
            that seems stuck; the in-memory log is lost when the process is killed).
    """

    def __init__(self, echo: Callable[[str], None] | None = None, max_lines: int = 20000,
                 min_severity: int = INFO, stream: TextIO | None = None) -> None:
        self.echo = echo
        self.stream = stream
        self.min_severity = min_severity
        self.lines: deque[str] = deque(maxlen=max_lines)
        self.errors: deque[str] = deque(maxlen=200)
        # kept for the failure diagnosis: TensorRT tells of skipped tactics as warnings
        self.warnings: deque[str] = deque(maxlen=200)
        self._start = time.monotonic()

    def add(self, severity: int, message: str, source: str = "TRT") -> None:
        if severity > self.min_severity:
            return
        tag = SEVERITY_TAGS.get(severity, "?")
        line = f"[{time.monotonic() - self._start:8.2f}s] [{source}] [{tag}] {message.rstrip()}"
        self.lines.append(line)
        if self.stream is not None:
            try:
                self.stream.write(line + "\n")
                self.stream.flush()
            except Exception:  # a closed stream must not break the build
                pass
        if severity <= ERROR:
            self.errors.append(message.rstrip())
        elif severity == WARNING:
            self.warnings.append(message.rstrip())
        if self.echo is not None and (severity <= WARNING or source == "trtops"):
            try:
                self.echo(line)
            except Exception:  # a broken progress callback must not break the build
                pass

    def info(self, message: str) -> None:
        """A trtops progress line (always echoed)."""
        self.add(INFO, message, source="trtops")

    def warning(self, message: str) -> None:
        self.add(WARNING, message, source="trtops")

    @property
    def text(self) -> str:
        return "\n".join(self.lines) + ("\n" if self.lines else "")

    def tail(self, count: int = 20) -> str:
        return "\n".join(list(self.lines)[-count:])

    def __enter__(self) -> "LogCapture":
        with _LOCK:
            _SINKS.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        with _LOCK:
            if self in _SINKS:
                _SINKS.remove(self)


def _dispatch(severity: int, message: str) -> None:
    with _LOCK:
        sinks = list(_SINKS)
    for sink in sinks:
        sink.add(severity, message)


def get_logger(trt: TensorRT) -> tensorrt.ILogger:
    """The process-wide TensorRT logger (created on first use, never released).

    Args:
        trt: the imported ``tensorrt`` module.

    Returns:
        A ``trt.ILogger`` instance that forwards to the active :class:`LogCapture` sinks.
    """
    global _LOGGER
    with _LOCK:
        if _LOGGER is not None:
            return _LOGGER

        # A class made from a module handed in at run time is beyond a type checker.
        class _TrtopsLogger(trt.ILogger):  # type: ignore[name-defined]
            def __init__(self) -> None:
                trt.ILogger.__init__(self)

            def log(self, severity, msg):  # noqa: D401 - TensorRT callback
                # Called from TensorRT (noexcept in C++): never let an exception escape.
                try:
                    _dispatch(int(severity), str(msg))
                except KeyboardInterrupt:
                    # An exception cannot cross TensorRT's C++ frames; end the process as a
                    # Ctrl-C would (Polygraphy does the same).
                    os.kill(os.getpid(), signal.SIGTERM)
                except Exception:
                    pass

        _LOGGER = _TrtopsLogger()
        return _LOGGER
