"""push / fetch / pull between a local cache and the S3 backend, including failures."""

from __future__ import annotations

import json
import multiprocessing
import time
from pathlib import Path

import pytest
from remote_helpers import (
    BUCKET,
    H100,
    L4,
    TRT,
    add_entry,
    files_under,
    push_worker,
    s3_client,
    sha256,
)

from trtops.cache import journal
from trtops.cache.local import LocalStore
from trtops.cache.s3 import open_s3_store
from trtops.cache.transfer import fetch_entry, fetch_timing_cache, push_entry, push_timing_cache
from trtops.ops.pull import pull_entries, select_for_pull
from trtops.cli import main
from trtops.errors import CacheError
from trtops.keys.platform import GpuInfo, Platform

MiB = 1 << 20
A100 = ("NVIDIA A100-SXM4-80GB", "8.0")
HERE = ["--gpu", H100[0], "--compute-capability", H100[1], "--tensorrt", TRT]
IO = {"tensors": [{"name": "input", "mode": "input", "dtype": "float32", "shape": [-1, 3, -1, -1]},
                  {"name": "output", "mode": "output", "dtype": "float32", "shape": [-1, 4, -1, -1]}],
      "profiles": [{"input": {"min": [1, 3, 8, 8], "opt": [1, 3, 16, 16], "max": [1, 3, 32, 32]}}]}


def h100_platform(tensorrt: str = TRT) -> Platform:
    return Platform(tensorrt=tensorrt, gpus=(GpuInfo(0, *H100),), source="flags")


def via(endpoint: str, store, options: str = "") -> str:
    """The URL of ``store``'s prefix through another endpoint (the proxy)."""
    return f"s3://{BUCKET}/{store.prefix}?endpoint_url={endpoint}{options}"


# --------------------------------------------------------------------------- push / fetch


def test_push_then_fetch_roundtrip(tmp_path, local, s3_store):
    key, engine = add_entry(local, "resnet", size=2 * MiB)
    sent: list[int] = []
    result = push_entry(local, s3_store, key.key, progress=sent.append)
    assert (result.created, result.identical) == (True, True)
    assert sum(sent) >= len(engine)
    assert push_entry(local, s3_store, key.key).created is False  # second push: identical

    other = LocalStore(tmp_path / "node")
    assert fetch_entry(s3_store, other, key.key)
    assert other.read_file(key.key, "engine.plan") == engine
    assert other.read_meta(key.key) == local.read_meta(key.key)
    assert json.loads(other.read_file(key.key, "accuracy.json"))["state"] == "accepted"
    assert files_under(other.root / "tmp") == []
    assert fetch_entry(s3_store, other, key.key)  # already there
    assert not fetch_entry(s3_store, other, "f" * 64)


@pytest.mark.parametrize("state", ["rejected", "unverified"])
def test_only_accepted_entries_are_pushed(local, s3_store, state):
    key, _ = add_entry(local, f"bad-{state}", state=state)
    with pytest.raises(CacheError, match=f"is {state}; only accepted entries are pushed"):
        push_entry(local, s3_store, key.key)
    with pytest.raises(CacheError):
        push_entry(local, s3_store, key.key, states=("accepted", "rejected"))  # never rejected
    assert not s3_store.has_entry(key.key) or state == "unverified"


def test_corrupt_local_entry_is_not_pushed(local, s3_store):
    key, _ = add_entry(local, "corrupt")
    (local.entry_dir(key.key) / "engine.plan").write_bytes(b"bit rot")
    with pytest.raises(CacheError, match="does not match its recorded sha256"):
        push_entry(local, s3_store, key.key)
    assert not s3_store.has_entry(key.key)


def test_corrupt_remote_engine_is_never_written_locally(tmp_path, local, s3_store, s3_endpoint):
    key, _ = add_entry(local, "tampered")
    push_entry(local, s3_store, key.key)
    s3_client(s3_endpoint).put_object(
        Bucket=BUCKET, Key=f"{s3_store.prefix}/engines/{key.key[:2]}/{key.key}/engine.plan",
        Body=b"tampered engine")
    node = LocalStore(tmp_path / "node")
    with pytest.raises(CacheError, match="sha256 mismatch"):
        fetch_entry(s3_store, node, key.key)
    assert not node.has_entry(key.key)
    assert files_under(node.root / "engines") == [] and files_under(node.root / "tmp") == []


