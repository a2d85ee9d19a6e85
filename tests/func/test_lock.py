"""`trtops lock`, `plan --check-lock`, `pull --locked`, pull refs and scoped `gc`, through
the CLI on real caches, a directory remote and real ONNX models in temp dirs.

Entries are published the way apply publishes them (``publish_entry`` with the building
GPU and TensorRT in meta.json); apply's own lock update is in tests/func/test_apply.py.
"""

from __future__ import annotations

import hashlib
import json
import re

import pytest
from helpers import make_conv_model
from lock_helpers import (
    H100,
    H100_SIG,
    L4,
    L4_SIG,
    MANIFEST,
    TRT,
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


# --------------------------------------------------------------------------- trtops lock


def test_lock_round_trip_is_deterministic_and_complete(project, capsys):
    remote = LocalStore(project / "remote")
    built = build_everything(capsys, project, remote)
    code, out, err = run(capsys, "lock", "demo.yaml", "--remote", str(project / "remote"))
    assert code == 0, err
    assert sorted(p.name for p in (project / "trtops.lock").iterdir()) == sorted([
        f"{H100_SIG}.json", f"{L4_SIG}.json"])
    h100 = lock_file(project, H100_SIG)
    assert h100["format"] == "trtops.lock" and h100["version"] == 1
    assert h100["platform"] == {"signature": H100_SIG, "tensorrt": TRT,
                                "gpu": {"name": H100[0], "compute_capability": "9.0"}}
    assert sorted(h100["engines"]) == ["demo/conv/fp16/h100", "demo/conv/fp32/h100"]
    entry = h100["engines"]["demo/conv/fp16/h100"]
    payload = built[H100_SIG]["demo/conv/fp16/h100"]
    assert entry["engine"] == {"sha256": hashlib.sha256(payload).hexdigest(), "size": len(payload)}
    assert entry["accuracy"] == {"state": "accepted", "summary": "max abs err 1e-3 (accepted)"}
    assert entry["components"]["tensorrt"] == TRT and entry["components"]["build"]["precision"] == "fp16"
    assert entry["components"]["gpu"] == "cc9.0-nvidia-h100-80gb-hbm3"
    assert "model_digest" in entry["components"] and entry["model"]["external_data"]
    assert sorted(lock_file(project, L4_SIG)["engines"]) == ["demo/conv/fp16/l4", "demo/conv/fp32/l4"]
    # Sorted keys, two-space indent, newline at the end: the one encoding.
    text = (project / "trtops.lock" / f"{H100_SIG}.json").read_text()
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"
    # Written again from the same engines: the same bytes, nothing reported as changed.
    before = {p.name: p.read_bytes() for p in (project / "trtops.lock").iterdir()}
    code, out, _ = run(capsys, "lock", "demo.yaml", "--remote", str(project / "remote"))
    assert code == 0 and "locked " not in out
    assert {p.name: p.read_bytes() for p in (project / "trtops.lock").iterdir()} == before
    code, out, _ = run(capsys, "plan", "demo.yaml", "--check-lock")
    assert code == 0 and "matches the manifests (4 engine(s) on 2 platform(s))" in out


def test_lock_before_building_locks_pending_keys(project, capsys):
    code, out, err = run(capsys, "lock", "demo.yaml", *flags(H100))
    assert code == 0, err
    engines = lock_file(project, H100_SIG)["engines"]
    assert {e["engine"] for e in engines.values()} == {None}
    assert "locked demo/conv/fp32/h100 on " + H100_SIG in out and "(pending)" in out
    assert run(capsys, "plan", "demo.yaml", "--check-lock")[0] == 0
    # Built later: `trtops lock` fills in sha256, size and verdict.
    store = LocalStore(project / "cache")
    for action in plan_for(capsys, H100).actions:
        if action.key is not None:
            publish_built(store, action, H100)
    assert run(capsys, "lock", "demo.yaml")[0] == 0
    engines = lock_file(project, H100_SIG)["engines"]
    assert all(e["engine"]["size"] > 0 and e["accuracy"]["state"] == "accepted"
               for e in engines.values())


def test_lock_with_nothing_built_and_no_platform_is_a_clear_error(project, capsys):
    code, _, err = run(capsys, "lock", "demo.yaml")
    assert code == 1 and "nothing to lock" in err and "--platform" in err


def test_lock_leaves_other_manifests_engines_alone(project, capsys):
    store = LocalStore(project / "cache")
    build_everything(capsys, project, store)
    assert run(capsys, "lock", "demo.yaml")[0] == 0
    (project / "other.yaml").write_text(MANIFEST)
    code, _, err = run(capsys, "lock", "other.yaml", *flags(H100))
    assert code == 0, err
    assert sorted(lock_file(project, H100_SIG)["engines"]) == [
        "demo/conv/fp16/h100", "demo/conv/fp32/h100", "other/conv/fp16/h100", "other/conv/fp32/h100"]
    assert lock_file(project, H100_SIG)["engines"]["demo/conv/fp16/h100"]["engine"] is not None


# --------------------------------------------------------------------------- plan --check-lock


@pytest.fixture
def locked(project, capsys):
    """A project whose lock holds built engines for H100 and L4."""
    store = LocalStore(project / "cache")
    build_everything(capsys, project, store)
    assert run(capsys, "lock", "demo.yaml")[0] == 0
    return project


def check(capsys, *extra: str) -> tuple[int, str, str]:
    return run(capsys, "plan", "demo.yaml", "--check-lock", *extra)


def test_check_lock_names_changed_weights(locked, capsys):
    weights = locked / "models" / "conv.onnx.data"
    weights.write_bytes(bytes(b ^ 0x5A for b in weights.read_bytes()))  # same size, new values
    code, out, err = check(capsys)
    assert code == 1
    for engine, sig in (("demo/conv/fp32/h100", H100_SIG), ("demo/conv/fp16/l4", L4_SIG)):
        assert re.search(rf"^{engine} on {sig}: [0-9a-f]{{12}} → [0-9a-f]{{12}}: "
                         r"model weights changed \(conv\.onnx\.data\)$", out, re.M), out
    assert "do not match" in err and "4 engine(s) differ" in err and "trtops lock" in err


def test_check_lock_names_a_changed_build_option(locked, capsys):
    (locked / "demo.yaml").write_text(MANIFEST.replace("precisions:", "workspace: 64MiB\n    precisions:"))
    code, out, _ = check(capsys)
    assert code == 1
    assert re.search(r"^demo/conv/fp16/h100 on .*: build config changed: workspace default → 64 MiB$",
                     out, re.M), out


def test_check_lock_names_a_tensorrt_upgrade(locked, capsys):
    code, out, _ = check(capsys, *flags(L4, "10.14.1.48"))
    assert code == 1
    assert re.search(r"^demo/conv/fp32/l4 on cc8.9-nvidia-l4-trt10.14.1.48: .*"
                     r"TensorRT 10.13.3.9 → 10.14.1.48$", out, re.M), out
    # A target that no longer takes the locked TensorRT: its engines are not built there.
    (locked / "demo.yaml").write_text(MANIFEST.replace('">=10.13,<10.14"', '">=10.14"'))
    code, out, _ = check(capsys)
    assert code == 1
    assert re.search(rf"^demo/conv/fp16/h100 on {H100_SIG}: locked, but the manifests no "
                     r"longer build it there \(.*TensorRT.*\)$", out, re.M), out
    assert "l4" not in out


def test_check_lock_names_precisions_added_and_removed(locked, capsys):
    (locked / "demo.yaml").write_text(MANIFEST.replace("[fp32, fp16]", "[fp32, tf32]"))
    code, out, _ = check(capsys)
    assert code == 1
    assert f"demo/conv/tf32/h100 on {H100_SIG}: not in the lock (a new engine)" in out
    assert f"demo/conv/fp16/h100 on {H100_SIG}: locked, but no longer in the manifests" in out
    assert "fp32" not in out


def test_check_lock_names_a_removed_engine(locked, capsys):
    (locked / "demo.yaml").write_text(MANIFEST.replace("name: conv", "name: conv2"))
    code, out, _ = check(capsys, "--json")
    assert code == 1
    rows = json.loads(out)["engines"]
    assert {(r["engine"], r["kind"]) for r in rows if r["kind"] == "removed"} == {
        (f"demo/conv/{p}/{t}", "removed") for p in ("fp32", "fp16") for t in ("h100", "l4")}


def test_check_lock_of_an_uncovered_platform_and_no_lock(locked, capsys):
    code, out, _ = check(capsys, *flags(("NVIDIA A100-SXM4-80GB", "8.0")))
    assert code == 1 and "the lock has no engines for this platform" in out
    code, _, err = run(capsys, "plan", "demo.yaml", "--check-lock", "--lockfile", "nowhere")
    assert code == 1 and "no lock at nowhere" in err


def test_a_damaged_lock_file_is_an_error_naming_file_and_line(locked, capsys):
    path = locked / "trtops.lock" / f"{H100_SIG}.json"
    lines = path.read_text().splitlines()
    lines[3:3] = ["<<<<<<< HEAD", "=======", ">>>>>>> branch"]
    path.write_text("\n".join(lines) + "\n")
    code, _, err = check(capsys)
    assert code == 1
    assert f"trtops.lock/{H100_SIG}.json:4: column 1: not valid JSON" in err
    assert "conflict markers" in err
    data = lock_file(locked, L4_SIG)
    data["engines"]["demo/conv/fp16/l4"]["key"] = "0" * 64
    path.unlink()
    (locked / "trtops.lock" / f"{L4_SIG}.json").write_text(json.dumps(data))
    code, _, err = check(capsys)
    assert code == 1 and "engines.demo/conv/fp16/l4.components: do not hash to the key" in err


# --------------------------------------------------------------------------- pull --locked


def pull(capsys, gpu, *extra: str) -> tuple[int, str, str]:
    return run(capsys, "pull", "--remote", "remote", "--cache", "node", *flags(gpu), *extra)


@pytest.fixture
def released(project, capsys):
    """Engines of both platforms on a directory remote, and a lock of them."""
    remote = LocalStore(project / "remote")
    built = build_everything(capsys, project, remote)
    assert run(capsys, "lock", "demo.yaml", "--remote", "remote")[0] == 0
    return built


def test_pull_locked_reproduces_the_locked_engines_byte_for_byte(project, released, capsys):
    # A newer build of the same engine lands on the remote after the release was locked.
    newer = plan_for(capsys, H100, "--cache", "other").actions[0]
    code, out, err = pull(capsys, H100, "--locked", "--lockfile", "trtops.lock")
    assert code == 0, err
    node = LocalStore(project / "node")
    locked = lock_file(project, H100_SIG)["engines"]
    assert sorted(node.list_keys()) == sorted(e["key"] for e in locked.values())
    for spec_id, entry in locked.items():
        data = (node.entry_dir(entry["key"]) / ENGINE_FILE).read_bytes()
        assert data == released[H100_SIG][spec_id]
        assert hashlib.sha256(data).hexdigest() == entry["engine"]["sha256"]
    assert newer.id in locked


def test_pull_locked_refuses_a_tampered_remote_engine(project, released, capsys):
    remote = LocalStore(project / "remote")
    key = lock_file(project, H100_SIG)["engines"]["demo/conv/fp16/h100"]["key"]
    # Engine bytes swapped and meta.json rewritten to match them: only the lock knows.
    engine = remote.entry_dir(key) / ENGINE_FILE
    engine.write_bytes(b"evil" * 100)
    meta_path = remote.entry_dir(key) / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["engine_sha256"] = hashlib.sha256(b"evil" * 100).hexdigest()
    meta["engine_size"] = 400
    meta["files"][ENGINE_FILE] = {"sha256": meta["engine_sha256"], "size": 400}
    meta_path.write_text(json.dumps(meta))
    code, _, err = pull(capsys, H100, "--locked")
    assert code == 1
    assert "demo/conv/fp16/h100" in err and "not the locked one" in err
    other = lock_file(project, H100_SIG)["engines"]["demo/conv/fp32/h100"]["key"]
    remote.delete_entry(other)
    code, _, err = pull(capsys, H100, "--locked")
    assert code == 1 and f"demo/conv/fp32/h100 ({other[:12]}): not on the remote" in err
    assert not (project / "node" / "engines").exists() or not list(LocalStore(project / "node").list_keys())


def test_pull_locked_fails_clearly_for_a_platform_the_lock_does_not_cover(project, released, capsys):
    code, _, err = pull(capsys, ("NVIDIA A100-SXM4-80GB", "8.0"), "--locked")
    assert code == 1
    assert "covers no engine for this platform" in err and H100_SIG in err and L4_SIG in err
    code, _, err = pull(capsys, H100, "--locked", "--lockfile", "missing.lock")
    assert code == 1 and "no lock at missing.lock" in err


def test_pull_locked_refuses_pending_engines(project, capsys):
    assert run(capsys, "lock", "demo.yaml", *flags(H100))[0] == 0
    LocalStore(project / "remote").root.mkdir(parents=True, exist_ok=True)
    code, _, err = pull(capsys, H100, "--locked")
    assert code == 1 and "demo/conv/fp16/h100 is pending (not built yet)" in err


# --------------------------------------------------------------------------- gc


def test_gc_after_pull_keeps_every_pulled_entry(project, capsys):
    """The issue's first scenario: pull wrote no refs, so gc wiped the node's engines."""
    remote = LocalStore(project / "remote")
    build_everything(capsys, project, remote)
    (project / "demo.yaml").unlink()  # a fleet node: no manifests
    code, _, err = pull(capsys, H100)
    assert code == 0, err
    node = LocalStore(project / "node")
    pulled = set(node.list_keys())
    assert len(pulled) == 2
    assert {record["key"] for _, record in node.list_refs()} == pulled
    code, out, _ = run(capsys, "gc", "--cache", "node")
    assert code == 0 and "Removed 0 entries" in out
    assert set(node.list_keys()) == pulled
    # --all pulls several entries of one engine: the ref keeps them all.
    code, _, err = pull(capsys, H100, "--all")
    assert code == 0, err
    code, out, _ = run(capsys, "gc", "--cache", "node")
    assert code == 0 and "Removed 0 entries" in out


def test_local_gc_keeps_what_the_lock_names(locked, capsys):
    # No refs at all (published with write_ref=False), no manifest keys for this platform:
    # only the lock keeps the engines.
    store = LocalStore(locked / "cache")
    code, out, err = run(capsys, "gc", "demo.yaml", *flags(("NVIDIA A100-SXM4-80GB", "8.0")))
    assert code == 0, err
    assert "Removed 0 entries" in out and "4 locked" in out
    assert len(list(store.list_keys())) == 4


def test_remote_gc_needs_a_scope_and_keeps_exactly_the_locked_engines(project, released, capsys):
    """The issue's second scenario: gc against a remote from a CPU runner deleted every
    other platform's engines."""
    remote = LocalStore(project / "remote")
    old = plan_for(capsys, L4, "--cache", "x")
    make_conv_model(project / "models" / "conv.onnx", external_data=True, seed=3)
    stale = [a for a in plan_for(capsys, L4).actions if a.key is not None][0]
    publish_built(remote, stale, L4)  # a build of other weights, no lock names it
    before = set(remote.list_keys())
    assert len(before) == 5 and old
    for argv in (["gc", "--remote", "remote"], ["gc", "--remote", "remote", "--dry-run"]):
        code, _, err = run(capsys, *argv)
        assert code == 1 and "without a scope" in err and "--keep-lock" in err
    assert set(remote.list_keys()) == before

    code, out, err = run(capsys, "gc", "--remote", "remote", "--keep-lock", "trtops.lock", "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert [(r["engine"], r["platform"], r["key"]) for r in summary["removed"]] == [
        (stale.id, L4_SIG, stale.key.key)]
    assert summary["locked"] == 4 and summary["remote"] is True
    assert re.search(rf"^gc: removed demo/conv/fp\d+/l4 on {L4_SIG} \({stale.key.key[:12]}, ",
                     err, re.M), err
    assert set(remote.list_keys()) == before - {stale.key.key}


def test_remote_gc_older_than_keeps_recent_entries(project, released, capsys):
    remote = LocalStore(project / "remote")
    before = set(remote.list_keys())
    code, out, err = run(capsys, "gc", "--remote", "remote", "--older-than", "30d")
    assert code == 0, err
    assert "Removed 0 entries" in out and "4 younger than 30d" in out
    assert set(remote.list_keys()) == before
    code, _, err = run(capsys, "gc", "--remote", "remote", "--older-than", "soon")
    assert code == 1 and "'soon' is not a duration" in err
