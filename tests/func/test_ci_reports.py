"""CI integration end to end: the CLI in a subprocess, as a CI job runs it.

Checks the machine-readable outputs (--json on stdout with logs on stderr, --junit read
back with junitparser, plan --matrix), the GitHub Actions step summary and ``::error``
annotations (with the manifest line of the failing model), plain output in CI (no ANSI),
the pre-commit hook, and every exit code of docs/exit-codes.md.

`apply` runs with the builder test double (``TRTOPS_TEST_BUILDER``) where there is no GPU.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import make_conv_model, write_manifest
from junitparser import Error, Failure, JUnitXml, Skipped

REPO = Path(__file__).resolve().parents[2]
ANSI = re.compile(r"\x1b\[")
ANNOTATION = re.compile(r"^::error (?P<props>[^:]*)::(?P<message>.*)$")

# Machine described by flags: planning needs no GPU and no TensorRT.
H100 = ["--tensorrt", "10.13.3.9", "--gpu", "NVIDIA H100 80GB HBM3", "--compute-capability", "9.0"]

MANIFEST = """\
version: 1
targets:
  h100: {gpu: "NVIDIA H100*", tensorrt: ">=10.13,<10.14"}
  l4: {compute_capability: "8.9"}
models:
  - name: classifier
    source: models/classifier.onnx
    precisions: [fp32, fp16]
    profiles:
      - input: {min: [1, 3, 8, 8], opt: [2, 3, 16, 16], max: [4, 3, 32, 32]}
    targets: [h100]

  - name: detector
    source: models/detector.onnx
    precisions: [fp16]
    profiles:
      - input: {min: [1, 3, 8, 8], opt: [2, 3, 16, 16], max: [4, 3, 32, 32]}

  - name: segmenter
    source: models/segmenter.onnx
    precisions: [fp16]
    profiles:
      - input: {min: [1, 3, 8, 8], opt: [2, 3, 16, 16], max: [4, 3, 32, 32]}
    targets: [h100]
"""
# 1-based lines of the models above, where annotations must point.
LINES = {"classifier": 6, "detector": 13, "segmenter": 19}
H100_ENGINES = ["vision/classifier/fp32/h100", "vision/classifier/fp16/h100",
                "vision/detector/fp16/h100", "vision/segmenter/fp16/h100"]

CI_VARIABLES = ("CI", "GITHUB_ACTIONS", "GITLAB_CI", "BUILDKITE", "TF_BUILD", "JENKINS_URL",
                "TEAMCITY_VERSION", "GITHUB_STEP_SUMMARY", "GITHUB_WORKSPACE", "NO_COLOR",
                "TRTOPS_PLAIN", "TRTOPS_CACHE", "TRTOPS_REMOTE", "TRTOPS_TEST_BUILDER",
                "TRTOPS_DEBUG", "FORCE_COLOR")


def trtops(*args: str, cwd: Path, env: dict[str, str] | None = None,
           timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the CLI like a CI job: a fresh process, pipes for stdout and stderr."""
    base = {k: v for k, v in os.environ.items() if k not in CI_VARIABLES}
    base.update(env or {})
    return subprocess.run([sys.executable, "-m", "trtops", *args], cwd=cwd, env=base,
                          capture_output=True, text=True, timeout=timeout, check=False)


def github_env(project: Path) -> dict[str, str]:
    """What a GitHub Actions runner sets for a step."""
    return {"CI": "true", "GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": str(project),
            "GITHUB_STEP_SUMMARY": str(project / "step_summary.md")}


def annotations(stderr: str) -> list[dict[str, str]]:
    """Parse ``::error k=v,...::message`` lines, unescaping as the runner does."""
    found = []
    for line in stderr.splitlines():
        match = ANNOTATION.match(line)
        if not match:
            continue
        props = {}
        for pair in match["props"].split(","):
            key, _, value = pair.partition("=")
            props[key] = _unescape(value, prop=True)
        props["message"] = _unescape(match["message"])
        found.append(props)
    return found


def _unescape(text: str, prop: bool = False) -> str:
    if prop:
        text = text.replace("%3A", ":").replace("%2C", ",")
    return text.replace("%0D", "\r").replace("%0A", "\n").replace("%25", "%")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for seed, model in enumerate(LINES):  # distinct weights: distinct engines
        make_conv_model(tmp_path / "manifests" / "models" / f"{model}.onnx", seed=seed)
    path = write_manifest(tmp_path / "manifests", MANIFEST, "vision.yaml")
    lines = path.read_text().splitlines()
    for model, line in LINES.items():
        assert lines[line - 1].strip() == f"- name: {model}", (model, lines[line - 1])
    return tmp_path


