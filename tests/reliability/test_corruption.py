"""Damaged cache entries are detected by their sha256 and repaired by building or pulling
them again: `trtops cache verify` names every corrupt (engine or file bytes differ from
meta.json, unreadable meta.json) and partial (no meta.json) entry and exits 1; `--delete`
removes them; the next `apply` rebuilds exactly those, the next `pull` fetches exactly
those. A corrupt local entry is never pushed.

That a corrupt engine is never deserialized or handed out meanwhile (`verify`, `emit`, the
emitted loader) is in tests/security/test_integrity.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from apply_helpers import make_project
from rel_helpers import base_env, check_cache, run_trtops
from remote_helpers import H100, TRT, add_entry

from trtops.cache.local import LocalStore

pytest.importorskip("onnxruntime")
pytest.importorskip("polygraphy")


def flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-7])


def verify_json(project: Path, env: dict, *extra: str) -> tuple[int, dict]:
    result = run_trtops(["cache", "verify", "--json", *extra], project, env)
    return result.returncode, json.loads(result.stdout)


def test_corrupt_and_partial_entries_are_found_removed_and_rebuilt(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    env = base_env(TRTOPS_FAKE_LOG=str(project / "builds.log"))
    first = run_trtops(["apply", "--no-emit", "--json"], project, env)
    assert first.returncode == 0, first.stderr
    keys = {e["id"]: e["key"] for e in json.loads(first.stdout)["engines"] if e["key"]}
    store = LocalStore(project / "cache")
    flip_byte(store.entry_dir(keys["demo/conv/fp32/lab"]) / "engine.plan")
    truncate(store.entry_dir(keys["demo/conv/fp16/lab"]) / "build.log")
    (store.entry_dir(keys["demo/heavy/fp32/lab"]) / "meta.json").write_text("{ damaged")

    code, report = verify_json(project, env)
    assert code == 1
    problems = {item["key"]: item["problem"] for item in report["corrupt"]}
    assert "engine.plan sha256" in problems[keys["demo/conv/fp32/lab"]]
    assert "build.log has" in problems[keys["demo/conv/fp16/lab"]]
    damaged = keys["demo/heavy/fp32/lab"]
    assert "not valid JSON" in problems[damaged], report

    code, report = verify_json(project, env, "--delete")
    assert code == 1 and report["deleted"]
    code, report = verify_json(project, env)
    assert code == 0 and report["corrupt"] == [] and report["partial"] == []

    (project / "builds.log").unlink()
    again = run_trtops(["apply", "--no-emit", "--json"], project, env)
    assert again.returncode == 0, again.stderr
    rebuilt = sorted((project / "builds.log").read_text().split())
    assert rebuilt == ["demo/conv/fp16/lab", "demo/conv/fp32/lab", "demo/heavy/fp32/lab"]
    assert check_cache(store).ok and len(list(store.list_keys())) == 3


def test_a_partial_entry_is_reported_and_replaced_by_the_next_build(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    env = base_env(TRTOPS_FAKE_LOG=str(project / "builds.log"))
    plan = run_trtops(["plan", "--json", "--tensorrt", "8.6.0", "--gpu", "NVIDIA H200",
                       "--compute-capability", "9.0"], project, env)
    key = next(a["key"] for a in json.loads(plan.stdout)["actions"] if a["id"] == "demo/conv/fp32/lab")
    store = LocalStore(project / "cache")
    partial = store.entry_dir(key)
    partial.mkdir(parents=True)
    (partial / "engine.plan").write_bytes(b"half an engine")  # e.g. an interrupted rsync
    code, report = verify_json(project, env)
    assert code == 1 and report["partial"] == [key]
    applied = run_trtops(["apply", "--no-emit"], project, env)
    assert applied.returncode == 0, applied.stderr
    assert check_cache(store).ok and store.has_entry(key)
    assert store.read_file(key, "engine.plan") != b"half an engine"


def test_a_corrupt_local_entry_is_pulled_again_and_never_pushed(tmp_path: Path, s3_url: str) -> None:
    seed = LocalStore(tmp_path / "seed")
    keys = [add_entry(seed, name, size=size, seed=i)[0].key
            for i, (name, size) in enumerate((("a", 4096), ("b", 1 << 20)))]
    env = base_env()
    pushed = run_trtops(["push", "--remote", s3_url, "--cache", str(seed.root)], tmp_path, env)
    assert pushed.returncode == 0, pushed.stderr
    node = tmp_path / "node"
    pull = ["pull", "--remote", s3_url, "--cache", str(node), "--gpu", H100[0],
            "--compute-capability", H100[1], "--tensorrt", TRT]
    assert run_trtops(pull, tmp_path, env).returncode == 0
    store = LocalStore(node)
    flip_byte(store.entry_dir(keys[1]) / "engine.plan")

    # Pushing it elsewhere is refused: corruption does not spread.
    other = s3_url.replace("?", "-other?", 1)
    refused = run_trtops(["push", "--remote", other, "--cache", str(node), keys[1][:12]], tmp_path, env)
    assert refused.returncode == 1 and "does not match its recorded sha256" in refused.stdout + refused.stderr
    assert "Traceback" not in refused.stderr

    found = run_trtops(["cache", "verify", "--cache", str(node), "--delete"], tmp_path, env)
    assert found.returncode == 1 and f"corrupt {keys[1]}" in found.stdout
    again = run_trtops(pull, tmp_path, env)
    assert again.returncode == 0, again.stderr
    assert "pulled 1 entries" in again.stderr
    assert store.read_file(keys[1], "engine.plan") == seed.read_file(keys[1], "engine.plan")
    assert check_cache(store).ok
