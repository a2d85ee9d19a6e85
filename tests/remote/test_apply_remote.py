"""`trtops apply --remote`: two machines (two local caches) share one S3 remote. The first
builds and pushes; the second downloads instead of building; `--lock` leases work; a
rejected engine never reaches the remote. The builder is the toolchain test double; the S3
server is real (SeaweedFS on 127.0.0.1)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from apply_helpers import builds, make_project, trtops

pytest.importorskip("onnxruntime")
pytest.importorskip("polygraphy")


def machine(tmp_path: Path, name: str) -> Path:
    return make_project(tmp_path / name)


def test_second_machine_downloads_instead_of_building(tmp_path, s3_url, s3_store):
    a = machine(tmp_path, "a")
    first = trtops(a, "apply", "--remote", s3_url, "--json")
    assert first.returncode == 0, first.stderr
    built = [e for e in json.loads(first.stdout)["engines"] if e["status"] == "built"]
    assert len(built) == 3
    for engine in built:
        assert s3_store.has_entry(engine["key"])
    b = machine(tmp_path, "b")
    second = trtops(b, "apply", "--remote", s3_url, "--lock", "--json")
    assert second.returncode == 0, second.stderr
    statuses = {e["id"]: e["status"] for e in json.loads(second.stdout)["engines"]}
    assert statuses["demo/conv/fp32/lab"] == "downloaded"
    assert statuses["demo/heavy/fp32/lab"] == "downloaded"
    assert builds(b) == []
    # what was downloaded is a complete, verified local entry with loaders emitted
    assert (b / "out" / "python").exists()
    check = trtops(b, "cache", "verify")
    assert check.returncode == 0, check.stdout + check.stderr


def test_rejected_engines_never_reach_the_remote(tmp_path, s3_url, s3_store):
    a = machine(tmp_path, "a")
    result = trtops(a, "apply", "--remote", s3_url, "--keep-going", "--json",
                    env={"TRTOPS_FAKE_PERTURB": "conv"})
    assert result.returncode == 4
    engines = {e["id"]: e for e in json.loads(result.stdout)["engines"]}
    assert not s3_store.has_entry(engines["demo/conv/fp32/lab"]["key"])
    assert s3_store.has_entry(engines["demo/heavy/fp32/lab"]["key"])
    shutil.rmtree(a / "out", ignore_errors=True)