# --------------------------------------------------------------------------- validate, hook


def test_validate_exit_codes_and_plain_output_in_ci(project: Path) -> None:
    ok = trtops("validate", cwd=project, env={"CI": "true"})
    assert ok.returncode == 0, ok.stderr
    manifest = project / "manifests" / "vision.yaml"
    manifest.write_text(MANIFEST.replace("precisions: [fp16]", "precisions: [fp17]", 1))
    bad = trtops("validate", cwd=project, env={"CI": "true"})
    assert bad.returncode == 1
    assert f"manifests/vision.yaml:{LINES['detector'] + 2}:" in bad.stderr
    assert not ANSI.search(bad.stdout + bad.stderr)


def test_pre_commit_hook_runs_validate_on_changed_manifests(project: Path) -> None:
    [hook] = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "trtops-validate"
    assert hook["language"] == "python"
    files = re.compile(hook["files"])
    changed = ["manifests/vision.yaml", "manifests/sub/x.yml", "README.md", "other/a.yaml",
               "manifests/models/conv.onnx"]
    selected = [f for f in changed if files.search(f)]
    assert selected == ["manifests/vision.yaml", "manifests/sub/x.yml"]
    # pre-commit runs `entry` + the selected file names (that exist) in the repository root.
    entry = shlex.split(hook["entry"])
    assert entry[0] == "trtops"
    run = trtops(*entry[1:], "manifests/vision.yaml", cwd=project, env={"CI": "true"})
    assert run.returncode == 0, run.stderr
    (project / "manifests" / "broken.yaml").write_text("version: 1\nmodels: []\n")
    run = trtops(*entry[1:], "manifests/vision.yaml", "manifests/broken.yaml", cwd=project)
    assert run.returncode == 1
    assert "manifests/broken.yaml:" in run.stderr


# --------------------------------------------------------------------------- plan


def test_plan_json_is_one_document_on_stdout(project: Path) -> None:
    result = trtops("plan", "--json", *H100, "--cache", str(project / "cache"), cwd=project,
                    env={"CI": "true"})
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)  # the whole of stdout is one document
    kinds = {a["id"]: a["kind"] for a in plan["actions"]}
    assert kinds == {**{engine: "build" for engine in H100_ENGINES},
                     "vision/detector/fp16/l4": "skip"}
    assert not ANSI.search(result.stdout + result.stderr)


def test_plan_detailed_exitcode(project: Path) -> None:
    cache = ["--cache", str(project / "cache")]
    pending = trtops("plan", "--detailed-exitcode", *H100, *cache, cwd=project)
    assert pending.returncode == 2, pending.stderr
    assert trtops("plan", *H100, *cache, cwd=project).returncode == 0
    # Nothing buildable on an L4 for h100-only models... but detector is buildable there.
    nothing = trtops("plan", "--detailed-exitcode", "manifests/vision.yaml", "--tensorrt",
                     "10.13.3.9", "--gpu", "NVIDIA A100-SXM4-80GB", "--compute-capability", "8.0",
                     *cache, cwd=project)
    assert nothing.returncode == 0, nothing.stdout + nothing.stderr


def test_plan_matrix_lists_targets_with_pending_work(project: Path) -> None:
    result = trtops("plan", "--matrix", *H100, "--cache", str(project / "cache"), cwd=project)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") == 1  # one line: `echo "matrix=$(...)" >> $GITHUB_OUTPUT`
    assert json.loads(result.stdout) == [{"target": "h100", "engines": 4, "manifests": ["vision"]}]
    l4 = trtops("plan", "--matrix", "--tensorrt", "10.13.3.9", "--gpu", "NVIDIA L4",
                "--compute-capability", "8.9", "--cache", str(project / "cache"), cwd=project)
    assert json.loads(l4.stdout) == [{"target": "l4", "engines": 1, "manifests": ["vision"]}]
    none = trtops("plan", "--matrix", "--detailed-exitcode", "--tensorrt", "10.13.3.9", "--gpu",
                  "NVIDIA A100-SXM4-80GB", "--compute-capability", "8.0",
                  "--cache", str(project / "cache"), cwd=project)
    assert (none.returncode, json.loads(none.stdout)) == (0, [])


