"""The parse preflight: parse the model in a child process before the in-process build does,
so that a crash of TensorRT's ONNX parser fails one engine, with its cause, instead of
killing ``trtops apply`` (TensorRT 8.6.0 segfaults in ``OnnxParser.parse`` on silero-vad's
opset-18 export: no JSON, no results for the other engines; issue 17).

The child is ``python -X faulthandler -m trtops.trt.parse_check`` (same interpreter, same
environment but ``CUDA_MODULE_LOADING=LAZY`` unless set, the builder's network and parser
flags), started before the builder's own TensorRT work (:func:`start_parse`) and waited for
right before its parse, so the two overlap: killed by a signal → the build fails
as ``build_failed`` with cause ``parser_crash`` and faulthandler's report in the build log;
no answer within :data:`TIMEOUT_S` → ``parser_hang``; a parse that returned, parsed or not
→ the build goes on in process, whose own parse reports any parser errors as before. A child
that could not run at all (no answer file, an exit status of its own) only warns: the
preflight guards the build, it must not be a new way for it to fail.

Verdicts are cached per process by (model digest, or path, size and mtime; network flags;
parser flags; TensorRT version), so the precisions of one model pay for one child, and where
the caller gives the model's digest and a directory (apply: the cache's ``preflight/``), on
disk too (:mod:`trtops.trt.preflight_verdicts`): a later apply pays for no child. Executors whose builds
already run in worker processes (``--gpus``, Ray) skip it (``BuildRequest.parse_preflight``),
as does ``TRTOPS_PARSE_PREFLIGHT=0``. This module never imports tensorrt.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from trtops.errors import BuildError
from trtops.names import switch
from trtops.trt.failure_causes import parser_crash

PREFLIGHT_ENV = "TRTOPS_PARSE_PREFLIGHT"
#: Longer than any parse seen (large models parse in about a minute); then it is a hang.
TIMEOUT_S = 600.0
#: How long a stopped (SIGABRT) hung child gets to write faulthandler's report.
_REPORT_GRACE_S = 10.0
#: Lines of the child's output (TensorRT's messages, the fault report) kept for the log.
REPORT_TAIL = 40
# A child ended by these was stopped from outside (Ctrl-C, a CI cancel), not by the parser.
_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}

CHILD_MODULE = "trtops.trt.parse_check"
LAZY_LOADING_ENV = "CUDA_MODULE_LOADING"


def enabled(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the preflight runs: unless ``TRTOPS_PARSE_PREFLIGHT`` is 0/false/no/off."""
    env = os.environ if environ is None else environ
    return switch(env.get(PREFLIGHT_ENV, "").strip()) is not False


@dataclass(frozen=True)
class Verdict:
    """How the child's parse ended.

    Attributes:
        state: ``parsed`` (the parse returned; ``parsed_ok`` says whether it succeeded),
            ``crashed`` (killed by a signal), ``hung`` (no answer within the timeout) or
            ``inconclusive`` (the child could not tell: it exited on its own, was stopped
            from outside, or could not start).
        how: ``SIGSEGV``, ``signal 77``, ``exit code 1``... (empty for ``parsed``).
        seconds: the child's wall time, start to end, as the parent saw it.
        report: the tail of the child's output (TensorRT's messages, faulthandler's report).
        parsed_ok: the parser's own verdict, when the parse returned.
        errors: the parser's errors, when it returned them.
    """

    state: str
    how: str = ""
    seconds: float = 0.0
    report: str = ""
    parsed_ok: bool | None = None
    errors: tuple[str, ...] = ()

    @property
    def fatal(self) -> bool:
        """The in-process parse would end the process (or hang it): do not build."""
        return self.state in ("crashed", "hung")


_CACHE: dict[tuple, Verdict] = {}
# Where a cached verdict came from, as a later build's log says it (no entry: a child's).
_ORIGIN: dict[tuple, str] = {}
_RUNNING: dict[tuple, _Child] = {}
_LOCK = threading.Lock()


def clear_cache() -> None:
    """Forget every verdict of this process (tests)."""
    with _LOCK:
        _CACHE.clear()
        _ORIGIN.clear()


def cache_key(model: Path, network_flags: int, parser_flags: Sequence[str], tensorrt: str,
              digest: str | None = None) -> tuple:
    """What makes two parses the same: the model's content digest where the caller knows it,
    else the file (path, size, mtime: cheaper than hashing a large model, and a rewritten
    prepared model changes them); the flags and TensorRT."""
    if digest:
        return (digest, int(network_flags), tuple(parser_flags), tensorrt)
    path = Path(model).resolve()
    stat = path.stat()
    return (str(path), stat.st_size, stat.st_mtime_ns, int(network_flags), tuple(parser_flags), tensorrt)


