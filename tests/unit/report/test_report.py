"""trtops.report: JSON, JUnit (read back with junitparser), step summary, annotations,
terminal table and CI matrix, from RunResult objects."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from junitparser import Error, Failure, JUnitXml, Skipped

from trtops import report
from trtops.errors import ExitCode, InputError
from trtops.keys.fingerprint import EngineKey
from trtops.keys.platform import Platform
from trtops.outcome import STATUS_EXIT, EngineOutcome, RunResult
from trtops.plan import Action, Plan, load_specs
from trtops.report.junit import MAX_DETAILS_CHARS


def outcome(model: str, status: str, *, precision: str = "fp16", target: str = "lab",
            manifest: str = "manifests/vision.yaml", line: int | None = 12,
            action: str = "build", **extra) -> EngineOutcome:
    name = Path(manifest).stem
    return EngineOutcome(
        id=f"{name}/{model}/{precision}/{target}", manifest=manifest, line=line, model=model,
        precision=precision, target=target, action=action, status=status, **extra)


@pytest.fixture
def mixed() -> RunResult:
    return RunResult("apply", [
        outcome("resnet50", "built", line=8, seconds=12.5, key="ab" * 32,
                engine_bytes=25 * 2**20,
                accuracy={"passed": True, "worst": [
                    {"output": "logits", "stat": "median", "abs": 0.0012, "atol": 0.01}]}),
        outcome("resnet50", "reused", precision="fp32", line=8, action="reuse",
                message="up to date"),
        outcome("bert", "build_failed", line=21, seconds=3.0,
                message="TensorRT could not build: unsupported op NonZero",
                details="[TRT] line 1\n\x1b[31m[TRT] ERROR: node 7\x1b[0m\x00\x07 <&>\n"),
        outcome("yolo", "accuracy_failed", line=34, seconds=9.0,
                message="output 'boxes' median abs error 0.2 > atol 0.01",
                details="output | max | median\nboxes | 0.9 | 0.2",
                accuracy={"passed": False, "worst": [
                    {"output": "boxes", "stat": "median", "abs": 0.2, "atol": 0.01}]}),
        outcome("tiny", "skipped", line=40, action="skip", message="target h100 not here"),
    ], seconds=30.0)


# --------------------------------------------------------------------------- JSON


def test_dump_json_is_one_document(mixed):
    stream = io.StringIO()
    report.dump_json(mixed, stream)
    data = json.loads(stream.getvalue())
    assert data["command"] == "apply"
    assert data["exit_code"] == ExitCode.BUILD_FAILED
    assert data["counts"] == {"built": 1, "reused": 1, "build_failed": 1,
                              "accuracy_failed": 1, "skipped": 1}
    assert [e["model"] for e in data["engines"]] == ["resnet50", "resnet50", "bert", "yolo", "tiny"]


# --------------------------------------------------------------------------- JUnit


def test_junit_one_case_per_engine(tmp_path, mixed, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = report.write_junit(mixed, tmp_path / "reports" / "junit.xml")
    xml = JUnitXml.fromfile(str(path))
    suites = list(xml)
    assert len(suites) == 1
    suite = suites[0]
    assert suite.name == "trtops apply"
    assert (suite.tests, suite.failures, suite.errors, suite.skipped) == (5, 2, 0, 1)
    cases = {case.name: case for case in suite}
    assert set(cases) == {"resnet50/fp16/lab", "resnet50/fp32/lab", "bert/fp16/lab",
                          "yolo/fp16/lab", "tiny/fp16/lab"}
    assert all(case.classname == "vision" for case in cases.values())

    assert cases["resnet50/fp16/lab"].is_passed
    assert cases["resnet50/fp16/lab"].time == pytest.approx(12.5)
    assert "key: " + "ab" * 32 in cases["resnet50/fp16/lab"].system_out

    [failure] = cases["bert/fp16/lab"].result
    assert isinstance(failure, Failure)
    assert failure.type == "build_failed"
    assert failure.message == "TensorRT could not build: unsupported op NonZero"
    # ANSI codes and characters XML cannot hold are dropped, markup is escaped.
    assert failure.text == "[TRT] line 1\n[TRT] ERROR: node 7 <&>\n"

    [failure] = cases["yolo/fp16/lab"].result
    assert isinstance(failure, Failure) and failure.type == "accuracy_failed"
    assert "boxes | 0.9" in failure.text

    [skipped] = cases["tiny/fp16/lab"].result
    assert isinstance(skipped, Skipped)
    assert skipped.message == "target h100 not here"

    # file/line point test reporters at the model in the manifest.
    elem = cases["bert/fp16/lab"]._elem
    assert elem.get("file") == "manifests/vision.yaml"
    assert elem.get("line") == "21"


def test_junit_rejected_and_invalid_are_failures_environment_is_error_pending_is_skipped(tmp_path):
    result = RunResult("apply", [
        outcome("a", "rejected", action="rejected", message="failed accuracy before"),
        outcome("b", "environment", message="no GPU"),
        outcome("c", "error", message="bug"),
        outcome("d", "pending", message="not in cache"),
        outcome("e", "invalid", message="calibration data has no input 'x'"),
    ])
    suite = next(iter(JUnitXml.fromfile(str(report.write_junit(result, tmp_path / "j.xml")))))
    kinds = {case.name: type(case.result[0]) for case in suite}
    assert kinds == {"a/fp16/lab": Failure, "b/fp16/lab": Error, "c/fp16/lab": Error,
                     "d/fp16/lab": Skipped, "e/fp16/lab": Failure}
    assert (suite.failures, suite.errors, suite.skipped) == (2, 2, 1)
    assert next(c for c in suite if c.name == "d/fp16/lab").result[0].message == \
        "pending: not in cache"


def test_junit_several_results_and_totals(tmp_path, mixed):
    plan = RunResult("plan", [outcome("x", "pending")])
    xml = JUnitXml.fromfile(str(report.write_junit([mixed, plan], tmp_path / "j.xml")))
    assert [s.name for s in xml] == ["trtops apply", "trtops plan"]
    root = ET_root(tmp_path / "j.xml")
    assert root.get("tests") == "6" and root.get("failures") == "2" and root.get("skipped") == "2"


def ET_root(path):
    import xml.etree.ElementTree as ET

    return ET.parse(path).getroot()


def test_junit_empty_result(tmp_path):
    suite = next(iter(JUnitXml.fromfile(str(report.write_junit(RunResult("plan"), tmp_path / "j.xml")))))
    assert suite.tests == 0


def test_junit_unwritable_path_is_user_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(InputError) as info:
        report.write_junit(RunResult("apply"), blocker / "junit.xml")
    assert info.value.hint


def test_check_report_path(tmp_path):
    report.check_report_path(None)
    report.check_report_path(tmp_path / "new" / "dir" / "junit.xml")
    assert (tmp_path / "new" / "dir").is_dir()
    with pytest.raises(InputError, match="is a folder"):
        report.check_report_path(tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(InputError, match="cannot create"):
        report.check_report_path(blocker / "junit.xml")


def test_junit_huge_details_keep_the_tail(tmp_path):
    details = "x" * (MAX_DETAILS_CHARS + 10) + "\nTHE REAL ERROR"
    result = RunResult("apply", [outcome("a", "build_failed", details=details)])
    suite = next(iter(JUnitXml.fromfile(str(report.write_junit(result, tmp_path / "j.xml")))))
    text = next(iter(suite)).result[0].text
    assert text.endswith("THE REAL ERROR")
    assert len(text) < MAX_DETAILS_CHARS + 100


# --------------------------------------------------------------------------- annotations


def test_annotations_point_at_manifest_lines(tmp_path, mixed, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GITHUB_WORKSPACE", raising=False)
    lines = report.github_annotations(mixed)
    assert len(lines) == 2
    bert, yolo = lines
    assert bert.startswith("::error file=manifests/vision.yaml,line=21,title=")
    assert "title=trtops apply%3A bert/fp16/lab build failed::" in bert
    assert yolo.startswith("::error file=manifests/vision.yaml,line=34,")
    # one line per annotation: newlines are escaped, ANSI removed
    assert "\n" not in bert and "\x1b" not in bert
    assert "%0A%0A[TRT] line 1%0A[TRT] ERROR" in bert


def test_annotation_escaping():
    line = report.workflow_command(
        "error", {"file": "a,b:c.yaml", "line": 3, "title": "50% done\r\n"}, "100%\r\nok: a,b")
    assert line == ("::error file=a%2Cb%3Ac.yaml,line=3,title=50%25 done%0D%0A::"
                    "100%25%0D%0Aok: a,b")
    assert report.workflow_command("error", {}, "m") == "::error::m"


def test_annotation_path_relative_to_workspace(tmp_path):
    workspace = tmp_path / "repo"
    (workspace / "manifests").mkdir(parents=True)
    manifest = str(workspace / "manifests" / "m.yaml")
    env = {"GITHUB_WORKSPACE": str(workspace)}
    assert report.annotation_path(manifest, environ=env) == "manifests/m.yaml"
    outside = str(tmp_path / "elsewhere.yaml")
    assert report.annotation_path(outside, environ=env) == Path(outside).as_posix()
    assert report.annotation_path("manifests/m.yaml", relative_to=os.getcwd()) == "manifests/m.yaml"


def test_annotation_without_line_and_for_environment():
    result = RunResult("apply", [outcome("a", "environment", line=None, message="no GPU")])
    [line] = report.github_annotations(result, relative_to=os.getcwd())
    assert line.startswith("::error file=manifests/vision.yaml,title=")
    assert line.endswith("::no GPU")


def test_no_annotations_for_success_and_pending():
    result = RunResult("plan", [outcome("a", "pending"), outcome("b", "reused")])
    assert report.github_annotations(result) == []


# --------------------------------------------------------------------------- step summary


def test_step_summary_table_and_accuracy(mixed):
    text = report.github_step_summary(mixed)
    lines = text.splitlines()
    assert lines[0].startswith("### ❌ apply: 1 built, 1 reused, 1 skipped, 1 build failed, "
                               "1 accuracy failed (exit 3")
    assert "| Engine | Manifest | Action | Status | Time | Size | Details |" in lines
    row = next(line for line in lines if line.startswith("| `bert/fp16/lab`"))
    assert "vision:21" in row and "❌ build failed" in row
    assert "| 25 MiB |" in next(line for line in lines if line.startswith("| `resnet50/fp16/lab`"))
    acc = lines.index("#### Accuracy (worst output per engine)")
    # failing engine first, with its worst output
    assert lines[acc + 2].startswith("- ❌ `yolo/fp16/lab` `boxes`: stat median, abs 0.2, atol 0.01")
    assert lines[acc + 3].startswith("- ✅ `resnet50/fp16/lab` `logits`")
    assert "<details><summary><code>bert/fp16/lab</code>: build failed</summary>" in text
    assert "\x1b" not in text


def test_step_summary_escapes_pipes_and_newlines():
    result = RunResult("plan", [outcome("a", "pending", message="a | b\nc")])
    row = next(l for l in report.github_step_summary(result).splitlines() if l.startswith("| `a/"))
    assert "a \\| b c" in row
    assert report.github_step_summary(RunResult("plan")).startswith("### ✅ plan: no engines")


def accuracy_json_output(name, passed, median_abs, label="profile0/max"):
    """A ``worst`` entry as trtops.gate writes it in accuracy.json."""
    return {"label": label, "profile": 0, "name": name, "passed": passed, "stat": "median",
            "atol": 0.01, "rtol": 0.01, "max_abs": median_abs * 3, "mean_abs": median_abs,
            "median_abs": median_abs, "max_rel": 0.5, "mean_rel": 0.001, "median_rel": 0.001,
            "cosine": 0.999, "elements": 100, "mismatches": 3, "nonfinite": 0,
            "excess": median_abs / 0.01, "shape": [1, 10]}


def test_step_summary_accuracy_json_worst_entry():
    failed = outcome("a", "accuracy_failed", accuracy={
        "passed": False, "worst": [accuracy_json_output("logits", False, 0.2),
                                   accuracy_json_output("aux", True, 0.001)]})
    line = report.accuracy_line(failed)
    assert line.startswith("- ❌ `a/fp16/lab` `logits` @ profile0/max: ")
    assert "median abs 0.2 > atol 0.01" in line
    assert "aux" not in line
    skipped = outcome("b", "built", accuracy={"passed": True, "skipped": True, "worst": []})
    assert report.accuracy_line(skipped) == "- ⏭️ `b/fp16/lab` accuracy check disabled"


def test_step_summary_accuracy_mapping_forms():
    by_name = outcome("a", "built", accuracy={"passed": True,
                                              "outputs": {"y": {"max_abs": 1e-5}}})
    flat = outcome("b", "built", accuracy={"passed": True, "max_abs": 2e-5})
    assert report.accuracy_line(by_name) == "- ✅ `a/fp16/lab` `y`: max_abs 1e-05"
    assert report.accuracy_line(flat) == "- ✅ `b/fp16/lab` max_abs 2e-05"
    assert report.accuracy_line(outcome("c", "built")) is None


def test_step_summary_caps_rows_but_keeps_failures(monkeypatch):
    monkeypatch.setattr(report.github, "MAX_SUMMARY_ROWS", 3)
    outcomes = [outcome(f"m{i}", "built") for i in range(5)] + [outcome("bad", "build_failed")]
    text = report.github_step_summary(RunResult("apply", outcomes))
    assert "| `bad/fp16/lab`" in text
    assert "_3 more engines not shown" in text


# --------------------------------------------------------------------------- emit_ci_reports


def test_emit_ci_reports_outside_github_writes_only_junit(tmp_path, mixed):
    summary = tmp_path / "summary.md"
    stream = io.StringIO()
    report.emit_ci_reports(mixed, tmp_path / "j.xml",
                           environ={"GITHUB_STEP_SUMMARY": str(summary)}, stream=stream)
    assert (tmp_path / "j.xml").is_file()
    assert not summary.exists()
    assert stream.getvalue() == ""


def test_emit_ci_reports_in_github(tmp_path, mixed, monkeypatch):
    monkeypatch.chdir(tmp_path)
    summary = tmp_path / "summary.md"
    summary.write_text("previous step\n", encoding="utf-8")
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary),
           "GITHUB_WORKSPACE": str(tmp_path)}
    stream = io.StringIO()
    report.emit_ci_reports(mixed, None, environ=env, stream=stream)
    text = summary.read_text(encoding="utf-8")
    assert text.startswith("previous step\n### ❌ apply:")  # appended, not replaced
    lines = stream.getvalue().splitlines()
    assert [l.split(",")[1] for l in lines] == ["line=21", "line=34"]


def test_emit_ci_reports_without_summary_variable(tmp_path, mixed):
    stream = io.StringIO()
    report.emit_ci_reports(mixed, None, environ={"GITHUB_ACTIONS": "true"}, stream=stream)
    assert len(stream.getvalue().splitlines()) == 2


# --------------------------------------------------------------------------- terminal


def test_format_table_plain(mixed):
    text = report.format_table(mixed)
    lines = text.splitlines()
    assert lines[0].split() == ["ENGINE", "ACTION", "STATUS", "TIME", "SIZE", "DETAILS"]
    assert lines[1].startswith("vision/resnet50/fp16/lab  build")
    assert "\x1b" not in text
    assert all(line == line.rstrip() for line in lines)
    assert lines[-1] == report.summary_line(mixed)
    assert report.format_table(RunResult("plan")) == "plan: no engines (exit 0, 0.0s)\n"


def test_print_result_plain_console(mixed):
    from trtops.console import Mode, make_console

    buffer = io.StringIO()
    report.print_result(mixed, make_console(stderr=False, mode=Mode(False, False), file=buffer))
    assert buffer.getvalue() == report.format_table(mixed)


def test_print_result_rich_console(mixed):
    from rich.console import Console

    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=200, color_system="standard")
    report.print_result(mixed, console)
    text = buffer.getvalue()
    assert "\x1b[" in text and "bert" in text and "build failed" in text


def test_rich_table_is_one_line_per_engine_at_80_columns(mixed):
    from rich.console import Console

    long = RunResult("apply", [*mixed.outcomes, outcome(
        "a_model_with_a_rather_long_descriptive_name", "built", target="h100_sxm_80gb", seconds=75.0,
        engine_bytes=3 * 2**30 + 12345, message="not cached yet; " + "built with a long reason " * 6)])
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=80, color_system=None)
    report.print_result(long, console)
    lines = buffer.getvalue().splitlines()
    assert len(lines) == 1 + len(long.outcomes) + 1, "\n".join(lines)  # header, engines, summary
    assert all(len(line) <= 80 for line in lines[:-1]), "\n".join(lines)
    assert "3 GiB" in lines[-2] and "1m15s" in lines[-2] and "…" in lines[-2]


def test_table_escapes_hostile_names(mixed):
    from rich.console import Console

    hostile = RunResult("apply", [outcome("x", "build_failed", message=(
        "input 'a\x1b]52;c;ZWNobyBoaQ==\x07b' and 'c\u202ed' [red]not markup[/]"))])
    plain = report.format_table(hostile)
    buffer = io.StringIO()
    report.print_result(hostile, Console(file=buffer, force_terminal=True, width=400, color_system=None))
    for text in (plain, buffer.getvalue()):
        assert "\x1b]" not in text and "\u202e" not in text and "\x07" not in text
        assert "\\x07b" in text and "\\u202ed" in text
    assert "[red]not markup[/]" in buffer.getvalue()


def test_render_result_returns_exit_code(mixed, capsys, monkeypatch):
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)

    class Args:
        json = True
        junit = None

    assert report.render_result(mixed, Args()) == ExitCode.BUILD_FAILED
    assert json.loads(capsys.readouterr().out)["exit_code"] == 3


def test_every_status_has_a_label_and_icon():
    assert set(STATUS_EXIT) == set(report.STATUS_LABELS) == set(report.STATUS_ICONS)


def test_formatting_helpers():
    assert report.format_seconds(None) == ""
    assert report.format_seconds(5) == "5.0s"
    assert report.format_seconds(125) == "2m05s"
    assert report.format_seconds(3700) == "1h01m"


# --------------------------------------------------------------------------- matrix


PLAN_MANIFEST = """\
version: 1
targets:
  lab: {gpu: any}
  h100: {gpu: "NVIDIA H100*"}