def test_eight_processes_pushing_the_same_entry_leave_one_valid_object(local, s3_store, s3_url,
                                                                       s3_endpoint):
    key, engine = add_entry(local, "race", size=6 * MiB)
    ctx = multiprocessing.get_context("spawn")
    ready, go, results = ctx.Queue(), ctx.Event(), ctx.Queue()
    workers = [ctx.Process(target=push_worker,
                           args=(str(local.root), s3_url, key.key, ready, go, results))
               for _ in range(8)]
    for worker in workers:
        worker.start()
    try:
        assert all(ready.get(timeout=120) > 0 for _ in workers)
        go.set()
        outcomes = [results.get(timeout=120) for _ in workers]
    finally:
        for worker in workers:
            worker.join(timeout=60)
    assert [o for o in outcomes if o[0] == "error"] == []
    assert sorted(o[1:] for o in outcomes) == [(False, True)] * 7 + [(True, True)]
    client = s3_client(s3_endpoint)
    listing = client.list_objects_v2(Bucket=BUCKET, Prefix=f"{s3_store.prefix}/")["Contents"]
    names = sorted(o["Key"][len(s3_store.prefix) + 1:] for o in listing)
    entry = f"engines/{key.key[:2]}/{key.key}"
    assert names == [f"{entry}/{n}" for n in ("accuracy.json", "build.log", "engine.plan", "meta.json")]
    assert sha256(s3_store.read_file(key.key, "engine.plan")) == sha256(engine)
    assert s3_store.read_meta(key.key) == local.read_meta(key.key)
    assert not client.list_multipart_uploads(Bucket=BUCKET, Prefix=s3_store.prefix).get("Uploads")


# --------------------------------------------------------------------------- interrupted pulls


def test_pull_survives_a_server_restart_mid_transfer(tmp_path, local, s3_store, proxy):
    key, engine = add_entry(local, "big", size=24 * MiB)
    push_entry(local, s3_store, key.key)
    remote = open_s3_store(via(proxy.endpoint, s3_store, "&max_attempts=4&stream_retries=5"))
    proxy.arm(cut_after_bytes=8 * MiB, restart_after=0.5)
    node = LocalStore(tmp_path / "node")
    received: list[int] = []
    assert fetch_entry(remote, node, key.key, progress=received.append)
    assert proxy.cuts == 1  # the connection really was cut mid-body
    files = local.read_meta(key.key)["files"]
    accuracy = len(local.read_file(key.key, "accuracy.json"))
    # Resumed where it stopped: no byte was received twice.
    assert sum(received) == sum(f["size"] for f in files.values()) + accuracy
    assert sha256(node.read_file(key.key, "engine.plan")) == sha256(engine)
    assert files_under(node.root / "tmp") == []


def test_pull_fails_cleanly_when_the_server_stays_down(tmp_path, local, s3_store, proxy, capsys):
    big, _ = add_entry(local, "big", size=24 * MiB)
    small, _ = add_entry(local, "small", size=1 * MiB)
    for key in (big, small):
        push_entry(local, s3_store, key.key)
    url = via(proxy.endpoint, s3_store, "&max_attempts=2&stream_retries=1")
    proxy.arm(cut_after_bytes=8 * MiB, restart_after=None)
    node, dest = tmp_path / "node", tmp_path / "deploy"
    code = main(["pull", "--remote", url, "--cache", str(node), "--dest", str(dest), "-j", "1",
                 *HERE])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "failed to pull" in err and "cannot reach the remote cache" in err
    assert "testing-secret" not in err
    engines = files_under(node / "engines")
    assert all(not name.endswith(".part") for name in engines)
    # Entries are all-or-nothing: whatever is there is complete and verified.
    for name in engines:
        if name.endswith("meta.json"):
            entry_key = Path(name).parent.name
            meta = LocalStore(node).read_meta(entry_key)
            assert sha256(LocalStore(node).read_file(entry_key, "engine.plan")) == meta["engine_sha256"]
    assert big.key not in set(LocalStore(node).list_keys())
    assert files_under(node / "tmp") == []
    assert files_under(dest) == []


@pytest.mark.parametrize("fsync", [False, True])
def test_pull_journals_or_fsyncs_what_it_publishes(tmp_path, local, s3_store, fsync):
    keys = [add_entry(local, name, size=2 * MiB)[0].key for name in ("one", "two")]
    for key in keys:
        push_entry(local, s3_store, key)
    node = LocalStore(tmp_path / "node")
    outcomes = pull_entries(s3_store, node, select_for_pull(s3_store, h100_platform()).selected,
                            progress=False, fsync=fsync)
    assert sorted(o.status for o in outcomes) == ["fetched", "fetched"]
    assert all(journal.entry_intact(node.entry_dir(key)) for key in keys)
    records = [json.loads(p.read_text()) for p in (node.root / journal.JOURNAL_DIR).glob("*.json")]
    if fsync or journal.boot_id() is None:  # no journal where a reboot cannot be told apart
        assert records == []
    else:
        # Written (and fsynced) before the entries became visible; retired by a later open.
        assert [r["keys"] for r in records] == [sorted(keys)]
        assert records[0]["boot_id"] == journal.boot_id()
        assert journal.recover(node, now=time.time() + journal.SETTLE_SECONDS + 1).settled == 1
    assert files_under(node.root / journal.JOURNAL_DIR) == []
    # Nothing new to pull: no journal either.
    pull_entries(s3_store, node, select_for_pull(s3_store, h100_platform()).selected, progress=False)
    assert files_under(node.root / journal.JOURNAL_DIR) == []