def child_command(model: Path, out: Path, network_flags: int, parser_flags: Sequence[str],
                  prefix: Sequence[str] | None = None) -> list[str]:
    """The child's command line. ``prefix`` replaces ``python -X faulthandler -m
    trtops.trt.parse_check`` (tests run a stand-in script with the same arguments)."""
    command = list(prefix) if prefix is not None else [sys.executable, "-X", "faulthandler", "-m", CHILD_MODULE]
    command += [str(model), "--out", str(out), "--network-flags", str(int(network_flags))]
    for name in parser_flags:
        command += ["--parser-flag", name]
    return command


class _Child:
    """One running child; any number of builds may wait for it, the first wait reads it."""

    def __init__(self, key: tuple, process: subprocess.Popen | None, tmp: tempfile.TemporaryDirectory,
                 out: Path, started: float, failed: Verdict | None, timeout: float,
                 keep: Callable[[Verdict], None]) -> None:
        self.key, self.process, self.tmp, self.out = key, process, tmp, out
        self.started, self.timeout, self.keep = started, timeout, keep
        self.verdict = failed
        self.lock = threading.Lock()

    def result(self) -> Verdict:
        with self.lock:
            if self.verdict is None:
                assert self.process is not None
                try:
                    self.verdict = finish_child(self.process, self.out, self.started, self.timeout)
                finally:
                    self.tmp.cleanup()
                    with _LOCK:
                        _RUNNING.pop(self.key, None)
                self.keep(self.verdict)
            return self.verdict

    def stop(self) -> None:
        """The build gave up before it needed the verdict: end the child, keep nothing."""
        with self.lock:
            if self.verdict is None and self.process is not None:
                self.process.kill()
                self.process.wait()
                if self.process.stdout is not None:  # its output is not wanted: no leaked pipe
                    self.process.stdout.close()
                self.verdict = Verdict("inconclusive", how="not waited for")
                self.tmp.cleanup()
                with _LOCK:
                    _RUNNING.pop(self.key, None)


class Pending:
    """A preflight started by :func:`start_parse`: :meth:`wait` gives its verdict (and logs
    it); :meth:`close` ends a child nobody waited for (a build that failed before its parse)."""

    def __init__(self, *, verdict: Verdict | None = None, child: _Child | None = None, earlier: str = "",
                 log: Callable[[str], None] | None = None, timeout: float = TIMEOUT_S) -> None:
        self._verdict, self._child, self._earlier = verdict, child, earlier
        self._log, self._timeout, self._waited = log, timeout, False

    @property
    def known(self) -> bool:
        """The verdict needs no child (an earlier one's, or recorded): :meth:`wait` returns at once."""
        return self._verdict is not None or (self._child is not None and self._child.verdict is not None)

    def wait(self) -> Verdict:
        if self._verdict is None:
            assert self._child is not None
            self._verdict = self._child.result()
            if self._log is not None:
                self._log(_describe(self._verdict, self._timeout))
        elif not self._waited and self._log is not None:
            self._log(_earlier_line(self._earlier, self._verdict))
        self._waited = True
        return self._verdict

    def close(self) -> None:
        if not self._waited and self._child is not None:
            self._child.stop()
        self._waited = True


