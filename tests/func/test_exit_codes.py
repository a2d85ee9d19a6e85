"""Every command through every exit code of docs/exit-codes.md it can produce, table-driven.

In process (``trtops.cli.main``) on real manifests, models and caches in temp dirs; builds
and accuracy checks go through the toolchain test double (tests/doubles.py: the "engine"
is the ONNX model, checked with ONNX Runtime), whose failure switches give codes 3 and 4,
and whose GPU count 0 gives 5. Usage errors (argparse) are 1 for every command, never 2,
which ``plan --detailed-exitcode`` means as "changes pending". A closed stdout
(``trtops status | head -1``) ends quietly with 0, in a real process with a real pipe.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import make_conv_model, use_toolchain_double

from trtops.cli import COMMANDS, main

WORKTREE = Path(__file__).resolve().parents[2]
MANIFEST = """\
version: 1
targets:
  lab: {gpu: any}
models:
  - name: conv
    source: models/conv.onnx
    precisions: [fp32]
    loaders: [python]
    profiles:
      - input: {min: [1, 3, 8, 8], opt: [1, 3, 16, 16], max: [1, 3, 32, 32]}
"""
# The double's platform (tests/doubles.py): an H200 with TensorRT 8.6.0.
DOUBLE = ["--tensorrt", "8.6.0", "--gpu", "NVIDIA H200", "--compute-capability", "9.0"]
H100 = ["--tensorrt", "10.13.3.9", "--gpu", "NVIDIA H100 80GB HBM3", "--compute-capability", "9.0"]
HAS_TENSORRT = importlib.util.find_spec("tensorrt") is not None


def _apply(*extra: str) -> None:
    assert main(["apply", "m.yaml", "--no-emit", *extra]) in (0, 4, 6)


def _built(project: Path) -> None:
    _apply()


def _rejected(project: Path) -> None:
    os.environ["TRTOPS_FAKE_PERTURB"] = "conv"
    try:
        _apply()
    finally:
        del os.environ["TRTOPS_FAKE_PERTURB"]


def _pushed(project: Path) -> None:
    _apply()
    assert main(["push", "--remote", "remote"]) == 0


def _corrupt(project: Path) -> None:
    _apply()
    engine = next((project / "cache" / "engines").rglob("engine.plan"))
    engine.write_bytes(b"not the engine that was published")


def _budget(project: Path) -> None:
    # The double's fp32 engine runs 1 ms per sample: a budget it cannot meet.
    (project / "m.yaml").write_text(MANIFEST + "    performance: {max_latency_ms: 0.5}\n")


def _built_then_budget(project: Path) -> None:
    _apply()
    _budget(project)
REPAIR_MANIFEST = """\
version: 1
targets:
  lab: {gpu: any}
models:
  - name: chain
    source: models/chain.onnx
    precisions: [fp16]
    accuracy: {tolerances: {fp16: {atol: 1e-3, rtol: 1e-3, stat: max}}}
