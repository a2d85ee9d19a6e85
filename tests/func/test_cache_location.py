"""Where the cache is: the project's, not the current directory's (docs: README "Cache
location"). --cache and TRTOPS_CACHE win; then trtops.toml or [tool.trtops] in
pyproject.toml, the nearest one from the manifests (else the current directory) upward;
else the directory holding manifests/ (or the manifests' own directory). `plan` writes
nothing to any cache: its digest memo lives in the user's cache directory."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from helpers import make_conv_model

from trtops.cli import main

H100_FLAGS = ["--tensorrt", "10.13.3.9", "--gpu", "NVIDIA H100 80GB HBM3", "--compute-capability", "9.0"]
MANIFEST = """\
version: 1
targets:
  h100: {gpu: "NVIDIA H100*"}
models:
  - name: conv
    source: models/conv.onnx
    precisions: [fp32]
    profiles:
      - input: {min: [1, 3, 8, 8], opt: [1, 3, 16, 16], max: [1, 3, 32, 32]}
"""


@pytest.fixture
def tree(tmp_path, monkeypatch):
    """tmp/proj/manifests/demo.yaml (+ its model), run from tmp/elsewhere."""
    manifests = tmp_path / "proj" / "manifests"
    make_conv_model(manifests / "models" / "conv.onnx", input_shape=(1, 3, "H", "W"))
    (manifests / "demo.yaml").write_text(MANIFEST)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    monkeypatch.delenv("TRTOPS_CACHE", raising=False)
    return tmp_path


def cache_of(capsys, *argv: str) -> str:
    capsys.readouterr()
    code = main(["status", "--json", *argv])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)["cache"]


def test_without_a_project_file_the_cache_is_beside_manifests(tree, capsys):
    proj = tree / "proj"
    assert cache_of(capsys, str(proj / "manifests")) == str(proj / "cache")
    assert cache_of(capsys, str(proj / "manifests" / "demo.yaml")) == str(proj / "cache")
    # manifests in a directory of another name: that directory is the project
    (proj / "demo.yaml").write_text(MANIFEST.replace("models/", "manifests/models/"))
    assert cache_of(capsys, str(proj / "demo.yaml")) == str(proj / "cache")
    # no manifests given: the current directory
    assert cache_of(capsys) == str(tree / "elsewhere" / "cache")


def test_trtops_toml_marks_the_project_and_may_move_the_cache(tree, capsys):
    proj = tree / "proj"
    (proj / "trtops.toml").write_text("")
    sub = proj / "manifests" / "team"
    make_conv_model(sub / "models" / "conv.onnx", input_shape=(1, 3, "H", "W"))
    (sub / "more.yaml").write_text(MANIFEST)
    assert cache_of(capsys, str(sub / "more.yaml")) == str(proj / "cache")
    (proj / "trtops.toml").write_text('cache = "build/engines"\n')
    assert cache_of(capsys, str(sub)) == str(proj / "build" / "engines")
    os.chdir(sub)  # from inside the project, without paths
    assert cache_of(capsys) == str(proj / "build" / "engines")


def test_pyproject_tool_trtops_table_marks_the_project(tree, capsys):
    proj = tree / "proj"
    (proj / "pyproject.toml").write_text('[project]\nname = "x"\n\n[tool.trtops]\ncache = "../shared-cache"\n')
    assert cache_of(capsys, str(proj / "manifests")) == str(proj / ".." / "shared-cache")
    # a pyproject.toml without [tool.trtops] is not a trtops project: the search goes on
    (proj / "manifests" / "pyproject.toml").write_text('[project]\nname = "y"\n')
    assert cache_of(capsys, str(proj / "manifests")) == str(proj / ".." / "shared-cache")


def test_cache_flag_and_environment_win(tree, capsys, monkeypatch):
    proj = tree / "proj"
    (proj / "trtops.toml").write_text('cache = "from-file"\n')
    monkeypatch.setenv("TRTOPS_CACHE", str(tree / "from-env"))
    assert cache_of(capsys, str(proj / "manifests")) == str(tree / "from-env")
    assert cache_of(capsys, "--cache", str(tree / "from-flag"), str(proj / "manifests")) == str(tree / "from-flag")


@pytest.mark.parametrize("text, phrase", [
    ("cache = ", "not valid TOML"),
    ('cahce = "x"\n', "unknown trtops setting 'cahce'"),
    ("cache = 3\n", "cache: must be a non-empty string"),
])
def test_a_bad_project_file_is_a_user_error_naming_it(tree, capsys, text, phrase):
    (tree / "proj" / "trtops.toml").write_text(text)
    code = main(["plan", str(tree / "proj" / "manifests"), *H100_FLAGS])
    err = capsys.readouterr().err
    assert code == 1
    assert str(tree / "proj" / "trtops.toml") in err and phrase in err


def test_plan_writes_nothing_to_the_cache_nor_where_it_runs(tree, capsys, monkeypatch):
    proj = tree / "proj"
    monkeypatch.chdir("/")
    existed = Path("/cache").exists()
    assert main(["plan", str(proj / "manifests"), *H100_FLAGS]) == 0, capsys.readouterr().err
    assert main(["plan", str(proj / "manifests"), "--json"]) == 0  # this machine too
    assert Path("/cache").exists() == existed
    assert not (proj / "cache").exists()
    memo = Path(os.environ["XDG_CACHE_HOME"]) / "trtops" / "digests.json"
    assert str(proj / "manifests" / "models" / "conv.onnx") in memo.read_text()


def test_plan_works_when_the_user_cache_directory_cannot_be_written(tree, capsys, monkeypatch):
    blocker = tree / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))  # trtops/ cannot be made below a file
    assert main(["plan", str(tree / "proj" / "manifests"), *H100_FLAGS]) == 0, capsys.readouterr().err
