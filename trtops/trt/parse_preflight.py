"""The parse preflight: parse the model in a child process before the in-process build does,
so that a crash of TensorRT's ONNX parser fails one engine, with its cause, instead of
killing ``trtops apply`` (TensorRT 8.6.0 segfaults in ``OnnxParser.parse`` on silero-vad's
opset-18 export: no JSON, no results for the other engines; issue 17).

The child is ``python -X faulthandler -m trtops.trt.parse_check`` (same interpreter, same
environment, the builder's network and parser flags): killed by a signal → the build fails
as ``build_failed`` with cause ``parser_crash`` and faulthandler's report in the build log;
no answer within :data:`TIMEOUT_S` → ``parser_hang``; a parse that returned, parsed or not
→ the build goes on in process, whose own parse reports any parser errors as before. A child
that could not run at all (no answer file, an exit status of its own) only warns: the
preflight guards the build, it must not be a new way for it to fail.

Verdicts are cached per process by (model path, size, mtime; network flags; parser flags;
TensorRT version), so the precisions of one model pay for one child. Executors whose builds
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
from trtops.trt.failure_causes import parser_crash

PREFLIGHT_ENV = "TRTOPS_PARSE_PREFLIGHT"
#: Longer than any parse seen (large models parse in about a minute); then it is a hang.
TIMEOUT_S = 600.0
#: How long a stopped (SIGABRT) hung child gets to write faulthandler's report.
_REPORT_GRACE_S = 10.0
#: Lines of the child's output (TensorRT's messages, the fault report) kept for the log.
REPORT_TAIL = 40
_OFF = {"0", "false", "no", "off"}
# A child ended by these was stopped from outside (Ctrl-C, a CI cancel), not by the parser.
_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}

CHILD_MODULE = "trtops.trt.parse_check"


def enabled(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the preflight runs: unless ``TRTOPS_PARSE_PREFLIGHT`` is 0/false/no/off."""
    env = os.environ if environ is None else environ
    return env.get(PREFLIGHT_ENV, "").strip().lower() not in _OFF


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
_LOCK = threading.Lock()


def clear_cache() -> None:
    """Forget every verdict (tests)."""
    with _LOCK:
        _CACHE.clear()


def cache_key(model: Path, network_flags: int, parser_flags: Sequence[str], tensorrt: str) -> tuple:
    """What makes two parses the same: the file (path, size, mtime: cheaper than hashing a
    large model, and a rewritten prepared model changes them), the flags and TensorRT."""
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


def check_parse(model: Path, *, network_flags: int, parser_flags: Sequence[str], tensorrt: str,
                log: Callable[[str], None] | None = None, prefix: Sequence[str] | None = None,
                timeout: float = TIMEOUT_S) -> Verdict:
    """Parse ``model`` in a child process, or give the verdict of an earlier child for the
    same model, flags and TensorRT (an inconclusive one is not kept: the next build tries again).

    Args:
        model: the ONNX file the build parses.
        network_flags: the builder's ``create_network`` flags.
        parser_flags: ``OnnxParserFlag`` member names the builder sets.
        tensorrt: the TensorRT version of this process (the child imports the same one).
        log: gets one progress line per child (its wall time: what the preflight costs).
        prefix: the child's command before its arguments (tests; see :func:`child_command`).
        timeout: seconds before the parse counts as hung.
    """
    key = cache_key(model, network_flags, parser_flags, tensorrt)
    with _LOCK:  # one child per key, even if builds ever run on threads
        cached = _CACHE.get(key)
        if cached is not None:
            if log is not None:
                log(f"parse preflight: an earlier child's verdict for this model: {cached.state}"
                    + (f" ({cached.how})" if cached.how else "")
                    + (f"\n{cached.report}" if cached.fatal and cached.report else ""))
            return cached
        with tempfile.TemporaryDirectory(prefix="trtops-parse-check-") as tmp:
            out = Path(tmp) / "parse.json"
            verdict = run_child(child_command(model, out, network_flags, parser_flags, prefix), out, timeout)
        if verdict.state != "inconclusive":
            _CACHE[key] = verdict
    if log is not None:
        log(_describe(verdict, timeout))
    return verdict


def run_child(command: Sequence[str], out: Path, timeout: float = TIMEOUT_S) -> Verdict:
    """Run the child and read how it ended (no cache). Its stdout and stderr are one stream,
    kept in the verdict's report; its answer is the JSON file ``out``."""
    start = time.monotonic()
    try:
        process = subprocess.Popen(list(command), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, env=child_environment())
    except OSError as exc:
        return Verdict("inconclusive", how=f"could not start: {exc}")
    hung = False
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        hung = True
        output = _stop(process)
    except BaseException:  # Ctrl-C: the child must not outlive us
        process.kill()
        process.wait()
        raise
    seconds = time.monotonic() - start
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


__all__ = ["PREFLIGHT_ENV", "TIMEOUT_S", "Verdict", "check_parse", "clear_cache", "crash_error", "enabled",
           "run_child"]
