"""Calibration data: reading (.npz / .npy dirs, no pickles) and batching (pure numpy)."""

import numpy as np
import pytest

from trtops.trt.calibration import (
    CalibrationDataError,
    NetworkInput,
    load_calibration_data,
)

IMAGE = NetworkInput("input", (-1, 3, 8, 8), "float32")


def npz(tmp_path, **arrays):
    path = tmp_path / "calib.npz"
    np.savez(path, **arrays)
    return path


def test_npz_dynamic_batch(tmp_path):
    data = np.arange(10 * 3 * 8 * 8, dtype=np.float64).reshape(10, 3, 8, 8)
    batches = load_calibration_data(npz(tmp_path, input=data), [IMAGE], batch_size=4)
    assert batches.batch_size == 4 and batches.num_batches == 2  # remainder dropped
    assert batches.shape("input") == (4, 3, 8, 8)
    first = batches.batch(0)["input"]
    assert first.dtype == np.float32 and first.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(batches.batch(1)["input"], data[4:8].astype(np.float32))
    assert batches.nbytes("input") == 4 * 3 * 8 * 8 * 4
    with pytest.raises(IndexError):
        batches.batch(2)


def test_fewer_samples_than_batch_size(tmp_path):
    batches = load_calibration_data(npz(tmp_path, input=np.zeros((3, 3, 8, 8))), [IMAGE], batch_size=32)
    assert (batches.batch_size, batches.num_batches) == (3, 1)


def test_fixed_batch_wins_and_max_batches(tmp_path):
    fixed = NetworkInput("input", (2, 3, 8, 8), "float32")
    batches = load_calibration_data(npz(tmp_path, input=np.zeros((9, 3, 8, 8))), [fixed], batch_size=8, max_batches=3)
    assert (batches.batch_size, batches.num_batches) == (2, 3)
    with pytest.raises(CalibrationDataError, match="fixed batch size is 2"):
        load_calibration_data(npz(tmp_path, input=np.zeros((1, 3, 8, 8))), [fixed], batch_size=8)


def test_directory_of_npy_with_sanitized_names(tmp_path):
    np.save(tmp_path / "image_0.npy", np.ones((4, 3, 8, 8), np.float32))
    np.save(tmp_path / "scale.npy", np.ones((4, 8), np.float32))
    inputs = [NetworkInput("image:0", (-1, 3, 8, 8), "float32"), NetworkInput("scale", (-1, 8), "float16")]
    batches = load_calibration_data(tmp_path, inputs, batch_size=2)
    batch = batches.batch(1)
    assert batch["image:0"].shape == (2, 3, 8, 8) and batch["scale"].dtype == np.float16


@pytest.mark.parametrize(
    "arrays, match",
    [
        ({"other": np.zeros((4, 3, 8, 8))}, "no array for input 'input'"),
        ({"input": np.zeros((3, 8, 8))}, "first axis must be the sample axis"),
        ({"input": np.zeros((4, 3, 8, 9))}, "needs 8 on axis 3"),
        ({"input": np.zeros((0, 3, 8, 8))}, "no samples"),
        ({"input": np.array(["a"] * 4).reshape(4, 1, 1, 1)}, "unsupported dtype"),
    ],
)
def test_bad_data(tmp_path, arrays, match):
    with pytest.raises(CalibrationDataError, match=match):
        load_calibration_data(npz(tmp_path, **arrays), [IMAGE], batch_size=2)


def test_sample_counts_must_agree(tmp_path):
    inputs = [IMAGE, NetworkInput("scale", (-1, 8), "float32")]
    path = npz(tmp_path, input=np.zeros((4, 3, 8, 8)), scale=np.zeros((5, 8)))
    with pytest.raises(CalibrationDataError, match="different sample counts"):
        load_calibration_data(path, inputs, batch_size=2)


def test_pickles_are_refused(tmp_path):
    objects = np.empty((2,), dtype=object)
    objects[:] = [{"a": 1}, {"b": 2}]
    np.save(tmp_path / "input.npy", objects, allow_pickle=True)
    with pytest.raises(CalibrationDataError, match="pickled"):
        load_calibration_data(tmp_path, [IMAGE], batch_size=1)
    path = tmp_path / "p.npz"
    np.savez(path, input=objects)
    with pytest.raises(CalibrationDataError, match="pickled"):
        load_calibration_data(path, [IMAGE], batch_size=1)


def test_paths(tmp_path):
    with pytest.raises(CalibrationDataError, match="does not exist"):
        load_calibration_data(tmp_path / "missing.npz", [IMAGE], batch_size=1)
    np.save(tmp_path / "single.npy", np.zeros((2, 3, 8, 8)))
    with pytest.raises(CalibrationDataError, match="single .npy"):
        load_calibration_data(tmp_path / "single.npy", [IMAGE], batch_size=1)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CalibrationDataError, match="no .npy files"):
        load_calibration_data(empty, [IMAGE], batch_size=1)