def test_plan_step_summary_in_github_actions(project: Path) -> None:
    env = github_env(project)
    result = trtops("plan", "--detailed-exitcode", *H100, "--cache", str(project / "cache"),
                    cwd=project, env=env)
    assert result.returncode == 2, result.stderr
    summary = Path(env["GITHUB_STEP_SUMMARY"]).read_text(encoding="utf-8")
    assert summary.startswith("### 🕓 plan: 1 skipped, 4 pending (exit 2,")
    assert (f"| `classifier/fp16/h100` | vision:{LINES['classifier']} | build | 🕓 pending |"
            in summary)
    assert f"| `detector/fp16/l4` | vision:{LINES['detector']} | skip | ⏭️ skipped |" in summary
    assert annotations(result.stderr) == []  # nothing failed
    assert not ANSI.search(result.stdout + result.stderr)


def test_plan_outside_github_writes_no_summary(project: Path) -> None:
    env = {"GITHUB_STEP_SUMMARY": str(project / "step_summary.md")}
    result = trtops("plan", *H100, "--cache", str(project / "cache"), cwd=project, env=env)
    assert result.returncode == 0, result.stderr
    assert not (project / "step_summary.md").exists()


def test_status_and_pull_json_keep_logs_off_stdout(project: Path) -> None:
    status = trtops("status", "--json", "--cache", str(project / "cache"), cwd=project,
                    env={"CI": "true"})
    assert status.returncode == 0, status.stderr
    assert {row["engine"] for row in json.loads(status.stdout)["engines"]} >= {
        "vision/classifier/fp16/h100", "vision/detector/fp16/l4"}
    (project / "remote").mkdir()
    pull = trtops("pull", "--json", "--remote", str(project / "remote"), "--cache",
                  str(project / "cache"), "--tensorrt", "10.13.3.9", "--gpu", "NVIDIA L4",
                  "--compute-capability", "8.9", cwd=project, env={"CI": "true"})
    assert pull.returncode == 0, pull.stderr
    assert json.loads(pull.stdout)["entries"] == []
    assert "pulling for NVIDIA L4" in pull.stderr  # the log went to stderr


# --------------------------------------------------------------------------- apply

FAKE_H100 = {
    # The toolchain double: builds "engines" that are ONNX files and checks them with the
    # real accuracy gate (ONNX Runtime on both sides); it pretends to be an H100 machine.
    "PYTHONPATH": os.pathsep.join([str(REPO / "tests"), os.environ.get("PYTHONPATH", "")]),
    "TRTOPS_TEST_TOOLCHAIN": "doubles:FakeToolchain",
    "TRTOPS_FAKE_GPU": "NVIDIA H100 80GB HBM3",
    "TRTOPS_FAKE_TENSORRT": "10.13.3.9",
}

needs_apply = pytest.mark.skipif(
    importlib.util.find_spec("trtops.ops.apply") is None
    or not (REPO / "tests" / "doubles.py").is_file(),
    reason="trtops apply or the toolchain test double is not available",
)


def apply(project: Path, *args: str, env: dict[str, str] | None = None,
          **fake: str) -> subprocess.CompletedProcess[str]:
    """`trtops apply` on the fake H100; ``fake`` sets TRTOPS_FAKE_* (build_fail, perturb)."""
    extra = {**FAKE_H100, **(env or {})}
    extra.update({f"TRTOPS_FAKE_{name.upper()}": value for name, value in fake.items()})
    return trtops("apply", "--cache", str(project / "cache"), "--no-emit", *args,
                  cwd=project, env=extra)


