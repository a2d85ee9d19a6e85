"""A full disk during a write: no entry appears, nothing partial is left, and the command
fails with a clear error (exit 1, what could not be written, what to do), never a
traceback; once there is room, the same command completes.

The disk fills for real at the OS level: the command runs with RLIMIT_FSIZE set (and
SIGXFSZ ignored), so a write past the limit fails with EFBIG inside the kernel, the same
failure path as ENOSPC, on any filesystem and without root.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from apply_helpers import make_project
from rel_helpers import base_env, check_cache, cli_verify, run_trtops
from remote_helpers import H100, TRT, add_entry

from trtops.cache.local import LocalStore

KiB, MiB = 1 << 10, 1 << 20


def leftovers(cache: Path) -> list[str]:
    tmp = cache / "tmp"
    return sorted(p.name for p in tmp.iterdir()) if tmp.exists() else []


def assert_clear_failure(result, *fragments: str) -> None:
    text = result.stdout + result.stderr
    assert result.returncode == 1, text
    assert "Traceback" not in text and "internal error" not in text, text
    for fragment in fragments:
        assert fragment in text, text


@pytest.mark.parametrize("toolchain,limit,what", [
    # The build log (512 KiB) is the first file too large: the cache's own entry write fails.
    ("disk_doubles:BigLogToolchain", 256 * KiB, "cannot write cache entry"),
    # The engine the builder writes is the first: the toolchain's write fails.
    ("doubles:FakeToolchain", 512, "cannot write the build files"),
], ids=["publishing-the-entry", "building"])
def test_apply_on_a_full_disk_leaves_no_entry_and_says_so(tmp_path: Path, toolchain: str,
                                                          limit: int, what: str) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("polygraphy")
    project = make_project(tmp_path)
    env = base_env(TRTOPS_TEST_TOOLCHAIN=toolchain)
    cache = project / "cache"
    full = run_trtops(["apply", "--no-emit"], project, env, max_file_bytes=limit)
    assert_clear_failure(full, what, "File too large", "free disk space")
    assert full.stderr.count("\n") < 40, full.stderr  # a message, not a dump
    assert list(LocalStore(cache).list_entry_dirs()) == []
    assert leftovers(cache) == []
    code, text = cli_verify(cache)
    assert code == 0, text
    # The same run as JSON: the engine says why, with no traceback in its details.
    report = run_trtops(["apply", "--no-emit", "--json"], project, env, max_file_bytes=limit)
    assert report.returncode == 1
    failed = [e for e in json.loads(report.stdout)["engines"] if e["status"] not in ("skipped",)]
    assert failed and all("File too large" in e["message"] and "Traceback" not in e["details"]
                          for e in failed), failed

    room = run_trtops(["apply", "--no-emit"], project, env)
    assert room.returncode == 0, room.stderr
    final = check_cache(LocalStore(cache))
    assert final.ok and len(final.complete) == 3


# 6 MiB: the engine is received by a copier process (trtops/cache/copier.py), which hits
# the limit itself (it inherits it) and reports the write error.
@pytest.mark.parametrize("large_size", [3 * MiB, 6 * MiB], ids=["in-process", "copier"])
def test_pull_on_a_full_disk_fails_fast_and_keeps_only_complete_entries(
        tmp_path: Path, s3_url: str, large_size: int) -> None:
    seed = LocalStore(tmp_path / "seed")
    small = add_entry(seed, "small", size=64 * KiB)[0].key
    large = add_entry(seed, "large", size=large_size, seed=1)[0].key
    env = base_env()
    pushed = run_trtops(["push", "--remote", s3_url, "--cache", str(seed.root)], tmp_path, env)
    assert pushed.returncode == 0, pushed.stderr
    node = tmp_path / "node"
    args = ["pull", "--remote", s3_url, "--cache", str(node), "--gpu", H100[0],
            "--compute-capability", H100[1], "--tensorrt", TRT]
    started = time.monotonic()
    full = run_trtops(args, tmp_path, env, max_file_bytes=1 * MiB)
    seconds = time.monotonic() - started
    assert_clear_failure(full, "File too large", "failed to pull")
    # A local write failure is not a network failure: no retries, no "cannot reach".
    assert "cannot reach" not in full.stderr and seconds < 15, (seconds, full.stderr)
    store = LocalStore(node)
    assert set(store.list_keys()) == {small}
    assert check_cache(store).ok and leftovers(node) == []
    assert not [p for p in node.rglob("*") if p.name.endswith((".part", ".tmp"))]

    room = run_trtops(args, tmp_path, env)
    assert room.returncode == 0, room.stderr
    assert set(store.list_keys()) == {small, large} and check_cache(store).ok


def test_refs_and_timing_caches_on_a_full_disk_are_clear_errors(tmp_path: Path) -> None:
    """The small mutable files of a cache (refs, timing caches, accuracy.json) are replaced
    atomically; a failed replacement keeps the old content and raises a CacheError."""
    import errno
    import resource
    import signal

    from trtops.errors import CacheError

    store = LocalStore(tmp_path / "cache")
    store.write_timing_cache("10.13.3.9", "cc9.0-nvidia-h100", b"old")
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1024, hard))
    try:
        with pytest.raises(CacheError, match="File too large") as caught:
            store.write_timing_cache("10.13.3.9", "cc9.0-nvidia-h100", b"x" * 4096)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
    assert caught.value.__cause__.errno == errno.EFBIG
    assert "free disk space" in (caught.value.hint or "")
    assert store.read_timing_cache("10.13.3.9", "cc9.0-nvidia-h100") == b"old"
    timing = tmp_path / "cache" / "timing" / "10.13.3.9"
    assert sorted(p.name for p in timing.iterdir()) == ["cc9.0-nvidia-h100.cache",
                                                        "cc9.0-nvidia-h100.cache.sha256"]


def _partial_files(folder: Path) -> list[str]:
    return sorted(str(p) for p in folder.rglob("*") if p.name.endswith(".tmp"))


def test_loaders_on_a_full_disk_are_a_clear_error(tmp_path: Path, s3_url: str) -> None:
    """apply, emit and pull --dest write loaders (an engine copy, a module, a Triton config):
    a full disk there is exit 1 naming what failed, and no half-written file is left."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("polygraphy")
    project = make_project(tmp_path)
    env = base_env()
    built = run_trtops(["apply", "--no-emit", "--remote", s3_url], project, env)
    assert built.returncode == 0, built.stderr
    limit = 600  # below the double's engine (its ONNX model), above nothing else written here

    emitted = run_trtops(["emit", "--dest", "out-emit", "--target", "lab"], project, env,
                         max_file_bytes=limit)
    assert_clear_failure(emitted, "cannot write the", "loaders in out-emit", "File too large")

    applied = run_trtops(["apply", "--emit-dir", "out-apply"], project, env, max_file_bytes=limit)
    assert_clear_failure(applied, "loaders in out-apply", "File too large", "free disk space")

    pull = ["pull", "--remote", s3_url, "--cache", "node", "--tensorrt", "8.6.0",
            "--gpu", "NVIDIA H200", "--compute-capability", "9.0"]
    assert run_trtops(pull, project, env).returncode == 0
    pulled = run_trtops([*pull, "--dest", "out-pull"], project, env, max_file_bytes=limit)
    assert_clear_failure(pulled, "loaders in out-pull", "File too large")
    for folder in ("out-emit", "out-apply", "out-pull"):
        assert _partial_files(project / folder) == []
    # with room, the same command writes them
    assert run_trtops(["emit", "--dest", "out-emit", "--target", "lab"], project, env).returncode == 0


def test_the_cache_removed_during_apply_is_a_clear_error(tmp_path: Path) -> None:
    """`rm -rf cache` while apply builds: exit 1 saying so, not an internal error; the next
    apply rebuilds into a fresh cache."""
    pytest.importorskip("onnxruntime")
    project = make_project(tmp_path)
    cache = project / "cache"
    env = base_env(TRTOPS_TEST_TOOLCHAIN="disk_doubles:CacheDeletingToolchain",
                   TRTOPS_FAKE_DELETE=str(cache))
    removed = run_trtops(["apply", "--no-emit"], project, env)
    assert_clear_failure(removed, "was removed while apply was running")
    again = run_trtops(["apply", "--no-emit"], project, base_env())
    assert again.returncode == 0, again.stderr
    assert check_cache(LocalStore(cache)).ok
