"""When each step of a pull happens: the listing, every meta.json read (sent, answered),
each speculative download and each selected entry handed on, the journal's write, and
when each engine.plan body starts and ends (handed to a copier, copied); then, per engine
download, how long its worker took to send the GET (trtops' own work), the GET to be
answered (the server, and this interpreter's GIL to take the answer), and the answer to
be handed over. It answers why a pull is slower than its byte path
(benchmarks/pull_processes.py): downloads that start late, and what they waited for.

Beside it, the same engine bodies as direct GETs all sent at once (pull_bandwidth.py's
direct_gets: JOBS threads, bodies received and discarded in this interpreter): how long the server takes to answer a GET
while the other bodies stream. A pull whose "GET sent -> answered" is about this baseline's
waits for the server; one whose is much longer waits for its own interpreter.

4 rounds of ``trtops pull -j JOBS`` into an empty cache: the median of the last 3, and
the last round's timeline. Same SeaweedFS server and engines as pull_bandwidth.py
(20 x 50 MB; ``--engines``/``--mb``). Times are seconds from the pull's start (its cache
directory already removed).

Usage (lab, set up as for pull_bandwidth.py):
  PYTHONPATH=$PWD:$PWD/tests:/opt/bench python3 benchmarks/pull_timeline.py [--jobs 20]
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pull_bandwidth as bench  # noqa: E402
import pull_threads  # noqa: E402


class Timeline:
    """Events (seconds since :meth:`start`, what, which key's last 6 characters)."""

    def __init__(self) -> None:
        self.events: list[tuple[float, str, str]] = []
        self.origin = time.perf_counter()
        self.lock = threading.Lock()

    def start(self) -> None:
        with self.lock:
            self.events.clear()
            self.origin = time.perf_counter()

    def note(self, what: str, key: str = "") -> None:
        with self.lock:
            self.events.append((time.perf_counter() - self.origin, what, key[-6:]))

    def at(self, what: str) -> list[float]:
        return sorted(t for t, kind, _ in self.events if kind == what)

    def latencies(self, sent: str, answered: str) -> list[float]:
        """Milliseconds from each ``sent`` to the ``answered`` of the same key."""
        start = {key: t for t, kind, key in self.events if kind == sent}
        return [(t - start[key]) * 1e3 for t, kind, key in self.events
                if kind == answered and key in start]

    def span(self, sent: str, answered: str) -> str:
        """The median and largest of :meth:`latencies`, for humans."""
        spans = sorted(self.latencies(sent, answered))
        if not spans:
            return "-"
        return f"median {statistics.median(spans):.1f} ms, max {spans[-1]:.1f} ms"


@contextmanager
def traced(timeline: Timeline) -> Iterator[None]:
    """Note the pull's steps while inside (the functions it calls are wrapped)."""
    from trtops.cache import s3_direct, s3_transport
    from trtops.ops import pull, pull_downloads

    patched: list[tuple[Any, str, Any]] = []

    def wrap(owner: Any, name: str, make: Callable[[Any], Any]) -> None:
        original = getattr(owner, name)
        patched.append((owner, name, original))
        setattr(owner, name, make(original))

    def around(before: str, after: str, key_of: Callable[..., str]) -> Callable[[Any], Any]:
        def make(original: Any) -> Any:
            def call(*args: Any, **kwargs: Any) -> Any:
                timeline.note(before, key_of(*args, **kwargs))
                try:
                    return original(*args, **kwargs)
                finally:
                    timeline.note(after, key_of(*args, **kwargs))
            return call
        return make

    def engine_body(original: Any) -> Any:
        def call(copiers: Any, body: Any, sink: Any, size: int, **kwargs: Any) -> Any:
            relative = str(getattr(sink, "relative", ""))
            engine = relative.endswith("engine.plan")
            if engine:
                timeline.note("body start", relative.rsplit("/", 1)[0])
            handed = original(copiers, body, sink, size, **kwargs)
            if engine:
                timeline.note("body end", relative.rsplit("/", 1)[0])
            return handed
        return call

    def step(what: str) -> Callable[[Any], Any]:
        def make(original: Any) -> Any:
            def call(self: Any, arg: Any) -> Any:
                timeline.note(what, str(getattr(arg, "key", arg)))
                return original(self, arg)
            return call
        return make

    wrap(pull, "list_entry_files", around("list sent", "list answered", lambda remote: ""))
    wrap(pull, "_read_meta", around("meta sent", "meta answered", lambda remote, key: key))
    wrap(pull_downloads, "deferred_durability",
         around("journal start", "journal written", lambda *args: ""))
    wrap(s3_transport, "hand_over", engine_body)

    def engine_get(original: Any) -> Any:
        def call(self: Any, key: str, **kwargs: Any) -> Any:
            engine = key.endswith("engine.plan") and not kwargs.get("byte_range")
            if engine:
                timeline.note("GET sent", key.rsplit("/", 1)[0])
            try:
                return original(self, key, **kwargs)
            finally:
                if engine:
                    timeline.note("GET answered", key.rsplit("/", 1)[0])
        return call

    def staging(original: Any) -> Any:
        def call(self: Any, candidate: Any, *args: Any) -> Any:
            timeline.note("stage start", candidate.key)
            return original(self, candidate, *args)
        return call

    wrap(s3_direct.DirectGets, "open", engine_get)
    wrap(pull_downloads.Downloads, "stage", staging)
    for name in ("speculate", "submit", "withdraw"):
        wrap(pull_downloads.Downloads, name, step(name))
    try:
        yield
    finally:
        for owner, name, original in reversed(patched):
            setattr(owner, name, original)


def spread(times: list[float]) -> str:
    return f"{times[0]:.3f}..{times[-1]:.3f}" if times else "-"


def runs_line(label: str, seconds: list[float]) -> str:
    return (f"{label}: median {statistics.median(seconds):.3f} s "
            f"(runs {', '.join(f'{s:.3f}' for s in seconds)}); last round:")


def report(label: str, seconds: list[float], timeline: Timeline) -> list[str]:
    bodies = timeline.at("body start")
    meta = timeline.latencies("meta sent", "meta answered")
    return [
        runs_line(label, seconds),
        f"  listing answered    {spread(timeline.at('list answered'))}",
        f"  meta.json sent      {spread(timeline.at('meta sent'))}  "
        f"answered {spread(timeline.at('meta answered'))}  "
        f"(each {min(meta, default=0):.0f}-{max(meta, default=0):.0f} ms)",
        f"  speculated          {len(timeline.at('speculate'))}, withdrawn "
        f"{len(timeline.at('withdraw'))}, handed on {len(timeline.at('submit'))} "
        f"(from {spread(timeline.at('submit'))})",
        f"  journal             {spread(timeline.at('journal start') + timeline.at('journal written'))}",
        f"  engine bodies start {' '.join(f'{t:.3f}' for t in bodies)}",
        f"  engine bodies end   {' '.join(f'{t:.3f}' for t in timeline.at('body end'))}",
        "  each engine download, from its worker's start (trtops' own work, in this",
        "  interpreter) to its GET (sent until the response headers) to its body's handover:",
        f"    worker start -> GET sent      {timeline.span('stage start', 'GET sent')}",
        f"    GET sent -> answered          {timeline.span('GET sent', 'GET answered')}",
        f"    GET answered -> body start    {timeline.span('GET answered', 'body start')}",
    ]


def direct_get_spans(store: Any, keys: list[str], jobs: int) -> tuple[float, Timeline]:
    """pull_bandwidth.py's direct GETs of every engine body, all sent at once, traced as
    the pull's are (the same wrapper of DirectGets.open): their seconds and timeline."""
    timeline = Timeline()
    with traced(timeline):
        timeline.start()  # direct_gets lists first, as a pull does
        took, _ = bench.direct_gets(store, keys, jobs)
    return took, timeline


def main() -> None:
    jobs = 20
    if "--jobs" in sys.argv:
        at = sys.argv.index("--jobs")
        jobs = int(sys.argv[at + 1])
        del sys.argv[at:at + 2]
    with pull_threads.seeded(__doc__.split("\n\n")[0], "trtops-pull-timeline-") as seed:
        timeline = Timeline()
        node = seed.workdir / "node"
        seconds: list[float] = []
        print(f"engines: {len(seed.keys)} x {seed.total // len(seed.keys) / 1e6:.0f} MB, "
              f"trtops pull -j {jobs}, 4 rounds (the first a warm-up)")
        for round_ in range(4):
            shutil.rmtree(node, ignore_errors=True)
            os.sync()
            with traced(timeline):
                timeline.start()
                took, _ = bench.trtops_pull(seed.remote, node, jobs)
            if round_:
                seconds.append(took)
        print("\n".join(report("trtops pull", seconds, timeline)))
        baseline = [direct_get_spans(seed.remote, seed.keys, jobs) for _ in range(4)]
        last = baseline[-1][1]
        print("\n".join([
            runs_line(f"direct GETs, {jobs} at once", [spent for spent, _ in baseline[1:]]),
            f"  GETs sent           {spread(last.at('GET sent'))}  "
            f"answered {spread(last.at('GET answered'))}",
            f"    GET sent -> answered          {last.span('GET sent', 'GET answered')}",
        ]))


if __name__ == "__main__":
    main()
