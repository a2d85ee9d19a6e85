"""`trtops status`, `trtops gc` and `trtops cache verify` on real caches in temp dirs."""

from __future__ import annotations

import json
import os
import re
import time

import pytest
from helpers import make_conv_model

from trtops.cache.entries import publish_entry
from trtops.cache.local import LocalStore
from trtops.cache.store import BUILD_LOG_FILE, ENGINE_FILE
from trtops.cli import main
from trtops.keys.canonical import sha256_json
from trtops.keys.engine_key import EngineKey, key_components
from trtops.plan import Plan

H100_FLAGS = ["--tensorrt", "10.13.3.9", "--gpu", "NVIDIA H100 80GB HBM3", "--compute-capability", "9.0"]

MANIFEST = """\
version: 1
targets:
  h100: {gpu: "NVIDIA H100*"}
models:
  - name: conv
    source: models/conv.onnx
    precisions: [fp32, fp16, tf32]
    profiles:
      - input: {min: [1, 3, 32, 32], opt: [4, 3, 64, 64], max: [8, 3, 128, 128]}
"""


@pytest.fixture
def project(tmp_path, monkeypatch):
    make_conv_model(tmp_path / "models" / "conv.onnx")
    (tmp_path / "demo.yaml").write_text(MANIFEST)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TRTOPS_CACHE", raising=False)
    return tmp_path