@needs_apply
def test_apply_reports_in_github_actions(project: Path) -> None:
    """One build failure and one accuracy failure, with every report a CI job reads."""
    env = {**github_env(project), "TRTOPS_FAKE_LOG": str(project / "builds.log")}
    result = apply(project, "--keep-going", "--json", "--junit", "reports/junit.xml",
                   env=env, build_fail="detector", perturb="segmenter")
    assert result.returncode == 3, result.stderr  # build failure outranks accuracy failure

    # --json: the whole of stdout is one document; logs and progress are on stderr.
    document = json.loads(result.stdout)
    statuses = {e["id"]: e["status"] for e in document["engines"]}
    assert statuses == {
        "vision/classifier/fp32/h100": "built", "vision/classifier/fp16/h100": "built",
        "vision/detector/fp16/h100": "build_failed", "vision/segmenter/fp16/h100": "accuracy_failed",
        "vision/detector/fp16/l4": "skipped"}
    assert document["exit_code"] == 3
    assert {e["id"]: e["line"] for e in document["engines"]}["vision/segmenter/fp16/h100"] == \
        LINES["segmenter"]
    assert "[1/4] classifier/fp32/h100: building..." in result.stderr
    assert not ANSI.search(result.stdout + result.stderr)

    # --junit, read back with a JUnit parser.
    xml = JUnitXml.fromfile(str(project / "reports" / "junit.xml"))
    [suite] = list(xml)
    assert suite.name == "trtops apply"
    assert (suite.tests, suite.failures, suite.errors, suite.skipped) == (5, 2, 0, 1)
    cases = {case.name: case for case in suite}
    assert set(cases) == {"classifier/fp32/h100", "classifier/fp16/h100", "detector/fp16/h100",
                          "segmenter/fp16/h100", "detector/fp16/l4"}
    assert {case.classname for case in suite} == {"vision"}
    assert cases["classifier/fp32/h100"].is_passed
    [failure] = cases["detector/fp16/h100"].result
    assert isinstance(failure, Failure) and failure.type == "build_failed"
    assert "ONNX parser: node 3" in failure.message
    [failure] = cases["segmenter/fp16/h100"].result
    assert isinstance(failure, Failure) and failure.type == "accuracy_failed"
    assert "accuracy: FAILED" in failure.message
    assert "profile0/" in failure.text  # the accuracy table
    assert isinstance(cases["detector/fp16/l4"].result[0], Skipped)
    for name, case in cases.items():
        assert case._elem.get("file") == "manifests/vision.yaml"
        assert case._elem.get("line") == str(LINES[name.split("/")[0]])

    # Step summary: one row per engine, worst accuracy lines, failure details.
    summary = Path(env["GITHUB_STEP_SUMMARY"]).read_text(encoding="utf-8")
    assert summary.startswith("### ❌ apply: 2 built, 1 skipped, 1 build failed, "
                              "1 accuracy failed (exit 3,")
    rows = [line for line in summary.splitlines() if line.startswith("| `")]
    assert len(rows) == 5
    assert any(row.startswith(f"| `detector/fp16/h100` | vision:{LINES['detector']} | build | "
                              "❌ build failed |") for row in rows)
    assert "- ❌ `segmenter/fp16/h100` `output` @ profile0/" in summary
    assert "- ✅ `classifier/fp32/h100` `output`" in summary
    assert "<details><summary><code>detector/fp16/h100</code>: build failed</summary>" in summary

    # Annotations: on the manifest line of each failing model.
    found = annotations(result.stderr)
    assert [(a["file"], a["line"], a["title"]) for a in found] == [
        ("manifests/vision.yaml", str(LINES["detector"]),
         "trtops apply: detector/fp16/h100 build failed"),
        ("manifests/vision.yaml", str(LINES["segmenter"]),
         "trtops apply: segmenter/fp16/h100 accuracy failed"),
    ]
    assert "ONNX parser: node 3 (Conv 'conv1') of detector" in found[0]["message"]
    assert found[1]["message"].startswith("accuracy: FAILED (fp16 vs onnxruntime)")


