"""A cache that cannot be written: commands that must write it (apply, verify, pull, gc,
cache verify --delete) fail once, up front, with one clear error (exit 1) and leave it as
it was; commands that only read it (plan, status, report, emit, gc --dry-run, cache verify) work.

A read-only cache is made for real: a read-only bind mount of the cache directory in a
private mount namespace (``unshare -rm``, no privileges needed where user namespaces are
enabled, and root cannot write through it either), else ``chmod a-w`` when not running as
root (root ignores mode bits). Where neither is possible the test skips; the upfront check
itself is also covered by a condition every machine has: a file where the cache directory
should be.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from helpers import make_conv_model

from trtops.cache.entries import publish_entry
from trtops.cache.local import LocalStore
from trtops.cache.store import BUILD_LOG_FILE, ENGINE_FILE
from trtops.cli import main
from trtops.engine_io import EngineIO, ProfileShapes, TensorIO
from trtops.plan import Plan

H100_FLAGS = ["--tensorrt", "10.13.3.9", "--gpu", "NVIDIA H100 80GB HBM3", "--compute-capability", "9.0"]
MANIFEST = """\
version: 1
targets:
  h100: {gpu: "NVIDIA H100*"}
models:
  - name: conv
    source: models/conv.onnx
    precisions: [fp32, fp16]
    profiles:
      - input: {min: [1, 3, 8, 8], opt: [1, 3, 16, 16], max: [1, 3, 32, 32]}
"""
WORKTREE = Path(__file__).resolve().parents[2]
BIND_READ_ONLY = 'mount --bind -o ro "$1" "$1" && shift && exec "$@"'


def _how_to_make_read_only() -> str | None:
    if shutil.which("unshare"):
        with tempfile.TemporaryDirectory() as probe:  # a bind mount that really refuses writes
            proof = 'mount --bind -o ro "$1" "$1" && ! touch "$1/x" 2>/dev/null'
            if subprocess.run(["unshare", "-rm", "sh", "-c", proof, "sh", probe],
                              capture_output=True, check=False).returncode == 0:
                return "bind"
    if os.geteuid() != 0:
        return "chmod"
    return None


HOW = _how_to_make_read_only()
needs_read_only = pytest.mark.skipif(HOW is None, reason="no read-only bind mount (unshare) and "
                                     "running as root, which ignores chmod")


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*"))}


@pytest.fixture
def project(tmp_path, monkeypatch, capsys):
    make_conv_model(tmp_path / "models" / "conv.onnx", input_shape=(1, 3, "H", "W"))
    (tmp_path / "demo.yaml").write_text(MANIFEST)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TRTOPS_CACHE", raising=False)
    assert main(["plan", "demo.yaml", "--json", *H100_FLAGS]) == 0
    plan = Plan.from_json(json.loads(capsys.readouterr().out))
    store = LocalStore(tmp_path / "cache")
    action = plan.actions[0]
    io = EngineIO((TensorIO("input", "input", "float32", (1, 3, -1, -1)),
                   TensorIO("output", "output", "float32", (1, 4, -1, -1))),
                  (ProfileShapes((("input", (1, 3, 8, 8), (1, 3, 16, 16), (1, 3, 32, 32)),)),))
    publish_entry(store, action.key, action.id, {ENGINE_FILE: b"engine" * 100, BUILD_LOG_FILE: b"log"},
                  accuracy={"state": "accepted", "summary": "ok"}, build_seconds=1.0,
                  tensorrt_version="10.13.3.9", extra={"io": io.to_json()})
    (tmp_path / "remote").mkdir()
    return tmp_path


def _trtops(project: Path, argv: list[str], *, read_only: bool) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRTOPS_", "GITHUB_"))}
    env.update({"PYTHONPATH": str(WORKTREE), "CI": "true"})
    command = [sys.executable, "-m", "trtops", *argv]
    cache = project / "cache"
    if read_only and HOW == "bind":
        command = ["unshare", "-rm", "sh", "-c", BIND_READ_ONLY, "sh", str(cache), *command]
    if read_only and HOW == "chmod":
        for path in [cache, *cache.rglob("*")]:
            path.chmod(path.stat().st_mode & ~0o222)
    try:
        return subprocess.run(command, cwd=project, env=env, capture_output=True, text=True,
                              timeout=120, check=False)
    finally:
        if read_only and HOW == "chmod":
            for path in [cache, *cache.rglob("*")]:
                path.chmod(path.stat().st_mode | 0o200)


READ_ONLY_COMMANDS = {
    "plan": ["plan", "demo.yaml", *H100_FLAGS],
    "plan-json": ["plan", "demo.yaml", "--json", "--detailed-exitcode", *H100_FLAGS],
    "status": ["status", "demo.yaml"],
    "report": ["report", "demo.yaml", "-o", "out/report.html"],
    "gc-dry-run": ["gc", "--dry-run", "demo.yaml", *H100_FLAGS],
    "cache-verify": ["cache", "verify"],
    "emit": ["emit", "demo.yaml", "--dest", "out", "--loaders", "python", "--precision", "fp32"],
}
WRITING_COMMANDS = {
    "apply": ["apply", "demo.yaml"],
    "verify": ["verify", "demo.yaml"],
    "gc": ["gc", "demo.yaml", *H100_FLAGS],
    "cache-verify-delete": ["cache", "verify", "--delete"],
    "pull": ["pull", "--remote", "remote", "--all", *H100_FLAGS],
}


@needs_read_only
@pytest.mark.parametrize("name", sorted(READ_ONLY_COMMANDS))
def test_commands_that_only_read_work_on_a_read_only_cache(name, project):
    argv = READ_ONLY_COMMANDS[name]
    before = _snapshot(project / "cache")
    read_only = _trtops(project, argv, read_only=True)
    assert _snapshot(project / "cache") == before
    writable = _trtops(project, argv, read_only=False)
    assert read_only.returncode == writable.returncode, read_only.stderr
    assert read_only.returncode in (0, 2), read_only.stderr
    assert "cannot be written" not in read_only.stderr
    assert "Read-only" not in read_only.stderr and "internal error" not in read_only.stderr


@needs_read_only
@pytest.mark.parametrize("name", sorted(WRITING_COMMANDS))
def test_commands_that_must_write_fail_once_up_front(name, project):
    before = _snapshot(project / "cache")
    result = _trtops(project, WRITING_COMMANDS[name], read_only=True)
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert "cannot be written" in errors[0] and str(project / "cache") in errors[0]
    assert "hint:" in result.stderr
    assert _snapshot(project / "cache") == before


def test_a_file_where_the_cache_directory_should_be_is_one_upfront_error(tmp_path, monkeypatch, capsys):
    """The same check on a condition every machine (and root) has."""
    make_conv_model(tmp_path / "models" / "conv.onnx", input_shape=(1, 3, "H", "W"))
    (tmp_path / "demo.yaml").write_text(MANIFEST)
    (tmp_path / "cache").write_text("not a directory")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TRTOPS_CACHE", raising=False)
    for argv in (["apply", "demo.yaml"], ["gc", "demo.yaml", *H100_FLAGS], ["cache", "verify", "--delete"],
                 ["verify", "demo.yaml"]):
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert err.count("error:") == 1 and "cannot be written" in err, err
    assert (tmp_path / "cache").read_text() == "not a directory"