# --------------------------------------------------------------------------- selection


def test_pull_selects_what_runs_here(tmp_path, s3_store):
    seed = LocalStore(tmp_path / "builders")
    # Same age (explicit: two entries published a second apart would make the later build
    # variant the newest, whatever the GPU): the exact-GPU engine is preferred.
    same_time = "2026-01-01T00:00:00Z"
    exact, _ = add_entry(seed, "a", gpu=H100, spec_id="m/a/fp16/lab", created_at=same_time)
    portable, _ = add_entry(seed, "a", gpu=A100, hardware_compatibility="ampere_plus",
                            spec_id="m/a/fp16/lab", created_at=same_time)
    other_gpu, _ = add_entry(seed, "b", gpu=L4, spec_id="m/b/fp16/lab")
    old_trt, _ = add_entry(seed, "c", tensorrt="10.8.0.43", spec_id="m/c/fp16/lab")
    old_vc, _ = add_entry(seed, "d", tensorrt="10.8.0.43", version_compatible=True,
                          spec_id="m/d/fp16/lab")
    stale, _ = add_entry(seed, "e-old", spec_id="m/e/fp16/lab", created_at="2020-01-01T00:00:00Z")
    fresh, _ = add_entry(seed, "e-new", gpu=A100, hardware_compatibility="ampere_plus",
                         spec_id="m/e/fp16/lab", created_at="2030-01-01T00:00:00Z")
    for key in (exact, portable, other_gpu, old_trt, old_vc, stale, fresh):
        assert push_entry(seed, s3_store, key.key).created
    rejected, _ = add_entry(seed, "f", spec_id="m/f/fp16/lab")
    push_entry(seed, s3_store, rejected.key)
    s3_store.replace_file(rejected.key, "accuracy.json", b'{"state": "rejected"}')

    selection = select_for_pull(s3_store, h100_platform())
    chosen = {c.spec_id: c.key for c in selection.selected}
    assert chosen == {"m/a/fp16/lab": exact.key, "m/d/fp16/lab": old_vc.key,
                      "m/e/fp16/lab": fresh.key}
    reasons = {c.key: c.reason for c in selection.skipped}
    assert reasons[portable.key] == f"{exact.key[:12]} is preferred for m/a/fp16/lab"
    assert reasons[other_gpu.key].startswith("built for cc8.9-nvidia-l4")
    assert reasons[old_trt.key] == f"built with TensorRT 10.8.0.43, here TensorRT {TRT}"
    assert reasons[stale.key] == f"{fresh.key[:12]} is preferred for m/e/fp16/lab"
    assert reasons[rejected.key].startswith("rejected")
    every = select_for_pull(s3_store, h100_platform(), every=True)
    assert {c.key for c in every.selected} == {exact.key, portable.key, old_vc.key, stale.key,
                                               fresh.key}
    only = select_for_pull(s3_store, h100_platform(), spec_ids=["m/a/fp16/lab"])
    assert [c.key for c in only.selected] == [exact.key]


# --------------------------------------------------------------------------- CLI


