"""Several trtops processes on one local cache at once, some of them killed.

(8 concurrent applies on one cache building each engine exactly once is
tests/func/test_apply.py::test_concurrent_applies_on_one_cache_build_each_engine_once.)
"""

from __future__ import annotations

import json
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from apply_helpers import make_project
from rel_helpers import base_env, check_cache, check_emitted, engine_digests, run_trtops
from remote_helpers import H100, TRT, add_entry

from trtops.cache.local import LocalStore

MiB = 1 << 20


def test_concurrent_applies_with_some_killed_build_each_engine_once_among_survivors(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("polygraphy")
    project = make_project(tmp_path)
    rng = random.Random(11)
    runs = [(i, rng.uniform(0.3, 0.9) if i % 2 else None) for i in range(6)]

    def one(item: tuple[int, float | None]):
        index, kill_after = item
        env = base_env(TRTOPS_FAKE_LOG=str(project / f"builds-{index}.log"))
        return index, run_trtops(["apply", "--no-emit", "--json"], project, env, kill_after=kill_after)

    with ThreadPoolExecutor(6) as pool:
        results = dict(pool.map(one, runs))
    survivors = [i for i, r in results.items() if r.returncode == 0]
    assert all(r.returncode in (0, -9) for r in results.values()), {i: r.stderr[-300:] for i, r in results.items()}
    assert survivors, "every apply was killed"
    built_by = {}
    for index in survivors:
        log = project / f"builds-{index}.log"
        for engine in (log.read_text().split() if log.exists() else []):
            assert engine not in built_by, f"{engine} built by apply {built_by[engine]} and {index}"
            built_by[engine] = index
    store = LocalStore(project / "cache")
    report = check_cache(store)
    assert report.ok and len(report.complete) == 3, report
    final = run_trtops(["apply", "--no-emit", "--json"], project, base_env())
    assert final.returncode == 0
    assert {e["status"] for e in json.loads(final.stdout)["engines"]} <= {"reused", "skipped"}


def test_concurrent_pulls_into_one_cache(tmp_path: Path, s3_url: str) -> None:
    seed = LocalStore(tmp_path / "seed")
    keys = {add_entry(seed, name, size=size, seed=i, spec_id=f"m/{name}/fp16/lab",
                      io={"tensors": [{"name": "input", "mode": "input", "dtype": "float32",
                                       "shape": [1, 3, 8, 8]},
                                      {"name": "output", "mode": "output", "dtype": "float32",
                                       "shape": [1, 4, 8, 8]}], "profiles": []})[0].key
            for i, (name, size) in enumerate((("a", 64 << 10), ("b", 2 * MiB), ("c", 6 * MiB)))}
    env = base_env()
    assert run_trtops(["push", "--remote", s3_url, "--cache", str(seed.root)], tmp_path, env).returncode == 0
    pull = ["pull", "--remote", s3_url, "--cache", "node", "--dest", "deploy", "--gpu", H100[0],
            "--compute-capability", H100[1], "--tensorrt", TRT]
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda _: run_trtops(pull, tmp_path, env), range(6)))
    assert [r.returncode for r in results] == [0] * 6, [r.stderr[-500:] for r in results]
    store = LocalStore(tmp_path / "node")
    report = check_cache(store)
    assert report.ok and set(report.complete) == keys, report
    for key in keys:
        assert store.read_file(key, "engine.plan") == seed.read_file(key, "engine.plan")
    assert list((tmp_path / "node" / "tmp").iterdir()) == []
    assert check_emitted(tmp_path / "deploy", engine_digests(store)) == []
    assert not [p for p in (tmp_path / "deploy").rglob(".*") if p.is_file()]  # no temp files left
