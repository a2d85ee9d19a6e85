"""Accuracy and calibration data are untrusted files: numpy arrays with pickled objects
(which numpy can only read by running code from the file) are refused, never unpickled.

`trtops validate` / `plan` refuse them at their manifest line (tests/security/
test_adversarial_manifests.py); these tests cover the loaders that run at build and check
time, in case a file is replaced after validation, and apply end to end. Every payload
here creates a directory when unpickled, so "refused" also means "nothing ran".
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from apply_helpers import PLATFORM, make_project, trtops

MARKER = "PWNED"


class Payload:
    def __init__(self, where: Path) -> None:
        self.where = where

    def __reduce__(self):
        return (os.mkdir, (str(self.where / MARKER),))


def pickled_npz(path: Path, where: Path, name: str = "input") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **{name: np.array([Payload(where)], dtype=object)})
    return path


def pickled_npy_dir(directory: Path, where: Path, name: str = "input") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    np.save(directory / f"{name}.npy", np.array([Payload(where)], dtype=object), allow_pickle=True)
    return directory


def raw_pickle(path: Path, where: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps({"input": Payload(where)}))
    return path


def test_the_payloads_would_run_if_unpickled(tmp_path: Path) -> None:
    """Otherwise the tests below would prove nothing."""
    path = pickled_npz(tmp_path / "x.npz", tmp_path)
    with np.load(path, allow_pickle=True) as archive:
        archive["input"]
    assert (tmp_path / MARKER).is_dir()


@pytest.mark.parametrize("make", [pickled_npz, raw_pickle, pickled_npy_dir],
                         ids=["npz-object-array", "raw-pickle-named-npz", "npy-dir"])
def test_accuracy_data_with_pickles_is_refused(make, tmp_path: Path) -> None:
    from trtops.errors import InputError
    from trtops.gate.inputs import load_user_inputs

    target = tmp_path / ("data" if make is pickled_npy_dir else "data.npz")
    make(target, tmp_path)
    with pytest.raises(InputError, match="pickled"):
        load_user_inputs(target)
    assert not (tmp_path / MARKER).exists()


@pytest.mark.parametrize("make", [pickled_npz, raw_pickle, pickled_npy_dir],
                         ids=["npz-object-array", "raw-pickle-named-npz", "npy-dir"])
def test_calibration_data_with_pickles_is_refused(make, tmp_path: Path) -> None:
    from trtops.trt.calibration import (
        CalibrationDataError,
        NetworkInput,
        load_calibration_data,
    )

    target = tmp_path / ("calib" if make is pickled_npy_dir else "calib.npz")
    make(target, tmp_path)
    with pytest.raises(CalibrationDataError, match="pickle"):
        load_calibration_data(target, [NetworkInput("input", (-1, 3, 8, 8), "float32")], 1)
    assert not (tmp_path / MARKER).exists()


def test_calibration_data_that_is_a_broken_zip_is_a_clear_error(tmp_path: Path) -> None:
    from trtops.trt.calibration import (
        CalibrationDataError,
        NetworkInput,
        load_calibration_data,
    )

    path = tmp_path / "calib.npz"
    path.write_bytes(b"PK\x03\x04" + b"\0" * 64)  # a zip header and nothing behind it
    with pytest.raises(CalibrationDataError, match="cannot read calibration data"):
        load_calibration_data(path, [NetworkInput("input", (-1, 3, 8, 8), "float32")], 1)


ACCURACY = """
    accuracy:
      data: data/acc.npz
"""


def test_apply_with_pickled_accuracy_data_refuses_at_the_manifest_line(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    project = make_project(tmp_path)
    manifest = project / "manifests" / "demo.yaml"
    text = manifest.read_text().replace("    loaders: [python, triton]\n",
                                        "    loaders: [python, triton]" + ACCURACY)
    manifest.write_text(text)
    pickled_npz(project / "manifests" / "data" / "acc.npz", project)
    result = trtops(project, "apply", "--no-emit")
    assert result.returncode == 1, result.stdout + result.stderr
    line = text.splitlines().index("      data: data/acc.npz") + 1
    assert f"demo.yaml:{line}:" in result.stderr and "pickled" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (project / MARKER).exists()
    assert not (project / "cache" / "engines").exists()


def test_data_swapped_for_a_pickle_after_planning_is_refused_at_check_time(tmp_path: Path) -> None:
    """A saved plan applied after the data file was replaced: the accuracy check's loader
    refuses the file; the engine is not published."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("polygraphy")
    project = make_project(tmp_path)
    manifest = project / "manifests" / "demo.yaml"
    manifest.write_text(manifest.read_text().replace(
        "    loaders: [python, triton]\n", "    loaders: [python, triton]" + ACCURACY))
    data = project / "manifests" / "data" / "acc.npz"
    data.parent.mkdir(parents=True)
    np.savez(data, input=np.random.default_rng(0).standard_normal((1, 3, 16, 16)).astype(np.float32))
    saved = trtops(project, "plan", *PLATFORM, "-o", "plan.json")
    assert saved.returncode == 0, saved.stderr
    pickled_npz(data, project)
    result = trtops(project, "apply", "plan.json", "--no-emit", "--keep-going", "--json")
    assert result.returncode == 1, result.stdout + result.stderr
    engines = {e["id"]: e for e in json.loads(result.stdout)["engines"]}
    for engine_id in ("demo/conv/fp32/lab", "demo/conv/fp16/lab"):
        assert engines[engine_id]["status"] == "invalid"
        assert "pickled" in engines[engine_id]["message"]
        key = engines[engine_id]["key"]
        assert not (project / "cache" / "engines" / key[:2] / key).exists()
    assert engines["demo/heavy/fp32/lab"]["status"] == "built"
    assert not (project / MARKER).exists()
    assert "Traceback" not in result.stderr
