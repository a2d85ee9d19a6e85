"""`kill -9` at random points of `trtops apply` (build, accuracy check, publish into the
cache, refs, timing cache, emitted loaders), then: `trtops cache verify` finds no corrupt and
no partial entry, every ref points at a complete entry, every emitted engine file is a
complete engine, and the next apply completes, rebuilding exactly the engines that were not
published yet.

Kill points: half of the trials kill the process from inside just before its N-th write
under the cache or output directory (N uniform over the writes of a measured complete run:
every step of the publish protocol gets hit), the other half from outside after a delay
drawn uniformly from the measured duration of a complete run (anywhere, mid-write
included). The builder is the toolchain double (tests/doubles.py); everything else is real.
"""

from __future__ import annotations

import json
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from apply_helpers import make_project
from rel_helpers import (
    base_env,
    check_after_kill,
    check_cache,
    check_emitted,
    engine_digests,
    kill_plan,
    measure,
    run_trtops,
)

pytest.importorskip("onnxruntime")
pytest.importorskip("polygraphy")

TRIALS = 24
SEED = 20261122
ENGINES = {"demo/conv/fp32/lab", "demo/conv/fp16/lab", "demo/heavy/fp32/lab"}


def apply_args(index: int) -> list[str]:
    return ["apply", "--cache", f"caches/{index}", "--emit-dir", f"out/{index}", "--json"]


def trial(project: Path, index: int, kill_at: int, kill_after: float | None) -> dict:
    env = base_env(TRTOPS_FAKE_LOG=str(project / f"builds-{index}.log"))
    cache, out = project / "caches" / str(index), project / "out" / str(index)
    killed = run_trtops(apply_args(index), project, env, kill_at=kill_at, kill_after=kill_after,
                        scope=[cache, out])
    store = check_after_kill(killed, cache, out, index)
    before = set(store.list_keys())

    builds_log = project / f"builds-{index}.log"
    builds_log.unlink(missing_ok=True)
    again = run_trtops(apply_args(index), project, env)
    assert again.returncode == 0, (index, again.stderr)
    engines = {e["id"]: e for e in json.loads(again.stdout)["engines"] if e["id"] in ENGINES}
    rebuilt = {i for i, e in engines.items() if e["status"] == "built"}
    assert {e["status"] for e in engines.values()} <= {"built", "reused"}, engines
    assert all(e["status"] == "reused" for e in engines.values() if e["key"] in before), engines
    built_now = builds_log.read_text().split() if builds_log.exists() else []
    assert sorted(built_now) == sorted(rebuilt), (built_now, rebuilt)
    final = check_cache(store)
    assert final.ok and len(final.complete) == 3, final
    assert check_emitted(out, engine_digests(store)) == []
    return {"killed": killed.killed, "published_before": len(before), "rebuilt": len(rebuilt)}


def test_kill_9_during_apply_leaves_a_consistent_cache(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    seconds, events = measure(apply_args(999), project, base_env(),
                              [project / "caches" / "999", project / "out" / "999"],
                              tmp_path / "events")
    assert events > 20  # staging, files, meta.json, renames, refs, loaders...
    plan = [(index, *point) for index, point
            in enumerate(kill_plan(random.Random(SEED), TRIALS, events, seconds))]
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda p: trial(project, *p), plan))
    killed = sum(r["killed"] for r in results)
    # Event kills land (unless a run had fewer writes than the measured one); timer kills
    # land unless the run was quicker than the measured one.
    assert killed >= TRIALS // 2, results
    # The kills hit every stage: before anything was published, between engines, after.
    assert {r["published_before"] for r in results} >= {0, 3}, results