def run(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def current_plan(capsys) -> Plan:
    code, out, err = run(capsys, "plan", "demo.yaml", "--json", *H100_FLAGS)
    assert code == 0, err
    return Plan.from_json(json.loads(out))


def orphan_key(label: str) -> EngineKey:
    components = key_components(model_digest=sha256_json(label), build={"precision": "fp16"},
                                tensorrt="10.13.3.9", gpu="cc9.0-nvidia-h100-80gb-hbm3")
    return EngineKey(sha256_json(components), components, {})


def publish(store: LocalStore, action, state: str | None, payload: bytes = b"engine bytes " * 100) -> None:
    accuracy = None if state is None else {"state": state, "summary": f"median abs err 2e-3 <= 1e-2 ({state})"}
    publish_entry(store, action.key, action.id, {ENGINE_FILE: payload, BUILD_LOG_FILE: b"log"},
                  accuracy=accuracy, build_seconds=3.0)


# --------------------------------------------------------------------------- status


def test_status_of_an_empty_cache(project, capsys):
    code, out, _ = run(capsys, "status", "--cache", "empty", "demo.yaml")
    assert code == 0
    assert re.search(r"demo/conv/fp32/h100 +- +not built", out)
    (project / "demo.yaml").unlink()
    code, out, _ = run(capsys, "status", "--cache", "empty")
    assert "No engines" in out


def test_status_lists_engines(project, capsys):
    plan = current_plan(capsys)
    store = LocalStore(project / "cache")
    fp32, fp16, _ = plan.actions
    publish(store, fp32, "accepted")
    publish(store, fp16, "rejected")
    code, out, _ = run(capsys, "status", "demo.yaml")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["ENGINE", "KEY", "STATE", "SIZE", "AGE", "PERF", "ACCURACY"]
    assert re.search(rf"demo/conv/fp32/h100 +{fp32.key.key[:12]} +accepted +1.27 KiB +\d+s +- +median abs err 2e-3", out)
    assert re.search(rf"demo/conv/fp16/h100 +{fp16.key.key[:12]} +rejected ", out)
    assert re.search(r"demo/conv/tf32/h100 +- +not built", out)
    code, out, _ = run(capsys, "status", "demo.yaml", "--json")
    rows = {r["engine"]: r for r in json.loads(out)["engines"]}
    assert rows["demo/conv/fp32/h100"]["size"] == 1300
    assert rows["demo/conv/fp32/h100"]["age_seconds"] <= 120
    assert rows["demo/conv/tf32/h100"]["state"] == "not built"


def test_status_shows_missing_entries_and_unreferenced(project, capsys):
    plan = current_plan(capsys)
    store = LocalStore(project / "cache")
    publish(store, plan.actions[0], None)
    publish_entry(store, orphan_key("orphan"), "x/y/fp16/z", {ENGINE_FILE: b"o"}, write_ref=False)
    store.write_ref("old/model/fp16/h100", {"key": orphan_key("gone").key})
    _, out, _ = run(capsys, "status")
    assert re.search(r"demo/conv/fp32/h100 +[0-9a-f]{12} +unverified", out)
    assert re.search(r"old/model/fp16/h100 +[0-9a-f]{12} +missing", out)
    assert "1 unreferenced entry (`trtops gc` removes them)" in out


# --------------------------------------------------------------------------- gc


def test_gc_removes_only_unused_entries(project, capsys):
    plan = current_plan(capsys)
    store = LocalStore(project / "cache")
    fp32, fp16, tf32 = plan.actions
    publish(store, fp32, "accepted")
    publish(store, fp16, "accepted")
    publish_entry(store, tf32.key, tf32.id, {ENGINE_FILE: b"current, no ref"}, write_ref=False)
    orphan = orphan_key("orphan")
    publish_entry(store, orphan, "old/model/fp16/h100", {ENGINE_FILE: b"o" * 2048}, write_ref=False)
    stale = orphan_key("stale")
    publish_entry(store, stale, "old/model/fp32/h100", {ENGINE_FILE: b"s"})
    store.write_ref("old/model/fp32/h100", {"key": fp32.key.key})  # the ref moved on

    code, out, err = run(capsys, "gc", "demo.yaml", *H100_FLAGS, "--dry-run")
    assert code == 0
    # Logged on stderr by engine name (and key prefix), not as bare keys.
    assert f"gc: would remove old/model/fp16/h100 ({orphan.key[:12]}, 2 KiB)" in err
    assert f"gc: would remove old/model/fp32/h100 ({stale.key[:12]}, 1 B)" in err
    assert "Would remove 2 entries" in out
    assert store.has_entry(orphan.key)

    code, out, _ = run(capsys, "gc", "demo.yaml", *H100_FLAGS)
    assert code == 0
    assert "Removed 2 entries" in out
    assert set(store.list_keys()) == {fp32.key.key, fp16.key.key, tf32.key.key}


def test_gc_without_manifests_keeps_referenced(project, capsys):
    plan = current_plan(capsys)
    store = LocalStore(project / "cache")
    publish(store, plan.actions[0], "accepted")
    publish_entry(store, plan.actions[1].key, plan.actions[1].id, {ENGINE_FILE: b"x"}, write_ref=False)
    (project / "demo.yaml").unlink()
    code, out, _ = run(capsys, "gc", "--json")
    assert code == 0
    result = json.loads(out)
    assert [r["key"] for r in result["removed"]] == [plan.actions[1].key.key]
    assert list(store.list_keys()) == [plan.actions[0].key.key]


def test_gc_cleans_old_partial_entries_and_leftovers(project, capsys):
    store = LocalStore(project / "cache")
    partial = orphan_key("partial").key
    store.entry_dir(partial).mkdir(parents=True)
    (store.entry_dir(partial) / ENGINE_FILE).write_bytes(b"half")
    fresh = orphan_key("fresh").key
    store.entry_dir(fresh).mkdir(parents=True)
    store.tmp_dir.mkdir(parents=True, exist_ok=True)
    leftover = store.tmp_dir / "put-abc.1.def"
    leftover.mkdir()
    past = time.time() - 7200
    os.utime(store.entry_dir(partial), (past, past))
    os.utime(leftover, (past, past))
    code, out, _ = run(capsys, "gc", "--json")
    result = json.loads(out)
    assert result["partial"] == [partial] and result["leftovers"] == ["put-abc.1.def"]
    assert not store.entry_dir(partial).exists()
    assert store.entry_dir(fresh).exists()  # may be a write in progress


# --------------------------------------------------------------------------- cache verify


def test_cache_verify(project, capsys):
    plan = current_plan(capsys)
    store = LocalStore(project / "cache")
    for action in plan.actions:
        publish(store, action, "accepted", payload=f"engine {action.id}".encode() * 50)
    code, out, _ = run(capsys, "cache", "verify")
    assert code == 0
    assert "Checked 3 entries: 3 ok, 0 corrupt, 0 partial." in out

    fp32, fp16, tf32 = (a.key.key for a in plan.actions)
    engine = store.entry_dir(fp32) / ENGINE_FILE
    data = bytearray(engine.read_bytes())
    data[10] ^= 0xFF  # one flipped bit-pattern, same size
    engine.write_bytes(bytes(data))
    (store.entry_dir(fp16) / BUILD_LOG_FILE).write_bytes(b"tampered log")
    partial = orphan_key("partial").key
    store.entry_dir(partial).mkdir(parents=True)
    code, out, _ = run(capsys, "cache", "verify")
    assert code == 1
    assert re.search(rf"corrupt {fp32}: engine.plan sha256 is [0-9a-f]{{12}}\.\.\., meta.json says", out)
    assert f"corrupt {fp16}: build.log has 12 bytes, meta.json says 3" in out
    assert f"partial {partial}: no meta.json" in out
    assert "Checked 3 entries: 1 ok, 2 corrupt, 1 partial." in out

    code, out, _ = run(capsys, "cache", "verify", "--json", "--delete")
    assert code == 1
    assert json.loads(out)["deleted"] is True
    code, out, _ = run(capsys, "cache", "verify")
    assert code == 0 and "Checked 1 entry: 1 ok" in out
    assert list(store.list_keys()) == [tf32]


def test_cache_verify_damaged_meta(project, capsys):
    store = LocalStore(project / "cache")
    key = orphan_key("meta")
    publish_entry(store, key, "m/x/fp16/t", {ENGINE_FILE: b"e"})
    (store.entry_dir(key.key) / "meta.json").write_text("{")
    code, out, _ = run(capsys, "cache", "verify")
    assert code == 1 and "is not valid JSON" in out


def test_cache_without_subcommand(project, capsys):
    code, _, err = run(capsys, "cache")
    assert code == 1 and "verify" in err


# --------------------------------------------------------------------------- gc of prepared/

H100_TRT11 = ["--tensorrt", "11.0.0", "--gpu", "NVIDIA H100 80GB HBM3", "--compute-capability", "9.0"]


def prepared_dirs(project) -> set[str]:
    base = project / "cache" / "prepared"
    return {p.name for p in base.iterdir()} if base.is_dir() else set()


def fake_prepared(project, digest: str, *, age: float = 0.0) -> None:
    path = project / "cache" / "prepared" / digest
    path.mkdir(parents=True)
    (path / "model.onnx").write_bytes(b"m" * 1024)
    if age:
        past = time.time() - age
        os.utime(path, (past, past))


def test_gc_prunes_prepared_models_nothing_builds_from(project, capsys):
    from trtops.cache.pins import pin_path, pinned

    code, out, err = run(capsys, "prepare", "demo.yaml", *H100_TRT11)
    assert code == 0, err
    assert "demo/conv [fp16 cast]: " in out  # TensorRT 11: the fp16 engine's model is cast
    (current,) = prepared_dirs(project)
    orphan, busy, young = "e" * 64, "f" * 64, "d" * 64
    fake_prepared(project, orphan, age=7200)
    fake_prepared(project, busy, age=7200)
    fake_prepared(project, young)
    cache = project / "cache"
    with pinned(cache, [busy]):  # an apply building from it
        code, out, err = run(capsys, "gc", "demo.yaml", *H100_TRT11, "--dry-run", "--json")
        assert code == 0, err
        result = json.loads(out)
        assert sorted(r["digest"] for r in result["prepared_removed"]) == [young, orphan]
        assert result["prepared_in_use"] == 1 and result["prepared_kept"] == 1
        assert f"gc: would remove prepared model {orphan[:12]} of ? (1 KiB)" in err
        assert prepared_dirs(project) == {current, orphan, busy, young}  # a dry run removes nothing

        code, out, err = run(capsys, "gc", "demo.yaml", *H100_TRT11, "--older-than", "1h")
        assert code == 0, err
        assert "1 prepared model (1 KiB)" in out and "1 prepared in use" in out
        assert prepared_dirs(project) == {current, busy, young}
        assert not pin_path(cache, orphan).exists()
    # Unpinned now, and no engine of the manifests is built from it.
    code, out, err = run(capsys, "gc", "demo.yaml", *H100_TRT11)
    assert code == 0, err
    assert prepared_dirs(project) == {current}
    # On 10.x nothing is cast: the current manifests keep no prepared model.
    code, out, err = run(capsys, "gc", "demo.yaml", *H100_FLAGS)
    assert code == 0 and prepared_dirs(project) == set()


def test_gc_keeps_the_prepared_models_of_kept_entries(project, capsys):
    code, out, err = run(capsys, "plan", "demo.yaml", "--json", *H100_TRT11)
    assert code == 0, err
    plan = Plan.from_json(json.loads(out))
    fp16 = next(a for a in plan.actions if a.spec.precision == "fp16")
    assert fp16.key.components["prepare"]["steps"]["cast"] == "fp16"
    code, _, err = run(capsys, "prepare", "demo.yaml", *H100_TRT11)
    assert code == 0, err
    (current,) = prepared_dirs(project)
    store = LocalStore(project / "cache")
    publish(store, fp16, "accepted")  # writes its ref: kept without the manifests
    (project / "demo.yaml").unlink()
    code, out, _ = run(capsys, "gc", "--json")
    assert code == 0 and json.loads(out)["prepared_kept"] == 1
    assert prepared_dirs(project) == {current}
    store.delete_entry(fp16.key.key)
    code, out, _ = run(capsys, "gc", "--json")
    assert code == 0 and [r["digest"] for r in json.loads(out)["prepared_removed"]] == [current]
    assert prepared_dirs(project) == set()
