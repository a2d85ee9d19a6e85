"""The parse preflight's handling of its child process, on the CPU: real child processes
(stand-in scripts run with the child's arguments, ``python -X faulthandler`` as the real one
is) that answer, crash with SIGSEGV, exit on their own or hang. The real child
(trtops.trt.parse_check) parsing with TensorRT, and crashing through its test hook, is in
tests/gpu/test_build_failures.py."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from helpers import make_conv_model

from trtops.errors import BuildError, ExitCode
from trtops.trt import parse_preflight
from trtops.trt.parse_preflight import check_parse, child_command, crash_error, enabled

# The stand-in: counts its runs beside the model, then does what its environment says.
STAND_IN = """
import json, os, signal, sys, time
args = sys.argv[1:]
model, out = args[0], args[args.index("--out") + 1]
with open(model + ".runs", "a") as handle:
    handle.write(" ".join(args[3:]) + "\\n")
how = os.environ.get("STAND_IN", "parse")
if how == "segv":
    os.kill(os.getpid(), signal.SIGSEGV)
elif how == "term":
    os.kill(os.getpid(), signal.SIGTERM)
elif how == "exit":
    print("Traceback: something went wrong", file=sys.stderr)
    sys.exit(1)
elif how == "hang":
    time.sleep(120)
else:
    errors = [] if how == "parse" else ["UNSUPPORTED_NODE: no importer for op Foo"]
    with open(out, "w") as handle:
        json.dump({"parsed": not errors, "errors": errors, "tensorrt": "8.6.0", "seconds": 0.01}, handle)