def start_parse(model: Path, *, network_flags: int, parser_flags: Sequence[str], tensorrt: str,
                digest: str | None = None, verdicts: Path | None = None,
                log: Callable[[str], None] | None = None, prefix: Sequence[str] | None = None,
                timeout: float = TIMEOUT_S) -> Pending:
    """Start parsing ``model`` in a child process and return at once (the caller does its own
    builder work meanwhile, then :meth:`Pending.wait`). No child where the verdict is known:
    from an earlier child of this process, or recorded in ``verdicts`` by an earlier one.

    Args:
        model: the ONNX file the build parses.
        network_flags: the builder's ``create_network`` flags.
        parser_flags: ``OnnxParserFlag`` member names the builder sets.
        tensorrt: the full TensorRT version of this process (the child imports the same one).
        digest: the model's content digest (:mod:`trtops.trt.preflight_verdicts`), or None:
            then the verdict is kept in this process only.
        verdicts: the directory of recorded verdicts (apply: the cache's ``preflight/``), or None.
        log: gets one line per verdict (a child's wall time: what the preflight costs).
        prefix: the child's command before its arguments (tests; see :func:`child_command`).
        timeout: seconds before the parse counts as hung.
    """
    from trtops.trt import preflight_verdicts as recorded

    key = cache_key(model, network_flags, parser_flags, tensorrt, digest)
    where = None
    if digest and verdicts is not None:
        try:
            where = recorded.verdict_path(verdicts, tensorrt, digest, network_flags, parser_flags)
        except ValueError:  # not a digest: keep the verdict in this process only
            where = None
    with _LOCK:  # one child per key, even if builds ever run on threads
        cached = _CACHE.get(key)
        if cached is not None:
            return Pending(verdict=cached, log=log,
                           earlier=_ORIGIN.get(key, "an earlier child's verdict for this model"))
        running = _RUNNING.get(key)
        if running is not None:
            return Pending(child=running, log=log, timeout=timeout)
        if where is not None:
            record = recorded.read(where, tensorrt=tensorrt, digest=digest or "",
                                   network_flags=network_flags, parser_flags=parser_flags)
            if record is not None:
                verdict = _from_record(record)
                _CACHE[key] = verdict
                _ORIGIN[key] = f"the verdict this process read from an earlier apply's record ({where})"
                return Pending(verdict=verdict, log=log,
                               earlier=f"the verdict recorded by an earlier apply ({where}; delete it to parse again)")

        def keep(verdict: Verdict) -> None:
            if verdict.state == "inconclusive":
                return  # the next build tries again
            with _LOCK:
                _CACHE[key] = verdict
            if where is not None and recorded.worth_keeping(verdict.state, verdict.how):
                try:
                    recorded.write(where, _fields(verdict), model=str(model), tensorrt=tensorrt, digest=digest or "",
                                   network_flags=network_flags, parser_flags=parser_flags)
                except OSError:
                    pass  # a read-only cache: the next apply runs a child again

        tmp = tempfile.TemporaryDirectory(prefix="trtops-parse-check-")
        out = Path(tmp.name) / "parse.json"
        process, failed, started = start_child(child_command(model, out, network_flags, parser_flags, prefix))
        child = _Child(key, process, tmp, out, started, failed, timeout, keep)
        if failed is not None:
            tmp.cleanup()
        else:
            _RUNNING[key] = child
    return Pending(child=child, log=log, timeout=timeout)


def check_parse(model: Path, *, network_flags: int, parser_flags: Sequence[str], tensorrt: str,
                digest: str | None = None, verdicts: Path | None = None,
                log: Callable[[str], None] | None = None, prefix: Sequence[str] | None = None,
                timeout: float = TIMEOUT_S) -> Verdict:
    """:func:`start_parse` and wait: the verdict of a child parsing ``model``, or a known one
    (an inconclusive one is not kept: the next build tries again)."""
    return start_parse(model, network_flags=network_flags, parser_flags=parser_flags, tensorrt=tensorrt,
                       digest=digest, verdicts=verdicts, log=log, prefix=prefix, timeout=timeout).wait()


def _fields(verdict: Verdict) -> dict:
    return {"state": verdict.state, "how": verdict.how, "seconds": round(verdict.seconds, 3),
            "report": verdict.report, "parsed_ok": verdict.parsed_ok, "errors": list(verdict.errors)}


def _from_record(record: dict) -> Verdict:
    parsed_ok = record.get("parsed_ok")
    return Verdict(str(record["state"]), how=str(record.get("how") or ""),
                   seconds=float(record.get("seconds") or 0.0), report=str(record.get("report") or ""),
                   parsed_ok=None if parsed_ok is None else bool(parsed_ok),
                   errors=tuple(str(e) for e in record.get("errors") or ()))


def _earlier_line(source: str, verdict: Verdict) -> str:
    return (f"parse preflight: {source}: {verdict.state}" + (f" ({verdict.how})" if verdict.how else "")
            + (f"\n{verdict.report}" if verdict.fatal and verdict.report else ""))


def start_child(command: Sequence[str]) -> tuple[subprocess.Popen | None, Verdict | None, float]:
    """Start the child: (process, None, start time), or (None, an inconclusive verdict, ...)
    when it cannot start. Its stdout and stderr are one stream, kept in the verdict's report."""
    started = time.monotonic()
    try:
        process = subprocess.Popen(list(command), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, env=child_environment())
    except OSError as exc:
        return None, Verdict("inconclusive", how=f"could not start: {exc}"), started
    return process, None, started


