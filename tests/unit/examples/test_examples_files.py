"""Atomic writes and byte-stable calibration data."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from trtops.examples.data import (
    DATA_REGISTRY,
    build_tiny_cnn_calib,
    make_tiny_cnn_calib,
)
from trtops.examples.files import npz_bytes, sha256_file, write_if_changed


def test_write_if_changed(tmp_path: Path):
    target = tmp_path / "sub" / "f.bin"
    assert write_if_changed(target, b"abc") is True
    assert target.read_bytes() == b"abc"
    assert write_if_changed(target, b"abc") is False
    assert write_if_changed(target, b"abd") is True
    assert target.read_bytes() == b"abd"
    assert sorted(p.name for p in target.parent.iterdir()) == ["f.bin"]  # no temporaries left
    assert sha256_file(target) == hashlib.sha256(b"abd").hexdigest()


def test_write_failure_leaves_no_temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import os

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        write_if_changed(tmp_path / "f.bin", b"data")
    assert list(tmp_path.iterdir()) == []


def test_npz_bytes_are_stable_and_loadable(tmp_path: Path):
    arrays = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.ones((4,), np.int64)}
    assert npz_bytes(arrays) == npz_bytes(dict(arrays))
    path = tmp_path / "x.npz"
    path.write_bytes(npz_bytes(arrays))
    with np.load(path, allow_pickle=False) as loaded:
        assert sorted(loaded.files) == ["a", "b"]
        np.testing.assert_array_equal(loaded["a"], arrays["a"])
        np.testing.assert_array_equal(loaded["b"], arrays["b"])


def test_tiny_cnn_calibration_data(tmp_path: Path):
    make, filename = DATA_REGISTRY["tiny_cnn_calib"]
    assert filename == "tiny_cnn_calib.npz"
    first = make(tmp_path / "a" / filename)
    second = make_tiny_cnn_calib(tmp_path / "b" / filename)
    assert sha256_file(first) == sha256_file(second)
    with np.load(first, allow_pickle=False) as data:
        assert data.files == ["input"]
        samples = data["input"]
    assert samples.shape == (128, 3, 32, 32) and samples.dtype == np.float32
    assert samples.min() >= 0 and samples.max() < 1
    np.testing.assert_array_equal(samples, build_tiny_cnn_calib()["input"])