"""


@pytest.fixture(autouse=True)
def _fresh_cache():
    parse_preflight.clear_cache()
    yield
    parse_preflight.clear_cache()


@pytest.fixture
def stand_in(tmp_path) -> list[str]:
    script = tmp_path / "stand_in.py"
    script.write_text(STAND_IN)
    return [sys.executable, "-X", "faulthandler", str(script)]


@pytest.fixture
def model(tmp_path) -> Path:
    return make_conv_model(tmp_path / "model.onnx")


def _runs(model: Path) -> list[str]:
    runs = Path(f"{model}.runs")
    return runs.read_text().splitlines() if runs.exists() else []


def _check(model: Path, prefix: list[str], lines: list[str] | None = None, **kw):
    kw.setdefault("network_flags", 1)
    kw.setdefault("parser_flags", ())
    kw.setdefault("tensorrt", "8.6.0")
    return check_parse(model, prefix=prefix, log=None if lines is None else lines.append, **kw)


def test_on_unless_turned_off():
    assert parse_preflight.PREFLIGHT_ENV == "TRTOPS_PARSE_PREFLIGHT" and parse_preflight.TIMEOUT_S == 600
    assert enabled({}) and enabled({"TRTOPS_PARSE_PREFLIGHT": "1"})
    for off in ("0", "false", "No", " off "):
        assert not enabled({"TRTOPS_PARSE_PREFLIGHT": off})


def test_the_child_gets_the_model_the_flags_and_an_answer_file(tmp_path):
    command = child_command(tmp_path / "m.onnx", tmp_path / "a.json", 3, ["NATIVE_INSTANCENORM"])
    assert command[:5] == [sys.executable, "-X", "faulthandler", "-m", "trtops.trt.parse_check"]
    assert command[5:] == [str(tmp_path / "m.onnx"), "--out", str(tmp_path / "a.json"), "--network-flags", "3",
                           "--parser-flag", "NATIVE_INSTANCENORM"]


def test_a_child_killed_by_sigsegv_fails_the_build_as_a_parser_crash(model, stand_in, monkeypatch):
    monkeypatch.setenv("STAND_IN", "segv")
    lines: list[str] = []
    verdict = _check(model, stand_in, lines)
    assert verdict.state == "crashed" and verdict.how == "SIGSEGV" and verdict.fatal
    # faulthandler's report (the child runs with -X faulthandler) reaches the build log
    assert "Segmentation fault" in verdict.report
    assert "killed by SIGSEGV" in lines[0] and "Segmentation fault" in lines[0]

    error = crash_error(verdict, "models/vad.onnx")
    assert isinstance(error, BuildError) and error.exit_code == ExitCode.BUILD_FAILED
    assert error.cause == "parser_crash"
    assert error.message.startswith("TensorRT's ONNX parser crashed (SIGSEGV) on models/vad.onnx\n"
                                    "cause: TensorRT's ONNX parser crashed: ")
    for advice in ("prepare:", "opset", "another TensorRT version", "NVIDIA", "TRTOPS_PARSE_PREFLIGHT=0"):
        assert advice in error.hint


def test_a_parse_that_returned_lets_the_build_go_on(model, stand_in, monkeypatch):
    lines: list[str] = []
    verdict = _check(model, stand_in, lines)
    assert verdict.state == "parsed" and verdict.parsed_ok and not verdict.fatal
    assert lines[0].startswith("parse preflight: parsed in a child process in ")

    # parser errors are the in-process parse's to report (it names nodes and causes)
    monkeypatch.setenv("STAND_IN", "errors")
    refused = _check(model, stand_in, network_flags=2)
    assert refused.state == "parsed" and refused.parsed_ok is False and not refused.fatal
    assert refused.errors == ("UNSUPPORTED_NODE: no importer for op Foo",)


def test_one_child_per_model_flags_and_tensorrt(model, stand_in, monkeypatch):
    lines: list[str] = []
    first = _check(model, stand_in, lines)
    again = _check(model, stand_in, lines)  # another precision of the same model
    assert again == first and len(_runs(model)) == 1
    assert lines[1] == "parse preflight: an earlier child's verdict for this model: parsed"
    _check(model, stand_in, parser_flags=("NATIVE_INSTANCENORM",))
    _check(model, stand_in, network_flags=3)
    check_parse(model, network_flags=1, parser_flags=(), tensorrt="10.13.3.9", prefix=stand_in)
    assert _runs(model)[1:] == ["--network-flags 1 --parser-flag NATIVE_INSTANCENORM", "--network-flags 3",
                                "--network-flags 1"]
    # a rewritten model is another model
    stat = model.stat()
    os.utime(model, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    _check(model, stand_in)
    assert len(_runs(model)) == 5

    # a crash is remembered too: the other precisions fail without crashing again
    monkeypatch.setenv("STAND_IN", "segv")
    crashed = _check(model, stand_in, network_flags=7)
    assert _check(model, stand_in, lines, network_flags=7) == crashed and len(_runs(model)) == 6
    assert lines[-1].startswith("parse preflight: an earlier child's verdict for this model: crashed (SIGSEGV)\n")
    assert "Segmentation fault" in lines[-1]  # each failed engine's details show the report


def test_a_child_that_cannot_tell_only_warns_and_is_asked_again(model, stand_in, monkeypatch):
    for how, expected in (("exit", "exit code 1, no answer"), ("term", "stopped by SIGTERM")):
        monkeypatch.setenv("STAND_IN", how)
        lines: list[str] = []
        verdict = _check(model, stand_in, lines)
        assert verdict.state == "inconclusive" and not verdict.fatal and verdict.how == expected
        assert "building in process anyway" in lines[0]
        if how == "exit":
            assert "something went wrong" in verdict.report and "something went wrong" in lines[0]
    assert _check(model, stand_in).state == "inconclusive"
    assert len(_runs(model)) == 3  # nothing inconclusive was cached

    missing = check_parse(model, network_flags=1, parser_flags=(), tensorrt="8.6.0",
                          prefix=[str(model.parent / "no-such-python")])
    assert missing.state == "inconclusive" and "could not start" in missing.how


def test_a_parse_without_an_answer_in_time_is_a_hang(model, stand_in, monkeypatch):
    monkeypatch.setenv("STAND_IN", "hang")
    verdict = _check(model, stand_in, timeout=0.5)
    assert verdict.state == "hung" and verdict.fatal
    error = crash_error(verdict, "m.onnx", timeout=1)
    assert error.cause == "parser_hang"
    assert error.message.startswith("TensorRT's ONNX parser did not finish parsing m.onnx within 1 s\n"
                                    "cause: TensorRT's ONNX parser hung: ")
    assert "where it was stuck" in error.hint


class _Probe:
    """What :meth:`_Build._overlapped` uses of a build, with the builder work replaced by
    ``setup`` (no TensorRT here)."""

    def __init__(self, model: Path, lines: list[str], setup=None, **request) -> None:
        request.setdefault("parse_preflight", True)
        self.request = SimpleNamespace(model_path=model, **request)
        self.trt = SimpleNamespace(__version__="8.6.0")
        self.capture = SimpleNamespace(info=lines.append)
        self.setup_calls = 0
        self._setup = setup

    def _builder_setup(self, network_flags, strategy):
        self.setup_calls += 1
        return self._setup() if self._setup is not None else ("builder", "network", "config")


def _bind(probe: _Probe) -> _Probe:
    from trtops.trt.builder import _Build

    for name in ("_overlapped", "_start_preflight", "_preflight_verdict"):
        setattr(probe, name, getattr(_Build, name).__get__(probe))
    return probe


@pytest.fixture
def real_with_stand_in(stand_in, monkeypatch):
    real = parse_preflight.start_parse
    monkeypatch.setattr(parse_preflight, "start_parse", lambda *a, **kw: real(*a, prefix=stand_in, **kw))


def test_the_builder_stops_before_its_own_parse_on_a_crash_unless_isolated_or_off(model, real_with_stand_in,
                                                                                   monkeypatch):
    monkeypatch.setenv("STAND_IN", "segv")
    lines: list[str] = []
    build = _bind(_Probe(model, lines))
    with pytest.raises(BuildError) as raised:
        build._overlapped(model, 1, (), None)
    assert raised.value.cause == "parser_crash" and f"(SIGSEGV) on {model}" in raised.value.message
    assert "Segmentation fault" in lines[0]

    parse_preflight.clear_cache()
    build.request.parse_preflight = False  # a --gpus or Ray worker: isolated already
    assert build._overlapped(model, 1, (), None) == ("builder", "network", "config")
    build.request.parse_preflight = True
    monkeypatch.setenv("TRTOPS_PARSE_PREFLIGHT", "0")
    build._overlapped(model, 1, (), None)
    assert len(_runs(model)) == 1 and len(lines) == 1


# The stand-in for the overlap: says it started, then answers only once the parent's builder
# work has begun (a preflight waited for before that work would never get its answer).
HANDSHAKE = """
import json, os, sys, time
args = sys.argv[1:]
model, out = args[0], args[args.index("--out") + 1]
open(model + ".child-started", "w").close()
deadline = time.monotonic() + 60
while not os.path.exists(model + ".parent-builder") and time.monotonic() < deadline:
    time.sleep(0.01)
