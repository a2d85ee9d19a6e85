"""Pins: a prepared model in use is never gc'd; shared between users, exclusive for gc."""

from __future__ import annotations

from trtops.cache.pins import drop_pin, in_use, pin_path, pinned, unpinned


def test_users_share_a_pin_and_gc_waits_for_none(tmp_path):
    assert not in_use(tmp_path, "a")  # never pinned: no file, nothing read-only can't see
    with pinned(tmp_path, ["a", "b", "a"]):
        with pinned(tmp_path, ["a"]):  # a second apply of the same model
            assert in_use(tmp_path, "a")
        with unpinned(tmp_path, "a") as free:
            assert free is False
        with unpinned(tmp_path, "c") as free:
            assert free is True
    with unpinned(tmp_path, "a") as free:
        assert free is True
        assert in_use(tmp_path, "a")  # gc holds it now
        drop_pin(tmp_path, "a")
    assert not pin_path(tmp_path, "a").exists() and pin_path(tmp_path, "b").exists()
    with pinned(tmp_path, ["a"]):  # pinned again on a new file
        assert in_use(tmp_path, "a")


def test_pin_files_are_safe_names(tmp_path):
    path = pin_path(tmp_path, "../../etc/x")
    assert path.parent == tmp_path / "locks" and "/" not in path.name
