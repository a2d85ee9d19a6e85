"""Byte progress of transfers over many entries (push, pull): a bar in a terminal, a line
per finished entry elsewhere."""

from __future__ import annotations

import threading
from typing import Any

from trtops.textsafe import terminal_safe


class TransferProgress:
    """Byte progress over many entries, safe from worker threads.

    In a terminal: one rich bar with size, speed and time left, and a line per finished
    entry. Elsewhere (CI, pipes): only a line per finished entry, so logs stay readable.
    The totals may grow while entries are already moving (:meth:`expect`, a pull whose
    selection is still going on); the lines of finished entries then wait for
    :meth:`all_known`, so every ``[i/n]`` shows the final n.
    """

    def __init__(self, total_bytes: int, total_items: int, title: str, *,
                 interactive: bool | None = None, quiet: bool = False) -> None:
        from trtops import console

        self.total_bytes = max(0, int(total_bytes))
        self.total_items = max(0, int(total_items))
        self.title = title
        self.quiet = quiet
        self.interactive = not quiet and (console.is_interactive() if interactive is None
                                          else interactive)
        self._lock = threading.Lock()
        self._done_items = 0
        self._known = True
        self._held: list[tuple[str, str]] = []  # (label, message) until all_known
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> TransferProgress:
        if self.interactive and self.total_items:
            self._start_bar()
        return self

    def _start_bar(self) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )
        from rich.progress import (
            Progress as RichProgress,
        )

        from trtops import console

        self._bar = RichProgress(
            TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
            TransferSpeedColumn(), TimeRemainingColumn(), console=console.err(),
            transient=True,
        )
        self._bar.__enter__()
        self._task = self._bar.add_task(self.title, total=self.total_bytes or None)

    def __exit__(self, *exc: object) -> None:
        self.all_known()
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None

    def expect(self, total_bytes: int, total_items: int) -> None:
        """More to move than the totals so far; finished lines wait for :meth:`all_known`."""
        with self._lock:
            self._known = False
            self.total_bytes += max(0, int(total_bytes))
            self.total_items += max(0, int(total_items))
            if self._bar is not None:
                self._bar.update(self._task, total=self.total_bytes or None)
            elif self.interactive and self.total_items:
                self._start_bar()

    def all_known(self) -> None:
        """The totals are final: print the lines held back."""
        with self._lock:
            self._known = True
            held, self._held = self._held, []
            lines = [self._line(index, label, message)
                     for index, (label, message) in enumerate(held, self._done_items - len(held) + 1)]
        for line in lines:
            self._print(line)

    def advance(self, count: int) -> None:
        """``count`` more bytes moved (the callback given to transfers)."""
        if self._bar is not None:
            self._bar.update(self._task, advance=count)

    def item_done(self, label: str, message: str) -> None:
        """An entry finished; prints ``[i/n] label: message``."""
        if self.quiet:
            return
        with self._lock:
            self._done_items += 1
            if not self._known:
                self._held.append((label, message))
                return
            line = self._line(self._done_items, label, message)
        self._print(line)

    def _line(self, index: int, label: str, message: str) -> str:
        width = len(str(self.total_items)) or 1
        return terminal_safe(f"[{index:>{width}}/{self.total_items}] {label}: {message}",
                             limit=None)

    def _print(self, line: str) -> None:
        if self._bar is not None:
            self._bar.console.print(line, markup=False, highlight=False)
        else:
            import sys

            sys.stderr.write(line + "\n")
            sys.stderr.flush()