if os.path.exists(model + ".parent-builder"):
    json.dump({"parsed": True, "errors": []}, open(out, "w"))
"""


def _wait_for(path: Path) -> bool:
    import time

    deadline = time.monotonic() + 60
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    return path.exists()


def test_the_child_runs_while_the_parent_makes_its_builder(model, tmp_path, monkeypatch):
    """Ordering, not timing: the child has started before the builder work (which waits for
    its marker), and the builder work happens before the verdict is waited for (the child
    answers only once it has begun)."""
    script = tmp_path / "handshake.py"
    script.write_text(HANDSHAKE)
    real = parse_preflight.start_parse
    monkeypatch.setattr(parse_preflight, "start_parse",
                        lambda *a, **kw: real(*a, prefix=[sys.executable, str(script)], **kw))
    seen: list[bool] = []

    def setup():
        seen.append(_wait_for(Path(f"{model}.child-started")))
        Path(f"{model}.parent-builder").touch()
        return ("builder", "network", "config")

    lines: list[str] = []
    build = _bind(_Probe(model, lines, setup))
    assert build._overlapped(model, 1, (), None) == ("builder", "network", "config")
    assert seen == [True]
    assert lines[0].startswith("parse preflight: parsed in a child process in ")


def test_a_remembered_crash_fails_before_the_builder_work_and_a_failed_build_ends_its_child(
        model, tmp_path, real_with_stand_in, monkeypatch):
    verdicts = tmp_path / "cache" / "preflight"
    monkeypatch.setenv("STAND_IN", "segv")
    lines: list[str] = []
    build = _bind(_Probe(model, lines, model_digest="ab" * 32, preflight_verdicts=verdicts))
    with pytest.raises(BuildError):
        build._overlapped(model, 1, (), None)
    assert build.setup_calls == 1 and len(_runs(model)) == 1

    parse_preflight.clear_cache()  # another apply
    again = _bind(_Probe(model, lines, model_digest="ab" * 32, preflight_verdicts=verdicts))
    with pytest.raises(BuildError) as raised:
        again._overlapped(model, 1, (), None)
    assert again.setup_calls == 0 and len(_runs(model)) == 1  # no builder, no child
    assert raised.value.cause == "parser_crash" and "(SIGSEGV)" in raised.value.message
    assert "recorded by an earlier apply" in lines[-1] and "Segmentation fault" in lines[-1]

    # builder work that fails first: the child (here one that would hang) is ended, nothing kept
    monkeypatch.setenv("STAND_IN", "hang")

    def broken():
        raise RuntimeError("no GPU")

    failing = _bind(_Probe(model, lines, broken, model_digest="cd" * 32, preflight_verdicts=verdicts))
    with pytest.raises(RuntimeError, match="no GPU"):
        failing._overlapped(model, 1, (), None)
    assert not parse_preflight._RUNNING and not list(verdicts.glob("*/cdcd*"))


def test_a_child_nobody_waits_for_is_ended_and_its_pipe_closed(model, stand_in, monkeypatch):
    monkeypatch.setenv("STAND_IN", "hang")
    pending = parse_preflight.start_parse(model, network_flags=1, parser_flags=(), tensorrt="8.6.0",
                                          prefix=stand_in)
    process = pending._child.process
    pending.close()
    assert process.returncode is not None and process.stdout.closed
    assert not parse_preflight._RUNNING


def test_the_real_child_runs_in_this_interpreter(model, monkeypatch):
    """python -m trtops.trt.parse_check, found through the PYTHONPATH the parent sets even
    from another directory; without TensorRT it cannot tell (and the build says why itself)."""
    pytest.importorskip("onnx")
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        pass
    else:  # pragma: no cover - a machine with TensorRT parses for real (tests/gpu)
        pytest.skip("TensorRT is installed: tests/gpu/test_build_failures.py runs the real child")
    monkeypatch.chdir(model.parent)
    monkeypatch.delenv("PYTHONPATH", raising=False)
    verdict = check_parse(model, network_flags=1, parser_flags=(), tensorrt="8.6.0")
    assert verdict.state == "inconclusive" and verdict.how == "exit code 1, no answer"
    assert "TensorRT is not available" in verdict.report


def test_the_answer_file_is_what_the_child_wrote(tmp_path):
    out = tmp_path / "answer.json"
    script = tmp_path / "answer.py"
    script.write_text("import json, sys\n"
                      "json.dump({'parsed': True, 'errors': []}, open(sys.argv[sys.argv.index('--out') + 1], 'w'))\n")
    verdict = parse_preflight.run_child(
        child_command(tmp_path / "m.onnx", out, 0, (), prefix=[sys.executable, str(script)]), out)
    assert verdict.state == "parsed" and verdict.parsed_ok is True
    assert json.loads(out.read_text()) == {"parsed": True, "errors": []}


# --------------------------------------------------------------------------- verdicts on disk

DIGEST = "0123456789abcdef" * 4


def _on_disk(model, prefix, verdicts, lines=None, **kw):
    kw.setdefault("tensorrt", "8.6.1.6")
    return _check(model, prefix, lines, digest=DIGEST, verdicts=verdicts, **kw)


def test_a_later_apply_reads_the_recorded_verdict_and_starts_no_child(model, stand_in, tmp_path):
    verdicts = tmp_path / "cache" / "preflight"
    first = _on_disk(model, stand_in, verdicts)
    assert first.state == "parsed" and len(_runs(model)) == 1
    (path,) = verdicts.rglob("*.json")
    assert path == verdicts / "8.6.1.6" / f"{DIGEST}-n1.json"
    record = json.loads(path.read_text())
    assert record["state"] == "parsed" and record["digest"] == DIGEST and record["model"] == str(model)

    parse_preflight.clear_cache()  # another process: only the disk remembers
    lines: list[str] = []
    again = _on_disk(model, stand_in, verdicts, lines)
    assert again.state == "parsed" and again.parsed_ok and len(_runs(model)) == 1
    assert lines == [f"parse preflight: the verdict recorded by an earlier apply ({path}; delete it to parse "
                     "again): parsed"]
    # the next build of this process reuses it, and says where it came from (no child ran)
    _on_disk(model, stand_in, verdicts, lines)
    assert lines[-1] == (f"parse preflight: the verdict this process read from an earlier apply's record "
                         f"({path}): parsed") and len(_runs(model)) == 1

    # another TensorRT, other flags: other parses
    parse_preflight.clear_cache()
    _on_disk(model, stand_in, verdicts, tensorrt="8.6.1.7")
    _on_disk(model, stand_in, verdicts, network_flags=3)
    _on_disk(model, stand_in, verdicts, parser_flags=("NATIVE_INSTANCENORM",))
    assert len(_runs(model)) == 4
    assert sorted(str(p.relative_to(verdicts)) for p in verdicts.rglob("*.json")) == [
        f"8.6.1.6/{DIGEST}-n1-NATIVE_INSTANCENORM.json", f"8.6.1.6/{DIGEST}-n1.json", f"8.6.1.6/{DIGEST}-n3.json",
        f"8.6.1.7/{DIGEST}-n1.json"]

    # a damaged record is no verdict: the child runs again and rewrites it
    parse_preflight.clear_cache()
    path.write_text("{not json")
    assert _on_disk(model, stand_in, verdicts).state == "parsed" and len(_runs(model)) == 5
    assert json.loads(path.read_text())["state"] == "parsed"


def test_a_recorded_crash_fails_the_next_apply_with_the_same_message_and_report(model, stand_in, tmp_path,
                                                                                  monkeypatch):
    verdicts = tmp_path / "preflight"
    monkeypatch.setenv("STAND_IN", "segv")
    crashed = _on_disk(model, stand_in, verdicts)
    parse_preflight.clear_cache()
    monkeypatch.setenv("STAND_IN", "parse")  # would parse now: the record is what answers
    lines: list[str] = []
    remembered = _on_disk(model, stand_in, verdicts, lines)
    assert len(_runs(model)) == 1
    assert remembered.state == "crashed" and remembered.how == "SIGSEGV" and remembered.fatal
    assert remembered.report == crashed.report and "Segmentation fault" in lines[0]
    assert crash_error(remembered, "m.onnx").message == crash_error(crashed, "m.onnx").message


def test_only_verdicts_a_later_parse_would_repeat_are_recorded(model, stand_in, tmp_path, monkeypatch):
    verdicts = tmp_path / "preflight"
    for how in ("exit", "term", "hang"):  # inconclusive, stopped from outside, a hang
        monkeypatch.setenv("STAND_IN", how)
        _on_disk(model, stand_in, verdicts, timeout=0.5)
    assert not list(verdicts.rglob("*.json"))
    from trtops.trt.preflight_verdicts import worth_keeping

    assert worth_keeping("crashed", "SIGSEGV") and worth_keeping("crashed", "SIGABRT")
    assert not worth_keeping("crashed", "SIGKILL")  # the OOM killer, more likely than the parser

    # parser errors returned: recorded too (the build's own parse reports them)
    monkeypatch.setenv("STAND_IN", "errors")
    _on_disk(model, stand_in, verdicts)
    parse_preflight.clear_cache()
    refused = _on_disk(model, stand_in, verdicts)
    assert refused.parsed_ok is False and refused.errors == ("UNSUPPORTED_NODE: no importer for op Foo",)
    assert len(_runs(model)) == 4

    # no directory, or no digest: kept in this process only
    parse_preflight.clear_cache()
    _check(model, stand_in, digest=DIGEST, network_flags=5)
    _check(model, stand_in, verdicts=verdicts, network_flags=6)
    assert len(list(verdicts.rglob("*.json"))) == 1


def test_the_child_loads_cuda_modules_lazily_unless_told_otherwise(monkeypatch):
    monkeypatch.delenv("CUDA_MODULE_LOADING", raising=False)
    assert parse_preflight.child_environment()["CUDA_MODULE_LOADING"] == "LAZY"
    monkeypatch.setenv("CUDA_MODULE_LOADING", "EAGER")
    assert parse_preflight.child_environment()["CUDA_MODULE_LOADING"] == "EAGER"