"""
FP16_BAD = {"TRTOPS_FAKE_FP16_BAD": "overflow,scale_down"}


def _failed_fp16(project: Path) -> None:
    from helpers import make_overflow_model

    make_overflow_model(project / "models" / "chain.onnx")
    (project / "r.yaml").write_text(REPAIR_MANIFEST)
    os.environ.update(FP16_BAD)
    try:
        assert main(["apply", "r.yaml", "--no-emit"]) == 4
    finally:
        del os.environ["TRTOPS_FAKE_FP16_BAD"]


def _bad_manifest(project: Path) -> None:
    (project / "m.yaml").write_text(MANIFEST.replace("precisions: [fp32]", "precisions: [fp33]"))


def _schema_dir_is_a_file(project: Path) -> None:
    (project / "blocked").write_text("")


# id -> (expected code, argv, environment, preparation). One row per command and code.
CASES: dict[str, tuple[int, list[str], dict[str, str], object]] = {
    "validate-0": (0, ["validate", "m.yaml"], {}, None),
    "validate-1": (1, ["validate", "m.yaml"], {}, _bad_manifest),
    "schema-0": (0, ["schema", "-o", "schema.json"], {}, None),
    "schema-1": (1, ["schema", "-o", "blocked/schema.json"], {}, _schema_dir_is_a_file),
    "plan-0": (0, ["plan", "m.yaml", *H100], {}, None),
    "plan-0-up-to-date": (0, ["plan", "m.yaml", "--detailed-exitcode", *DOUBLE], {}, _built),
    "plan-1": (1, ["plan", "m.yaml", *H100], {}, _bad_manifest),
    "plan-1-platform-file": (1, ["plan", "m.yaml", "--platform", "missing.json"], {}, None),
    "plan-2": (2, ["plan", "m.yaml", "--detailed-exitcode", *H100], {}, None),
    "apply-0": (0, ["apply", "m.yaml", "--emit-dir", "out"], {}, None),
    "apply-1": (1, ["apply", "m.yaml"], {}, _bad_manifest),
    "apply-1-target": (1, ["apply", "m.yaml", "--target", "nope"], {}, None),
    "apply-3": (3, ["apply", "m.yaml"], {"TRTOPS_FAKE_BUILD_FAIL": "conv"}, None),
    "apply-4": (4, ["apply", "m.yaml"], {"TRTOPS_FAKE_PERTURB": "conv"}, None),
    "apply-4-rejected-before": (4, ["apply", "m.yaml"], {}, _rejected),
    "apply-5": (5, ["apply", "m.yaml"], {"TRTOPS_FAKE_GPUS": "0"}, None),
    "apply-6": (6, ["apply", "m.yaml"], {}, _budget),
    "apply-6-reused": (6, ["apply", "m.yaml"], {}, _built_then_budget),
    "bench-0": (0, ["bench", "m.yaml"], {}, _built),
    "bench-1": (1, ["bench", "m.yaml"], {}, _bad_manifest),
    "bench-5": (5, ["bench", "m.yaml"], {"TRTOPS_FAKE_GPUS": "0"}, _built),
    "bench-6": (6, ["bench", "m.yaml"], {}, _built_then_budget),
    "verify-0": (0, ["verify", "m.yaml"], {}, _built),
    "verify-1": (1, ["verify", "m.yaml"], {}, _bad_manifest),
    "verify-4": (4, ["verify", "m.yaml"], {}, _rejected),
    "verify-5": (5, ["verify", "m.yaml"], {"TRTOPS_FAKE_GPUS": "0"}, _built),
    "verify-5-no-tensorrt": (5, ["verify", "m.yaml"], {"TRTOPS_FAKE_TENSORRT": ""}, _built),
    "status-0": (0, ["status", "m.yaml"], {}, _built),
    "status-1": (1, ["status", "m.yaml"], {}, _bad_manifest),
    "info-0": (0, ["info", *H100], {}, None),
    "info-1": (1, ["info", "--platform", "missing.json"], {}, None),
    "emit-0": (0, ["emit", "m.yaml", "--dest", "out"], {}, _built),
    "emit-1": (1, ["emit", "m.yaml", "--dest", "out"], {}, None),  # nothing built yet
    "emit-4": (4, ["emit", "m.yaml", "--dest", "out"], {}, _rejected),  # never emitted
    "push-0": (0, ["push", "--remote", "remote"], {}, _built),
    "push-1": (1, ["push"], {}, _built),  # no remote given
    "pull-0": (0, ["pull", "m.yaml", "--remote", "remote", "--cache", "node", *DOUBLE], {}, _pushed),
    "pull-1": (1, ["pull", "m.yaml", "--remote", "remote", "--cache", "node", *DOUBLE], {}, None),
    "pull-5": (5, ["pull", "m.yaml", "--remote", "remote", "--cache", "node"], {}, _pushed),
    "lock-0": (0, ["lock", "m.yaml"], {}, _built),
    "lock-1": (1, ["lock", "m.yaml"], {}, None),  # nothing built, no platform named
    "gc-0": (0, ["gc", "m.yaml", *DOUBLE], {}, _built),
    "gc-1": (1, ["gc", "m.yaml", *DOUBLE], {}, _bad_manifest),
    "repair-0": (0, ["repair", "r.yaml"], FP16_BAD, _failed_fp16),
    "repair-1": (1, ["repair", "m.yaml"], {}, _built),  # nothing failed its gate
    "repair-1-fp32": (1, ["repair", "m.yaml"], {}, _rejected),  # keep_fp32 cannot help fp32
    "repair-1-max-builds": (1, ["repair", "r.yaml", "--max-builds", "1"], FP16_BAD, _failed_fp16),
    "repair-4": (4, ["repair", "r.yaml", "--max-builds", "2"], FP16_BAD, _failed_fp16),
    "repair-5": (5, ["repair", "r.yaml"], {"TRTOPS_FAKE_GPUS": "0", **FP16_BAD}, _failed_fp16),
    "cache-0": (0, ["cache", "verify"], {}, _built),
    "cache-1": (1, ["cache", "verify"], {}, _corrupt),
    "cache-1-no-subcommand": (1, ["cache"], {}, None),
}
# Every command's usage error: an unknown option, and global options after the command.
for _command in COMMANDS:
    _argv = ["cache", "verify"] if _command == "cache" else [_command]
    CASES[f"{_command}-1-usage"] = (1, [*_argv, "--no-such-option"], {}, None)
CASES["plan-1-usage-detailed-exitcode"] = (1, ["plan", "--detailed-exitcode", "--platfrom", "x"], {}, None)
CASES["plan-1-usage-bad-choice"] = (1, ["apply", "--engine-ref", "nope"], {}, None)
CASES["plan-0-verbose-after-command"] = (0, ["plan", "m.yaml", "-v", *H100], {}, None)
CASES["plan-0-verbose-before-command"] = (0, ["-v", "plan", "m.yaml", *H100], {}, None)
CASES["cache-0-verbose-after-subcommand"] = (0, ["cache", "verify", "-v"], {}, None)
CASES["info-0-version-after-command"] = (0, ["info", "--version"], {}, None)

@pytest.fixture
def project(tmp_path, monkeypatch):
    make_conv_model(tmp_path / "models" / "conv.onnx", input_shape=(1, 3, "H", "W"))
    (tmp_path / "m.yaml").write_text(MANIFEST)
    (tmp_path / "remote").mkdir()
    monkeypatch.chdir(tmp_path)
    use_toolchain_double(monkeypatch)
    return tmp_path


def _exit_code(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as done:  # argparse: usage errors, --version
        return int(done.code or 0)


@pytest.mark.parametrize("case", sorted(CASES))
def test_exit_code(case, project, monkeypatch, capsys):
    code, argv, env, prepare = CASES[case]
    if case == "pull-5" and HAS_TENSORRT:
        pytest.skip("TensorRT is installed here: its version is known")
    if prepare is not None:
        prepare(project)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    capsys.readouterr()
    got = _exit_code(argv)
    err = capsys.readouterr().err
    assert got == code, err[-3000:]
    assert "internal error" not in err and "Traceback" not in err or "-v" in argv


def test_every_command_and_every_code_has_a_case():
    commands = {case.split("-")[0] for case in CASES}
    assert commands == set(COMMANDS)
    codes = {CASES[case][0] for case in CASES}
    assert codes == {0, 1, 2, 3, 4, 5, 6}  # 70 is a bug, 130 a Ctrl-C: neither is user input


def _with_closed_stdout(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """Run trtops with a stdout whose reader is gone (like `| head -1` after its line):
    every write fails with EPIPE, deterministically."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRTOPS_", "GITHUB_"))}
    env["PYTHONPATH"] = str(WORKTREE)
    try:
        return subprocess.run([sys.executable, "-m", "trtops", *argv], cwd=cwd, env=env,
                              stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120,
                              check=False)
    finally:
        os.close(write_end)


@pytest.mark.parametrize("argv", [
    ["status", "m.yaml"],
    ["plan", "m.yaml", "--json", *H100],
    ["plan", "m.yaml", *H100],
    ["schema"],
    ["--version"],
], ids=["status", "plan-json", "plan", "schema", "version"])
def test_a_closed_stdout_ends_quietly_with_0(argv, project):
    result = _with_closed_stdout(argv, project)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
