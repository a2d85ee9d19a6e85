"""Where `emit --dest` / `apply --emit-dir` / `pull --dest` write: only below the directory
given, under names built from validated identifiers; links planted in the destination are
replaced, never written through; cache refs that name no valid key are skipped.

Hostile names from a remote (spec ids, file names in meta.json) are in
tests/security/test_hostile_remote.py; names in manifests in
tests/security/test_adversarial_manifests.py.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from apply_helpers import make_project, trtops

pytest.importorskip("onnxruntime")
pytest.importorskip("polygraphy")


def files_under(path: Path) -> set[str]:
    return {str(p.relative_to(path)) for p in path.rglob("*") if p.is_file() or p.is_symlink()}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    project = make_project(tmp_path / "project")
    result = trtops(project, "apply", "--no-emit")
    assert result.returncode == 0, result.stderr
    return project


def test_links_planted_in_the_destination_are_replaced_not_followed(project: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    dest = project / "deploy"
    planted = [dest / "python" / "conv_fp32_lab.plan", dest / "python" / "conv_fp32_lab.py",
               dest / "triton" / "conv_fp16" / "1" / "model.plan",
               dest / "triton" / "conv_fp16" / "config.pbtxt"]
    for link in planted:
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(victim, link)
    result = trtops(project, "emit", "--dest", "deploy", "--loaders", "python,triton", "--target", "lab")
    assert result.returncode == 0, result.stdout + result.stderr
    assert victim.read_text() == "precious\n"
    for path in planted:
        assert path.is_file() and not path.is_symlink(), path


def test_a_dest_with_dotdot_writes_below_where_it_points_only(project: Path, tmp_path: Path) -> None:
    before = files_under(tmp_path)
    result = trtops(project, "emit", "--dest", "sub/../deploy", "--loaders", "python,triton",
                    "--target", "lab")
    assert result.returncode == 0, result.stdout + result.stderr
    new = files_under(tmp_path) - before
    assert new and all(name.startswith("project/deploy/") for name in new), sorted(new)


def test_refs_naming_no_valid_key_are_skipped(project: Path, tmp_path: Path) -> None:
    """Without manifests, emit follows the cache's refs: a ref record whose key is a path
    (a damaged or tampered cache) is skipped with a reason, and nothing is written for it."""
    ref = project / "cache" / "refs" / "demo" / "conv" / "fp32" / "lab.json"
    record = json.loads(ref.read_text())
    record["key"] = "../../../../../../pwned"
    ref.write_text(json.dumps(record))
    elsewhere = tmp_path / "elsewhere"  # no manifests/ here: emit uses the refs
    elsewhere.mkdir()
    result = trtops(elsewhere, "emit", "--cache", str(project / "cache"), "--dest", "deploy", "--json")
    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads(result.stdout)
    skipped = {s["engine"]: s["reason"] for s in report["skipped"]}
    assert "names no valid engine key" in skipped["demo/conv/fp32/lab"]
    assert {w["engine"] for w in report["written"]} == {"demo/conv/fp16/lab", "demo/heavy/fp32/lab"}
    assert not list(tmp_path.rglob("*pwned*"))
    assert "Traceback" not in result.stderr
