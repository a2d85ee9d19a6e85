"""`kill -9` at random points of `trtops push` (publishing to S3) and `trtops pull` (fetching
from S3 into the local cache and writing loaders), against a real S3 server (SeaweedFS):

- after a killed push, every entry the remote lists (meta.json present) is complete and
  matches its digests; files of an interrupted upload are no entry; the next push completes
  (after the dead writer's lease expired) and the remote then verifies clean;
- after a killed pull, `trtops cache verify` of the local cache finds no corrupt and no
  partial entry, emitted engine files are complete engines, and the next pull completes.

Kill points as in test_kill_apply.py: half just before the N-th HTTP send or local write
(N uniform over a measured complete run: part uploads, meta.json last, lease objects,
downloads, renames), half after a delay uniform over the measured duration.
"""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

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
from remote_helpers import H100, TRT, add_entry

from trtops.cache.local import LocalStore
from trtops.cache.s3 import open_s3_store

PUSH_TRIALS = 12  # with test_kill_apply.py's 24: 50 kill trials
PULL_TRIALS = 14
SEED = 7
MiB = 1 << 20
HERE = ["--gpu", H100[0], "--compute-capability", H100[1], "--tensorrt", TRT]
# Small parts so that the largest engine is a multipart upload and a ranged download; a
# short lease so that a killed writer blocks the next one for two seconds at most.
OPTIONS = (f"&multipart_threshold={5 * MiB}&part_size={5 * MiB}&lease_ttl=2&max_attempts=2"
           "&stream_retries=1&jobs=4")
IO = {"tensors": [{"name": "input", "mode": "input", "dtype": "float32", "shape": [-1, 3, -1, -1]},
                  {"name": "output", "mode": "output", "dtype": "float32", "shape": [-1, 4, -1, -1]}],
      "profiles": [{"input": {"min": [1, 3, 8, 8], "opt": [1, 3, 16, 16], "max": [1, 3, 32, 32]}}]}


def seed_cache(root: Path) -> tuple[LocalStore, list[str]]:
    local = LocalStore(root)
    keys = [add_entry(local, name, size=size, seed=seed, io=IO, spec_id=f"m/{name}/fp16/lab")[0].key
            for name, size, seed in (("small", 64 << 10, 0), ("medium", 2 * MiB, 1), ("large", 11 * MiB, 2))]
    return local, keys


def remote_report(url: str) -> tuple[list[str], list[str]]:
    """(complete keys, problems) of a remote: each listed entry re-hashed against meta.json."""
    from trtops.cache.entries import check_entry

    store = open_s3_store(url)
    keys = list(store.list_keys())
    problems = [f"{k[:12]}: {p}" for k in keys if (p := check_entry(store, k))]
    return keys, problems


def test_kill_9_during_push_never_publishes_a_partial_entry(tmp_path: Path, s3_url: str) -> None:
    local, keys = seed_cache(tmp_path / "cache")
    env = base_env()
    base, query = s3_url.split("?", 1)
    measured_url = f"{base}-measure?{query}{OPTIONS}"
    seconds, events = measure(["push", "--remote", measured_url, "--cache", str(local.root)],
                              tmp_path, env, [local.root], tmp_path / "events")
    rng = random.Random(SEED)

    def trial(item: tuple[int, tuple[int, float | None]]) -> bool:
        index, (kill_at, kill_after) = item
        url = f"{base}-{index}?{query}{OPTIONS}"
        args = ["push", "--remote", url, "--cache", str(local.root)]
        killed = run_trtops(args, tmp_path, env, kill_at=kill_at, kill_after=kill_after,
                            scope=[local.root])
        assert killed.returncode in (0, -9), killed.stderr
        listed, problems = remote_report(url)
        assert problems == [], (index, problems)
        assert set(listed) <= set(keys)
        again = run_trtops(args, tmp_path, env)
        assert again.returncode == 0, (index, again.stderr)
        listed, problems = remote_report(url)
        assert problems == [] and sorted(listed) == sorted(keys), (index, problems, listed)
        return killed.killed

    # Three at a time: a push after a killed one mostly waits for the dead writer's lease.
    with ThreadPoolExecutor(3) as pool:
        killed = list(pool.map(trial, enumerate(kill_plan(rng, PUSH_TRIALS, events, seconds))))
    assert sum(killed) >= PUSH_TRIALS // 2, killed
    # The local cache was only read.
    assert check_cache(local).ok


def test_kill_9_during_pull_leaves_a_consistent_local_cache(tmp_path: Path, s3_url: str) -> None:
    seed, keys = seed_cache(tmp_path / "seed")
    url = s3_url + OPTIONS
    env = base_env()
    pushed = run_trtops(["push", "--remote", url, "--cache", str(seed.root)], tmp_path, env)
    assert pushed.returncode == 0, pushed.stderr

    def args(index: int | str) -> list[str]:
        return ["pull", "--remote", url, "--cache", f"nodes/{index}", "--dest", f"deploy/{index}",
                "--loaders", "python,triton", *HERE]

    seconds, events = measure(args("measure"), tmp_path, env,
                              [tmp_path / "nodes" / "measure", tmp_path / "deploy" / "measure"],
                              tmp_path / "events")
    rng = random.Random(SEED + 1)

    def trial(item: tuple[int, tuple[int, float | None]]) -> bool:
        index, (kill_at, kill_after) = item
        node, dest = tmp_path / "nodes" / str(index), tmp_path / "deploy" / str(index)
        killed = run_trtops(args(index), tmp_path, env, kill_at=kill_at, kill_after=kill_after,
                            scope=[node, dest])
        store = check_after_kill(killed, node, dest, index)
        again = run_trtops(args(index), tmp_path, env)
        assert again.returncode == 0, (index, again.stderr)
        final = check_cache(store)
        assert final.ok and sorted(final.complete) == sorted(keys), (index, final)
        for key in keys:
            assert store.read_file(key, "engine.plan") == seed.read_file(key, "engine.plan")
        assert check_emitted(dest, engine_digests(store)) == []
        assert (dest / "python" / "large_fp16_lab.py").is_file()
        return killed.killed

    with ThreadPoolExecutor(2) as pool:
        killed = list(pool.map(trial, enumerate(kill_plan(rng, PULL_TRIALS, events, seconds))))
    assert sum(killed) >= PULL_TRIALS // 2, killed
