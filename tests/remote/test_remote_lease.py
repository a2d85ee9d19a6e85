"""Leases (build claims, locks) on the S3 backend and on a local cache."""

from __future__ import annotations

import threading
import time

import pytest
from remote_helpers import add_entry

from trtops.cache.lease import (
    LeaseKeeper,
    acquire_lease,
    claim_build,
    hold_lock,
    read_lease,
)
from trtops.cache.transfer import push_entry
from trtops.errors import CacheError


@pytest.fixture(params=["s3", "local"])
def lease_store(request, tmp_path):
    if request.param == "s3":
        return request.getfixturevalue("s3_store")
    from trtops.cache.local import LocalStore

    return LocalStore(tmp_path / "shared")


def test_one_holder_until_release(lease_store):
    first = acquire_lease(lease_store, "k1", "shard-a", ttl=30)
    assert first is not None and first.owner == "shard-a"
    assert acquire_lease(lease_store, "k1", "shard-b", ttl=30) is None
    record = read_lease(lease_store, "k1")
    assert record["owner"] == "shard-a" and record["expired"] is False
    assert acquire_lease(lease_store, "k2", "shard-b", ttl=30) is not None  # other names
    first.release()
    assert read_lease(lease_store, "k1") is None
    assert acquire_lease(lease_store, "k1", "shard-b", ttl=30) is not None


def test_expired_lease_is_taken_over_by_exactly_one(lease_store):
    dead = acquire_lease(lease_store, "k", "dead-shard", ttl=0.2)
    time.sleep(0.3)
    barrier = threading.Barrier(6)
    won = []

    def contend(index: int) -> None:
        barrier.wait()
        lease = acquire_lease(lease_store, "k", f"shard-{index}", ttl=30)
        if lease is not None:
            won.append(lease)

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1
    # The old holder lost it: it can neither renew nor release the new holder's lease.
    assert dead.renew() is False
    dead.release()
    assert read_lease(lease_store, "k")["owner"] == won[0].owner


def test_keeper_renews_while_work_goes_on(lease_store):
    lease = acquire_lease(lease_store, "long-build", "me", ttl=0.3)
    with LeaseKeeper(lease, interval=0.05) as keeper:
        time.sleep(0.6)  # twice the ttl
        assert acquire_lease(lease_store, "long-build", "other", ttl=30) is None
    assert not keeper.lost and lease.remaining() > 0
    lease.release()


def test_lock_times_out_with_the_holder_named(lease_store):
    with hold_lock(lease_store, "timing-x", timeout=5):
        with pytest.raises(CacheError, match="waiting for lock 'timing-x'"):
            with hold_lock(lease_store, "timing-x", timeout=0.2):
                pass
    with hold_lock(lease_store, "timing-x", timeout=1):
        pass


def test_claim_build_builds_once_and_others_wait_for_the_entry(s3_store, local):
    key, _ = add_entry(local, "shared-build")
    lease = claim_build(s3_store, key.key, "shard-0", ttl=30)
    assert lease is not None
    outcome = []
    waiter = threading.Thread(target=lambda: outcome.append(
        claim_build(s3_store, key.key, "shard-1", ttl=30, poll=0.05, timeout=300)))
    waiter.start()
    time.sleep(0.2)
    assert waiter.is_alive()  # shard-1 waits while shard-0 builds
    push_entry(local, s3_store, key.key)
    lease.release()
    waiter.join(300)  # a hang guard
    assert outcome == [None]  # the entry appeared: fetch instead of building
    assert claim_build(s3_store, key.key, "shard-2", ttl=30) is None