models:
"""
MODEL = """\
  - name: {name}
    source: {{path: model.onnx}}
    precisions: [fp16]
    targets: [{target}]
"""


def make_test_plan(tmp_path: Path, kinds: list[tuple[str, str, str]]) -> Plan:
    """A real plan over real specs (from a real manifest): one action per (kind, model,
    target); its reason is the kind's."""
    from helpers import write_manifest

    text = PLAN_MANIFEST + "".join(MODEL.format(name=model, target=target) for _, model, target in kinds)
    (tmp_path / "model.onnx").write_bytes(b"not read")
    manifest = write_manifest(tmp_path, text, name="vision.yaml")
    specs = load_specs([manifest])
    actions = [Action(kind=kind, spec=spec, reason=f"why {kind}",
                      key=None if kind == "skip" else EngineKey("k" * 64, {}, {}))
               for (kind, _, _), spec in zip(kinds, specs)]
    return Plan(actions=actions, platform=Platform(tensorrt=None, gpus=()), cache_url="/c",
                cache_digest="")


def test_matrix_from_plan_groups_pending_work_by_target(tmp_path):
    plan = make_test_plan(tmp_path, [("build", "a", "h100"), ("reuse", "b", "lab"),
                                     ("rebuild", "c", "h100"), ("skip", "d", "lab"),
                                     ("build", "e", "lab"), ("rejected", "f", "h100")])
    assert report.matrix_from_plan(plan) == [
        {"target": "h100", "engines": 2, "manifests": ["vision"]},
        {"target": "lab", "engines": 1, "manifests": ["vision"]},
    ]
    assert report.matrix_from_plan(plan.actions[1:2]) == []


