"""What a pull from the real S3 server (SeaweedFS) costs in requests, and the entries it
leaves without their build.log: each request costs the client CPU (and the server a
lookup), so requests per entry, not bytes, bound a pull of many small engines (issue 18). The requests are counted as
the real client sends them (tests/s3_requests.py), nothing is mocked."""

from __future__ import annotations

import pytest
from remote_helpers import BUCKET, H100, TRT, add_entry, s3_client
from report_helpers import perf_json
from s3_requests import RequestLog

from trtops.cache.entries import check_entry, write_perf
from trtops.cache.local import LocalStore
from trtops.cache.s3 import open_s3_store
from trtops.cache.store import (
    ACCURACY_FILE,
    BUILD_LOG_FILE,
    ENGINE_FILE,
    META_FILE,
    PERF_FILE,
)
from trtops.cache.transfer import push_entry
from trtops.cli import main
from trtops.keys.platform import GpuInfo, Platform
from trtops.ops.pull import pull

ENTRIES = 6
BENCHED = 2  # of them with a perf.json
HERE = Platform(tensorrt=TRT, gpus=(GpuInfo(0, *H100),), source="flags")
PLATFORM_FLAGS = ["--gpu", H100[0], "--compute-capability", H100[1], "--tensorrt", TRT]


def seed_remote(local: LocalStore, remote) -> list[str]:
    """``ENTRIES`` accepted entries (each with a build.log) on the remote, the first
    ``BENCHED`` measured after they were published (perf.json is mutable)."""
    keys = [add_entry(local, f"net{index}", seed=index)[0].key for index in range(ENTRIES)]
    for key in keys[:BENCHED]:
        write_perf(local, key, perf_json(1.0))
    for key in keys:
        assert push_entry(local, remote, key).created
    return keys


@pytest.mark.parametrize("with_logs", [False, True])
def test_a_pull_costs_one_listing_and_three_gets_per_entry(tmp_path, local, s3_store,
                                                            with_logs):
    keys = seed_remote(local, s3_store)
    node = LocalStore(tmp_path / "node")
    with RequestLog(s3_store) as log:
        result = pull(s3_store, node, HERE, progress=False, with_logs=with_logs)
    assert sorted(o.key for o in result.fetched) == sorted(keys)

    # No HEAD before a GET, nothing else: one listing, then GETs of the files needed.
    assert set(log.methods()) == {"GET"}
    assert log.listings == 1
    expected = {META_FILE: ENTRIES, ACCURACY_FILE: ENTRIES, ENGINE_FILE: ENTRIES,
                PERF_FILE: BENCHED}  # perf.json only where the listing showed one
    if with_logs:
        expected[BUILD_LOG_FILE] = ENTRIES
    assert dict(log.by_file()) == expected
    per_entry = (len(log.requests) - log.listings) / ENTRIES
    assert per_entry == (4 if with_logs else 3) + BENCHED / ENTRIES

    for key in keys:
        assert (BUILD_LOG_FILE in node.list_files(key)) is with_logs
        assert check_entry(node, key) is None
    for key in keys[:BENCHED]:
        assert node.read_file(key, PERF_FILE) == local.read_file(key, PERF_FILE)


def test_an_entry_without_its_build_log_is_sound_and_pushed_as_it_is(tmp_path, local,
                                                                      s3_store, s3_url, capsys):
    seed_remote(local, s3_store)
    node = tmp_path / "node"
    assert main(["pull", "--remote", s3_url, "--cache", str(node), *PLATFORM_FLAGS]) == 0
    key = next(iter(LocalStore(node).list_keys()))
    assert BUILD_LOG_FILE not in LocalStore(node).list_files(key)
    assert BUILD_LOG_FILE in LocalStore(node).read_meta(key)["files"]  # meta.json as built
    assert main(["cache", "verify", "--cache", str(node)]) == 0
    capsys.readouterr()

    # Pushed on to another remote without it; that remote's entry is sound as well, and a
    # pull --with-logs from it does without the log it does not have.
    other_url = s3_url.replace("?", "-relay?", 1)
    assert main(["push", "--remote", other_url, "--cache", str(node), key[:12]]) == 0
    relay = open_s3_store(other_url)
    assert relay.has_entry(key) and relay.read_file(key, BUILD_LOG_FILE) is None
    assert check_entry(relay, key) is None
    again = LocalStore(tmp_path / "again")
    result = pull(relay, again, HERE, progress=False, with_logs=True)
    assert [o.status for o in result.outcomes] == ["fetched"]
    assert BUILD_LOG_FILE not in again.list_files(key)


def test_a_present_but_damaged_build_log_is_still_caught(tmp_path, local, s3_store, s3_url,
                                                         s3_endpoint, capsys):
    keys = seed_remote(local, s3_store)
    node = tmp_path / "node"
    assert main(["pull", "--remote", s3_url, "--cache", str(node), "--with-logs",
                 *PLATFORM_FLAGS]) == 0
    pulled = LocalStore(node)
    assert pulled.read_file(keys[0], BUILD_LOG_FILE) == local.read_file(keys[0], BUILD_LOG_FILE)
    (pulled.entry_dir(keys[0]) / BUILD_LOG_FILE).write_bytes(b"not the log that was built\n")
    capsys.readouterr()
    assert main(["cache", "verify", "--cache", str(node)]) == 1
    assert f"corrupt {keys[0]}" in capsys.readouterr().out

    # On the remote: pull --with-logs refuses the entry (its log's sha256 is not meta.json's),
    # and a plain pull, which does not fetch the log, is not concerned.
    s3_client(s3_endpoint).put_object(
        Bucket=BUCKET, Key=f"{s3_store.prefix}/engines/{keys[1][:2]}/{keys[1]}/{BUILD_LOG_FILE}",
        Body=b"tampered log\n")
    fresh = LocalStore(tmp_path / "fresh")
    result = pull(s3_store, fresh, HERE, progress=False, with_logs=True)
    failed = {o.key: o.detail for o in result.failed}
    assert list(failed) == [keys[1]] and "sha256 mismatch" in failed[keys[1]]
    assert not fresh.has_entry(keys[1])
    plain = pull(s3_store, LocalStore(tmp_path / "plain"), HERE, progress=False)
    assert sorted(o.key for o in plain.fetched) == sorted(keys)
