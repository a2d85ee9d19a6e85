"""The lockfile against the real S3 server: gc after pull keeps pulled entries, remote gc
needs a scope and keeps exactly what the locks name, `pull --locked` reproduces the locked
engines and refuses a tampered one (the directory-remote versions: tests/func/test_lock.py).
"""

from __future__ import annotations

import hashlib
import json
import re

import pytest
from lock_helpers import (
    H100,
    H100_SIG,
    L4,
    L4_SIG,
    build_everything,
    flags,
    lock_file,
    lock_project,
    plan_for,
    publish_built,
    run,
)

from trtops.cache.local import LocalStore
from trtops.cache.store import ENGINE_FILE


@pytest.fixture
def project(tmp_path, monkeypatch):
    return lock_project(tmp_path, monkeypatch)


@pytest.fixture
def released(project, s3_store, s3_url, capsys):
    """H100 and L4 engines on S3 and a lock of them."""
    built = build_everything(capsys, project, s3_store)
    code, _, err = run(capsys, "lock", "demo.yaml", "--remote", s3_url)
    assert code == 0, err
    return built


def test_gc_after_pull_from_s3_keeps_every_pulled_entry(project, s3_store, s3_url, released, capsys):
    (project / "demo.yaml").unlink()  # a fleet node has no manifests
    code, _, err = run(capsys, "pull", "--remote", s3_url, "--cache", "node", *flags(L4))
    assert code == 0, err
    node = LocalStore(project / "node")
    pulled = set(node.list_keys())
    assert pulled == {e["key"] for e in lock_file(project, L4_SIG)["engines"].values()}
    code, out, _ = run(capsys, "gc", "--cache", "node")
    assert code == 0 and "Removed 0 entries" in out
    assert set(node.list_keys()) == pulled


def test_remote_gc_from_a_cpu_runner_keeps_other_platforms_engines(project, s3_store, s3_url,
                                                                    released, capsys):
    make_conv_model_weights_stale(project)
    stale = [a for a in plan_for(capsys, H100).actions if a.key is not None][0]
    publish_built(s3_store, stale, H100)
    before = set(s3_store.list_keys())
    assert len(before) == 5
    # The CPU runner of the issue: no TensorRT, no GPU, manifests present. No scope: refused.
    code, _, err = run(capsys, "gc", "--remote", s3_url, "--dry-run")
    assert code == 1 and "without a scope" in err
    code, _, err = run(capsys, "gc", "--cache", s3_url, "demo.yaml")
    assert code == 1 and "without a scope" in err
    assert set(s3_store.list_keys()) == before

    code, out, err = run(capsys, "gc", "--remote", s3_url, "--keep-lock", "trtops.lock",
                         "--dry-run", "--json")
    assert code == 0, err
    assert [r["engine"] for r in json.loads(out)["removed"]] == [stale.id]
    assert set(s3_store.list_keys()) == before
    code, out, err = run(capsys, "gc", "--remote", s3_url, "--keep-lock",
                         f"trtops.lock/{H100_SIG}.json", f"trtops.lock/{L4_SIG}.json")
    assert code == 0, err
    assert re.search(rf"^gc: removed {stale.id} on {H100_SIG} \({stale.key.key[:12]}, ", err, re.M)
    assert "Removed 1 entry" in out and "4 locked" in out
    locked = {e["key"] for sig in (H100_SIG, L4_SIG) for e in lock_file(project, sig)["engines"].values()}
    assert set(s3_store.list_keys()) == locked


def make_conv_model_weights_stale(project) -> None:
    weights = project / "models" / "conv.onnx.data"
    weights.write_bytes(bytes(b ^ 0x33 for b in weights.read_bytes()))


def test_pull_locked_from_s3_is_byte_for_byte_and_refuses_tampering(project, s3_store, s3_url,
                                                                      released, capsys):
    code, _, err = run(capsys, "pull", "--remote", s3_url, "--cache", "node", "--locked",
                       *flags(H100))
    assert code == 0, err
    node = LocalStore(project / "node")
    for spec_id, entry in lock_file(project, H100_SIG)["engines"].items():
        data = node.read_file(entry["key"], ENGINE_FILE)
        assert data == released[H100_SIG][spec_id]
        assert hashlib.sha256(data).hexdigest() == entry["engine"]["sha256"]

    # Someone with write access replaces an L4 engine and its meta.json together.
    key = lock_file(project, L4_SIG)["engines"]["demo/conv/fp32/l4"]["key"]
    meta = s3_store.read_meta(key)
    evil = b"evil" * 64
    s3_store.delete_entry(key)
    meta["engine_sha256"], meta["engine_size"] = hashlib.sha256(evil).hexdigest(), len(evil)
    meta["files"] = {ENGINE_FILE: {"sha256": meta["engine_sha256"], "size": len(evil)}}
    s3_store.put_entry(key, {ENGINE_FILE: evil}, meta)
    code, _, err = run(capsys, "pull", "--remote", s3_url, "--cache", "l4-node", "--locked",
                       *flags(L4))
    assert code == 1
    assert "demo/conv/fp32/l4" in err and "not the locked one" in err
    assert list(LocalStore(project / "l4-node").list_keys()) == []