def test_cli_push_and_pull_with_loaders(tmp_path, local, s3_url, capsys):
    accepted, engine = add_entry(local, "net", size=1 * MiB, io=IO)
    rejected, _ = add_entry(local, "bad", state="rejected")
    unverified, _ = add_entry(local, "new", state="unverified")
    local.write_timing_cache(TRT, "cc9.0-nvidia-h100-80gb-hbm3", b"timing")

    assert main(["push", "--remote", s3_url, "--cache", str(local.root), "--json"]) == 0
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert {e["key"]: e["status"] for e in report["entries"]} == {
        accepted.key: "created", rejected.key: "skipped", unverified.key: "skipped"}
    assert report["timing_caches"] == [f"{TRT}/cc9.0-nvidia-h100-80gb-hbm3"]
    assert "pushed 1 entries" in err and "2 skipped (not accepted)" in err
    remote = open_s3_store(s3_url)
    assert set(remote.list_keys()) == {accepted.key}

    # Naming a rejected entry explicitly is an error (exit 1), and it still is not pushed.
    assert main(["push", "--remote", s3_url, "--cache", str(local.root), rejected.key[:10]]) == 1
    assert set(remote.list_keys()) == {accepted.key}
    capsys.readouterr()

    node, dest = tmp_path / "node", tmp_path / "deploy"
    assert main(["pull", "--remote", s3_url, "--cache", str(node), "--dest", str(dest),
                 "--loaders", "python,triton", *HERE]) == 0
    err = capsys.readouterr().err
    assert "pulled 1 entries" in err and "wrote 2 loader(s)" in err
    assert LocalStore(node).read_file(accepted.key, "engine.plan") == engine
    assert (dest / "python" / "net_fp16_lab.py").is_file()
    assert (dest / "python" / "net_fp16_lab.plan").read_bytes() == engine
    assert (dest / "triton" / "net_fp16" / "config.pbtxt").is_file()

    # Nothing runs on an L4: nothing is pulled, and the dry run says why.
    assert main(["pull", "--remote", s3_url, "--cache", str(tmp_path / "l4"), "--dry-run",
                 "--gpu", L4[0], "--compute-capability", L4[1], "--tensorrt", TRT]) == 0
    out = capsys.readouterr().out
    assert "skip (built for cc9.0-nvidia-h100-80gb-hbm3, this GPU is cc8.9-nvidia-l4)" in out


def test_cli_needs_a_remote_and_a_platform(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("TRTOPS_REMOTE", raising=False)
    assert main(["push", "--cache", str(tmp_path)]) == 1
    assert "no remote cache given" in capsys.readouterr().err
    assert main(["pull", "--remote", "s3://b/p", "--cache", str(tmp_path),
                 "--gpu", "NVIDIA L4", "--compute-capability", "8.9"]) in (1, 5)


# --------------------------------------------------------------------------- timing caches


def test_timing_caches_are_shared_through_the_remote(tmp_path, local, s3_store):
    signature = "cc9.0-nvidia-h100-80gb-hbm3"
    merge = lambda old, new: b"|".join(sorted(set(old.split(b"|")) | set(new.split(b"|"))))
    local.write_timing_cache(TRT, signature, b"a")
    assert push_timing_cache(local, s3_store, TRT, signature)
    node = LocalStore(tmp_path / "node")
    assert fetch_timing_cache(s3_store, node, TRT, signature)
    assert node.read_timing_cache(TRT, signature) == b"a"
    node.write_timing_cache(TRT, signature, b"b")
    assert not push_timing_cache(node, s3_store, TRT, signature)  # no merge: never overwrite
    assert push_timing_cache(node, s3_store, TRT, signature, merge)
    assert s3_store.read_timing_cache(TRT, signature) == b"a|b"
    assert fetch_timing_cache(s3_store, local, TRT, signature, merge)
    assert local.read_timing_cache(TRT, signature) == b"a|b"
    assert not fetch_timing_cache(s3_store, local, "8.6.0", signature)


def test_cli_pull_only_the_engines_of_given_manifests(tmp_path, local, s3_url, capsys):
    from helpers import write_manifest

    manifest = write_manifest(tmp_path / "manifests", """
        version: 1
        targets:
          lab: {gpu: any}
        models:
          - name: net
            source: models/absent-on-this-node.onnx
            precisions: [fp16, fp32]
        """, "m.yaml")
    wanted, _ = add_entry(local, "net", spec_id="m/net/fp16/lab")
    add_entry(local, "other", spec_id="m/other/fp16/lab")
    assert main(["push", "--remote", s3_url, "--cache", str(local.root)]) == 0
    node = tmp_path / "node"
    code = main(["pull", str(manifest), "--remote", s3_url, "--cache", str(node), *HERE])
    err = capsys.readouterr().err
    assert set(LocalStore(node).list_keys()) == {wanted.key}
    # m/net/fp32/lab was never built: reported, exit 1.
    assert code == 1 and "missing: m/net/fp32/lab" in err


def test_push_and_pull_to_a_missing_bucket_say_so_once(tmp_path, local, s3_endpoint, capsys):
    """The remote is checked once before the per-entry work: one error, not one per engine."""
    for index in range(6):
        add_entry(local, f"net{index}", seed=index)
    missing = f"s3://no-such-bucket-here/p?endpoint_url={s3_endpoint}"
    for argv in (["push", "--remote", missing, "--cache", str(local.root)],
                 ["push", "--remote", missing, "--cache", str(local.root), "--dry-run"],
                 ["pull", "--remote", missing, "--cache", str(tmp_path / "node"), *HERE]):
        assert main(argv) == 1, argv
        captured = capsys.readouterr()
        text = captured.out + captured.err
        assert text.count("does not exist") == 1, text
        assert "not attempted" not in text and "Traceback" not in text, text