def test_result_from_plan_statuses_and_locations(tmp_path):
    plan = make_test_plan(tmp_path, [("build", "a", "lab"), ("rebuild", "b", "lab"),
                                     ("reuse", "c", "lab"), ("skip", "d", "lab"),
                                     ("rejected", "e", "lab")])
    result = report.result_from_plan(plan)
    assert result.command == "plan"
    assert [o.status for o in result.outcomes] == ["pending", "pending", "reused", "skipped",
                                                   "rejected"]
    first = result.outcomes[0]
    assert (first.id, first.manifest, first.model, first.target, first.action,
            first.message, first.key) == ("vision/a/fp16/lab", str(tmp_path / "vision.yaml"), "a",
                                          "lab", "build", "why build", "k" * 64)
    assert first.line == 6 and result.outcomes[4].line == 22
    [annotation] = report.github_annotations(result, relative_to=str(tmp_path))
    assert annotation.startswith("::error file=vision.yaml,line=22,")


def test_plan_summary_uses_the_given_exit_code(tmp_path):
    result = report.result_from_plan(make_test_plan(tmp_path, [("build", "a", "lab")]))
    text = report.github_step_summary(result, exit_code=2)
    assert text.startswith("### 🕓 plan: 1 pending (exit 2,")
    assert report.github_step_summary(result).startswith("### ✅ plan: 1 pending (exit 0,")
