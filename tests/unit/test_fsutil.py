"""Atomic writes leave whole files with the permissions open() would give (not mkstemp's
owner-only 0600), so shared caches and emitted loaders stay readable by others."""

import os
import stat

from trtops.fsutil import FILE_MODE, atomic_copy, atomic_write


def test_atomic_write_and_copy_give_whole_files_with_umask_permissions(tmp_path):
    target = tmp_path / "a" / "ref.json"
    atomic_write(target, b"{}\n")
    assert target.read_bytes() == b"{}\n"
    assert stat.S_IMODE(target.stat().st_mode) == FILE_MODE
    copied = tmp_path / "b" / "engine.plan"
    atomic_copy(target, copied)
    assert copied.read_bytes() == b"{}\n"
    assert stat.S_IMODE(copied.stat().st_mode) == FILE_MODE
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["ref.json"]  # no temp files left
    umask = os.umask(0o022)
    os.umask(umask)
    assert FILE_MODE == 0o666 & ~umask
