"""The directory transport: the shared transport contract plus what only a directory has."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from transport_contract import TransportContract  # noqa: E402

from trtops.cache.dir_transport import DirTransport  # noqa: E402


class TestDirTransportContract(TransportContract):
    @pytest.fixture
    def transport(self, tmp_path):
        return DirTransport(tmp_path / "objects")


def test_no_temporary_files_are_left_or_listed(tmp_path):
    transport = DirTransport(tmp_path)
    transport.put("a/x.json", b"1")
    transport.put_if_absent("a/y.json", b"2")
    transport.put_if_absent("a/y.json", b"3")
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["x.json", "y.json"]


def test_names_cannot_leave_the_directory(tmp_path):
    transport = DirTransport(tmp_path / "objects")
    with pytest.raises(ValueError):
        transport.get("../outside")
    with pytest.raises(ValueError):
        transport.put("/etc/passwd", b"")