@needs_apply
def test_apply_exit_0_then_up_to_date(project: Path) -> None:
    first = apply(project, "--json")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["counts"] == {"built": 4, "skipped": 1}
    again = apply(project, "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["counts"] == {"reused": 4, "skipped": 1}
    plan = trtops("plan", "--detailed-exitcode", *H100, "--cache", str(project / "cache"),
                  cwd=project)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    matrix = trtops("plan", "--matrix", *H100, "--cache", str(project / "cache"), cwd=project)
    assert json.loads(matrix.stdout) == []


@needs_apply
def test_apply_exit_3_build_failed(project: Path) -> None:
    result = apply(project, "--keep-going", build_fail="classifier")
    assert result.returncode == 3, result.stderr
    assert "build failed" in result.stdout  # the table


@needs_apply
def test_apply_exit_4_accuracy_failed_and_plan_annotates_rejected(project: Path) -> None:
    result = apply(project, "--keep-going", perturb="segmenter")
    assert result.returncode == 4, result.stderr
    # The engine is kept as rejected: the next plan says so, on the model's line.
    env = github_env(project)
    plan = trtops("plan", "--detailed-exitcode", *H100, "--cache", str(project / "cache"),
                  cwd=project, env=env)
    assert plan.returncode == 0, plan.stderr  # nothing left to build
    [found] = annotations(plan.stderr)
    assert (found["file"], found["line"], found["title"]) == (
        "manifests/vision.yaml", str(LINES["segmenter"]),
        "trtops plan: segmenter/fp16/h100 rejected (accuracy)")
    summary = Path(env["GITHUB_STEP_SUMMARY"]).read_text(encoding="utf-8")
    assert "❌ rejected (accuracy)" in summary
    # apply does not retry it, and still fails the job.
    again = apply(project, "--json")
    assert again.returncode == 4
    assert {e["id"]: e["status"] for e in json.loads(again.stdout)["engines"]}[
        "vision/segmenter/fp16/h100"] == "rejected"


@needs_apply
def test_apply_target_restricts_to_one_target(project: Path) -> None:
    result = apply(project, "--target", "h100", "--json")
    assert result.returncode == 0, result.stderr
    assert sorted(e["id"] for e in json.loads(result.stdout)["engines"]) == sorted(H100_ENGINES)
    unknown = apply(project, "--target", "a100")
    assert unknown.returncode == 1
    assert "a100" in unknown.stderr and "hint:" in unknown.stderr


@needs_apply
def test_apply_bad_junit_path_fails_before_building(project: Path) -> None:
    (project / "reports").write_text("a file, not a folder")
    log = project / "builds.log"
    result = apply(project, "--junit", "reports/junit.xml", env={"TRTOPS_FAKE_LOG": str(log)})
    assert result.returncode == 1
    assert "--junit" in result.stderr
    assert not log.exists()  # nothing was built


@needs_apply
def test_apply_exit_70_internal_error(project: Path, tmp_path: Path) -> None:
    # A toolchain that has a bug (not a TrtopsError): the engine is an error, the run 70.
    (tmp_path / "buggy_toolchain.py").write_text(
        "from doubles import FakeToolchain\n"
        "class Buggy(FakeToolchain):\n"
        "    def build(self, request):\n"
        "        raise KeyError('a bug')\n")
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path), FAKE_H100["PYTHONPATH"]]),
           "TRTOPS_TEST_TOOLCHAIN": "buggy_toolchain:Buggy", **github_env(project)}
    result = apply(project, "--json", "--junit", "junit.xml", env=env)
    assert result.returncode == 70, result.stderr
    document = json.loads(result.stdout)
    assert document["engines"][0]["status"] == "error"
    assert "KeyError" in document["engines"][0]["message"]
    case = next(iter(next(iter(JUnitXml.fromfile(str(project / "junit.xml"))))))
    assert isinstance(case.result[0], Error)
    assert annotations(result.stderr)[0]["line"] == str(LINES["classifier"])


def test_exit_5_apply_without_tensorrt(project: Path) -> None:
    if importlib.util.find_spec("trtops.ops.apply") is None:
        pytest.skip("trtops apply is not available")
    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("TensorRT is installed here")
    result = trtops("apply", "--cache", str(project / "cache"), "--no-emit", "--junit",
                    "junit.xml", cwd=project)
    assert result.returncode == 5, result.stdout + result.stderr
    cases = list(next(iter(JUnitXml.fromfile(str(project / "junit.xml")))))
    assert isinstance(cases[0].result[0], Error)
    assert "TensorRT" in cases[0].result[0].message
    # Without --keep-going the others are not attempted.
    assert all(isinstance(case.result[0], (Error, Skipped)) for case in cases)


# --------------------------------------------------------------------------- exit codes


def test_exit_1_user_error(project: Path) -> None:
    result = trtops("plan", "manifests/missing.yaml", *H100, cwd=project)
    assert result.returncode == 1
    assert result.stderr.startswith("error: ")
    assert "Traceback" not in result.stderr


def test_exit_1_bad_flags(project: Path) -> None:
    result = trtops("plan", "--gpu", "NVIDIA L4", cwd=project)  # --gpu needs --compute-capability
    assert result.returncode == 1
    assert "hint:" in result.stderr


def test_exit_5_environment_without_tensorrt(project: Path) -> None:
    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("TensorRT is installed: this machine can tell its platform")
    result = trtops("pull", "--remote", str(project / "remote"), "--gpu", "NVIDIA L4",
                    "--compute-capability", "8.9", cwd=project)
    assert result.returncode == 5, result.stderr
    assert "TensorRT" in result.stderr