def run_child(command: Sequence[str], out: Path, timeout: float = TIMEOUT_S) -> Verdict:
    """Run the child and read how it ended (no cache); its answer is the JSON file ``out``."""
    process, failed, started = start_child(command)
    if process is None:
        assert failed is not None
        return failed
    return finish_child(process, out, started, timeout)


def finish_child(process: subprocess.Popen, out: Path, started: float, timeout: float = TIMEOUT_S) -> Verdict:
    """Wait for a started child (``timeout`` counts from ``started``) and read how it ended."""
    hung = False
    try:
        output, _ = process.communicate(timeout=max(0.0, started + timeout - time.monotonic()))
    except subprocess.TimeoutExpired:
        hung = True
        output = _stop(process)
    except BaseException:  # Ctrl-C: the child must not outlive us
        process.kill()
        process.wait()
        raise
    seconds = time.monotonic() - started
    report = _tail(output)
    code = process.returncode
    if hung:
        return Verdict("hung", how=f"no answer within {timeout:.0f} s", seconds=seconds, report=report)
    if code is not None and code < 0:
        how = _signal_name(-code)
        if -code in _STOP_SIGNALS:
            return Verdict("inconclusive", how=f"stopped by {how}", seconds=seconds, report=report)
        return Verdict("crashed", how=how, seconds=seconds, report=report)
    try:
        answer = json.loads(Path(out).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        answer = None
    if code != 0 or not isinstance(answer, dict):
        return Verdict("inconclusive", how=f"exit code {code}" + ("" if answer is not None else ", no answer"),
                       seconds=seconds, report=report)
    return Verdict("parsed", seconds=seconds, report=report, parsed_ok=bool(answer.get("parsed")),
                   errors=tuple(str(e) for e in answer.get("errors") or ()))


def child_environment() -> dict[str, str]:
    """This process's environment, with this trtops first on ``PYTHONPATH`` (the child must
    import the same trtops even where this one came from a path set at run time)."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    parts = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join([root, *(p for p in parts if p != root)])
    # CUDA 11.7+ loads kernel modules when first used instead of all at start-up (seconds
    # less for a child that only parses); older CUDA ignores it. The user's choice stands.
    env.setdefault(LAZY_LOADING_ENV, "LAZY")
    return env


def crash_error(verdict: Verdict, model: str, timeout: float = TIMEOUT_S) -> BuildError:
    """The build failure of a fatal verdict (``crashed`` or ``hung``)."""
    if verdict.state == "hung":
        found = parser_crash(verdict.how, timeout=timeout)
        headline = f"TensorRT's ONNX parser did not finish parsing {model} within {timeout:.0f} s"
    else:
        found = parser_crash(verdict.how)
        headline = f"TensorRT's ONNX parser crashed ({verdict.how}) on {model}"
    return BuildError(f"{headline}\ncause: {found.title}: {found.detail}", hint=found.hint, cause=found.cause)


def _describe(verdict: Verdict, timeout: float) -> str:
    took = f"{verdict.seconds:.2f} s"
    if verdict.state == "parsed":
        said = "parsed" if verdict.parsed_ok else f"parser errors ({len(verdict.errors)}), reported by the build's own parse"
        return f"parse preflight: {said} in a child process in {took}"
    if verdict.state == "inconclusive":
        text = f"parse preflight: inconclusive ({verdict.how}) after {took}; building in process anyway"
    elif verdict.state == "hung":
        text = f"parse preflight: the parser gave no answer within {timeout:.0f} s; where it was stuck:"
    else:
        text = f"parse preflight: the parser's process was killed by {verdict.how} after {took}; its fault report:"
    return text + ("\n" + verdict.report if verdict.report else "")


def _stop(process: subprocess.Popen) -> bytes:
    """Stop a hung child: SIGABRT first (faulthandler prints where it is stuck), then kill."""
    try:
        process.send_signal(signal.SIGABRT)
        output, _ = process.communicate(timeout=_REPORT_GRACE_S)
        return output or b""
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        return output or b""


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _tail(output: bytes | None) -> str:
    lines = (output or b"").decode("utf-8", "replace").rstrip().splitlines()
    return "\n".join(lines[-REPORT_TAIL:])


__all__ = ["PREFLIGHT_ENV", "TIMEOUT_S", "Pending", "Verdict", "check_parse", "clear_cache", "crash_error",
           "enabled", "finish_child", "run_child", "start_child", "start_parse"]
