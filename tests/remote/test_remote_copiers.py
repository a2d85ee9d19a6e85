"""Copier processes against the real S3 server (SeaweedFS): a large body of a direct GET is
received, hashed and written by a copier process (trtops/cache/copier.py), in downloads and
in pulls; small bodies, ``?copiers=0`` and https stay in this process; a body cut midway,
or a copier killed midway, still ends with the right bytes and its progress counted once
(issue 18: one interpreter's GIL capped GET + sha256 + write)."""

from __future__ import annotations

import hashlib
import os

import pytest
from remote_helpers import BUCKET, add_entry
from test_remote_pull_requests import HERE

from trtops.cache import copier
from trtops.cache.local import LocalStore
from trtops.cache.s3 import open_s3_store
from trtops.cache.transfer import push_entry
from trtops.fsutil import FILE_MODE
from trtops.ops.pull import pull

pytestmark = pytest.mark.skipif(not copier.supported(), reason="copiers run on Linux only")

MiB = 1 << 20


def stored(store, name: str, size: int) -> bytes:
    data = os.urandom(size)
    store.put(name, data)
    list(store.list(""))  # direct GETs (and so copiers) start after a listing
    return data


def download(store, name: str, dest, data: bytes, progress=None) -> None:
    assert store.download_file(name, dest, expected_sha256=hashlib.sha256(data).hexdigest(),
                               progress=progress)
    assert dest.read_bytes() == data


def test_a_large_body_is_received_by_a_copier(tmp_path, s3_endpoint):
    store = open_s3_store(f"s3://{BUCKET}/copied?endpoint_url={s3_endpoint}")
    data = stored(store, "engine.plan", 6 * MiB)
    reported: list[int] = []
    download(store, "engine.plan", tmp_path / "engine.plan", data, reported.append)
    assert store.copiers.bodies == 1
    assert sum(reported) == len(data)
    assert (tmp_path / "engine.plan").stat().st_mode & 0o777 == FILE_MODE
    store.copiers.close()


@pytest.mark.parametrize("size,option,bodies", [
    (1 * MiB, "", 0),  # below copier.MIN_BYTES: a copier's round trip costs more
    (6 * MiB, "&copiers=0", 0),
], ids=["small-body", "copiers=0"])
def test_bodies_that_stay_in_this_process(tmp_path, s3_endpoint, size, option, bodies):
    store = open_s3_store(f"s3://{BUCKET}/kept{size}?endpoint_url={s3_endpoint}{option}")
    data = stored(store, "engine.plan", size)
    download(store, "engine.plan", tmp_path / "engine.plan", data)
    assert store.copiers.bodies == bodies
    store.copiers.close()


def test_a_pull_of_large_engines_uses_copiers(tmp_path, local, s3_endpoint):
    # One copier per download in flight.
    remote = open_s3_store(f"s3://{BUCKET}/pulled?endpoint_url={s3_endpoint}&copiers=3")
    keys = [add_entry(local, f"big{index}", size=5 * MiB, seed=index)[0].key
            for index in range(3)]
    for key in keys:
        assert push_entry(local, remote, key).created
    node = LocalStore(tmp_path / "node")
    result = pull(remote, node, HERE, jobs=3, progress=False)
    assert sorted(outcome.key for outcome in result.fetched) == sorted(keys)
    assert remote.copiers.bodies == 3
    for key in keys:
        assert node.read_file(key, "engine.plan") == local.read_file(key, "engine.plan")
    remote.copiers.close()


def test_a_body_cut_midway_in_a_copier_is_resumed(tmp_path, s3_endpoint, proxy):
    store = open_s3_store(f"s3://{BUCKET}/cutcopy?endpoint_url={proxy.endpoint}")
    data = stored(store, "engine.plan", 9 * MiB)
    proxy.arm(5 * MiB, restart_after=None, keep_listening=True)
    reported: list[int] = []
    download(store, "engine.plan", tmp_path / "engine.plan", data, reported.append)
    assert proxy.cuts == 1 and store.copiers.bodies == 1
    assert sum(reported) == len(data)  # what the copier wrote is kept, not fetched again
    store.copiers.close()


def test_a_copier_killed_midway_is_replaced_by_this_process(tmp_path, s3_endpoint, proxy):
    store = open_s3_store(f"s3://{BUCKET}/killed?endpoint_url={proxy.endpoint}")
    data = stored(store, "engine.plan", 24 * MiB)
    # The server stalls after 12 MiB: the copier's first report (8 MiB) comes while the
    # body surely has bytes left, however slow or fast this machine is.
    release = proxy.hold(12 * MiB)
    reported: list[int] = []

    def progress(count: int) -> None:
        if not reported:  # the copier's first report: kill it mid-body
            busy = [child for child in store.copiers._all if child not in store.copiers._idle]
            busy[0].process.kill()
            release.set()
        reported.append(count)

    try:
        download(store, "engine.plan", tmp_path / "engine.plan", data, progress)
    finally:
        release.set()
    assert not store.copiers.enabled  # whatever killed one would kill the next
    assert sum(reported) == len(data)  # the refetched bytes are not counted twice
    store.copiers.close()


@pytest.mark.parametrize("options,started", [
    ("&copiers=4", 2), ("&copiers=0", 0), ("&copiers=4&direct_gets=0", 0)])
def test_a_pull_starts_its_copiers_before_its_first_download(s3_endpoint, options, started):
    store = open_s3_store(f"s3://{BUCKET}/warm?endpoint_url={s3_endpoint}{options}")
    thread = store.prepare_downloads(2)  # what a pull's downloads call first
    if thread is not None:
        thread.join()
    assert len(store.copiers._all) == started
    store.copiers.close()


def test_an_https_remote_starts_no_copiers():
    store = open_s3_store("s3://bucket/p?endpoint_url=https://s3.example.com")
    assert store.prepare_downloads(4) is None and store.copiers._all == []


class Dropped(Exception):
    pass


def test_a_download_given_up_by_its_progress_ends_its_copier(tmp_path, s3_endpoint):
    """A pull stops a speculative download by raising from its progress callback: the
    copier is ended mid-body, never handed the next body with its old replies pending."""
    store = open_s3_store(f"s3://{BUCKET}/dropped?endpoint_url={s3_endpoint}&copiers=1")
    data = stored(store, "engine.plan", 24 * MiB)

    def give_up(count: int) -> None:
        raise Dropped

    with pytest.raises(Dropped):
        store.download_file("engine.plan", tmp_path / "dropped.plan", progress=give_up)
    assert not (tmp_path / "dropped.plan").exists() and store.copiers._all == []
    assert store.copiers.enabled  # not the copier's fault: the next body gets a new one
    download(store, "engine.plan", tmp_path / "engine.plan", data)
    assert store.copiers.bodies == 2
    store.copiers.close()
