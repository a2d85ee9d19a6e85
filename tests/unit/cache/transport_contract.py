"""The object-transport contract every backend's transport passes (subclass it and give a
``transport`` fixture): see trtops.cache.transport.ObjectTransport."""

from __future__ import annotations

import hashlib
import threading

import pytest

from trtops.errors import CacheError


class TransportContract:
    def test_get_put_size_delete(self, transport):
        assert transport.get("a/b.bin") is None and transport.size("a/b.bin") is None
        transport.put("a/b.bin", b"hello")
        assert transport.get("a/b.bin") == b"hello" and transport.size("a/b.bin") == 5
        transport.put("a/b.bin", b"bye")  # replace
        assert transport.get("a/b.bin") == b"bye"
        transport.delete("a/b.bin")
        transport.delete("a/b.bin")  # absent is fine
        assert transport.get("a/b.bin") is None

    def test_ranged_get(self, transport):
        transport.put("r.bin", bytes(range(100)))
        assert transport.get_range("r.bin", 10, 20) == bytes(range(10, 20))
        assert transport.get_range("missing.bin", 0, 5) is None

    def test_put_if_absent_is_create_only(self, transport):
        assert transport.put_if_absent("once.json", b"first")
        assert not transport.put_if_absent("once.json", b"second")
        assert transport.get("once.json") == b"first"

    def test_racing_creators_leave_exactly_one_winner(self, transport):
        wins = []

        def create(i: int) -> None:
            if transport.put_if_absent("race.json", f"writer {i}".encode()):
                wins.append(i)

        threads = [threading.Thread(target=create, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(wins) == 1
        assert transport.get("race.json") == f"writer {wins[0]}".encode()

    def test_list_by_prefix(self, transport):
        for name in ("refs/m/a.json", "refs/m/b.json", "refs2/x.json", "timing/t.cache"):
            transport.put(name, b"x")
        assert sorted(transport.list("refs/")) == ["refs/m/a.json", "refs/m/b.json"]
        assert sorted(transport.list("refs")) == ["refs/m/a.json", "refs/m/b.json", "refs2/x.json"]
        assert list(transport.list("nothing/")) == []

    def test_get_to_file(self, transport, tmp_path):
        transport.put("big.bin", b"z" * 100_000)
        dest = tmp_path / "out.bin"
        assert transport.get_to_file("big.bin", dest)
        assert dest.read_bytes() == b"z" * 100_000
        assert not transport.get_to_file("absent.bin", tmp_path / "absent.bin")
        assert not (tmp_path / "absent.bin").exists()

    def test_conditional_primitives(self, transport):
        etag = transport.create_object("leases/l.lock", b"one")
        assert etag and transport.create_object("leases/l.lock", b"two") is None
        data, current = transport.read_object("leases/l.lock")
        assert data == b"one" and current == etag
        assert transport.replace_object("leases/l.lock", b"three", "stale-etag") is None
        newer = transport.replace_object("leases/l.lock", b"three", etag)
        assert newer and transport.get("leases/l.lock") == b"three"
        assert not transport.delete_object("leases/l.lock", if_match=etag)  # changed since
        assert transport.delete_object("leases/l.lock", if_match=newer)
        assert transport.read_object("leases/l.lock") is None

    def test_verified_download(self, transport, tmp_path):
        data = b"engine bytes " * 10_000
        transport.put("e/engine.plan", data)
        dest = tmp_path / "out" / "engine.plan"
        seen = []
        assert transport.download_file("e/engine.plan", dest,
                                       expected_sha256=hashlib.sha256(data).hexdigest(),
                                       progress=seen.append)
        assert dest.read_bytes() == data and sum(seen) == len(data)
        dest.write_bytes(b"keep me")
        with pytest.raises(CacheError, match="sha256 mismatch"):
            transport.download_file("e/engine.plan", dest, expected_sha256="0" * 64)
        assert dest.read_bytes() == b"keep me"
        assert sorted(p.name for p in dest.parent.iterdir()) == ["engine.plan"]
        assert not transport.download_file("e/absent.plan", tmp_path / "absent.plan")
        assert not (tmp_path / "absent.plan").exists()
