"""``python -m trtops.examples``: makes what is asked, skips what is up to date."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from trtops.examples import cli, ppocr
from trtops.examples.files import sha256_file
from trtops.examples.models import make_tiny_cnn


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def no_ppocr(monkeypatch: pytest.MonkeyPatch) -> ppocr.PackagedModel:
    """A PP-OCR entry whose package cannot be installed here, whatever the environment."""
    missing = ppocr.PackagedModel(
        name="ppocr_det", package="trtops_no_such_package_x", pip_name="no-such-package",
        member="models/det.onnx", filename="det.onnx", sha256="0" * 64, version="0")
    monkeypatch.setitem(ppocr.PACKAGED, "ppocr_det", missing)
    return missing


def test_only_selected_then_up_to_date(tmp_path: Path, capsys, no_ppocr):
    dest = tmp_path / "manifests" / "models"
    code, out, _ = _run(capsys, "--dest", str(dest), "--only", "tiny_cnn", "tiny_cnn_calib")
    assert code == 0
    assert (dest / "tiny_cnn.onnx").is_file()
    assert (tmp_path / "manifests" / "data" / "tiny_cnn_calib.npz").is_file()
    assert sorted(p.name for p in dest.iterdir()) == ["tiny_cnn.onnx"]
    assert out.count("wrote") == 2

    code, out, _ = _run(capsys, "--dest", str(dest), "--only", "tiny_cnn", "tiny_cnn_calib")
    assert code == 0 and "wrote" not in out and out.count("up to date") == 2


def test_all_small_and_external(tmp_path: Path, capsys, no_ppocr):
    dest = tmp_path / "models"
    code, out, _ = _run(capsys, "--dest", str(dest), "--data-dest", str(tmp_path / "d"),
                        "--only", "two_inputs", "tiny_qdq", "tiny_seg", "tiny_external")
    assert code == 0
    assert sorted(p.name for p in dest.iterdir()) == [
        "tiny_external.onnx", "tiny_external.onnx.data", "tiny_qdq.onnx", "tiny_seg.onnx",
        "two_inputs.onnx"]
    assert "tiny_external.onnx.data" in out
    assert not (tmp_path / "d").exists()


def test_list_and_unknown_names(tmp_path: Path, capsys, no_ppocr):
    code, out, _ = _run(capsys, "--list", "--dest", str(tmp_path))
    assert code == 0
    for name in ("resnet50", "fcn_resnet", "tiny_cnn", "tiny_cnn_calib", "ppocr_det"):
        assert name in out
    assert not any(tmp_path.iterdir())

    code, _, err = _run(capsys, "--dest", str(tmp_path), "--only", "tiny_cnnn")
    assert code == 1 and "unknown example 'tiny_cnnn'" in err


def test_missing_package_is_a_note_unless_required(tmp_path: Path, capsys, no_ppocr):
    code, out, _ = _run(capsys, "--dest", str(tmp_path), "--only", "tiny_cnn")
    assert code == 0 and "det.onnx" not in out  # not selected: not mentioned

    code, out, err = _run(capsys, "--dest", str(tmp_path), "--from-package", "--only", "tiny_cnn")
    assert code == 5
    assert "--download" in err and "--wheel FILE" in err

    code, _, err = _run(capsys, "--dest", str(tmp_path), "--only", "ppocr_det")
    assert code == 5 and "not installed" in err


def test_copies_detector_from_an_installed_package(tmp_path: Path, capsys, monkeypatch):
    # A stand-in package with the layout of rapidocr_onnxruntime.
    site = tmp_path / "site"
    models = site / "rapidocr_onnxruntime" / "models"
    models.mkdir(parents=True)
    (site / "rapidocr_onnxruntime" / "__init__.py").write_text("raise ImportError('never imported')\n")
    make_tiny_cnn(models / "ch_PP-OCRv4_det_infer.onnx")
    monkeypatch.syspath_prepend(str(site))

    dest = tmp_path / "models"
    code, out, _ = _run(capsys, "--dest", str(dest), "--only", "ppocr_det")
    assert code == 0 and "copied" in out
    assert "sha256 differs" in out  # a stand-in, not the real detector
    copied = dest / "ch_PP-OCRv4_det_infer.onnx"
    assert sha256_file(copied) == sha256_file(models / "ch_PP-OCRv4_det_infer.onnx")

    code, out, _ = _run(capsys, "--dest", str(dest), "--from-package", "--only", "ppocr_det")
    assert code == 0 and "up to date" in out


def test_packaged_detector_facts():
    assert ppocr.PPOCR_DET.pip_name == "rapidocr-onnxruntime"
    assert ppocr.PPOCR_DET.member == "models/ch_PP-OCRv4_det_infer.onnx"
    assert len(ppocr.PPOCR_DET.sha256) == 64


def test_module_entry_point(tmp_path: Path):
    result = subprocess.run(
        [sys.executable, "-m", "trtops.examples", "--dest", str(tmp_path / "m"), "--only",
         "tiny_seg", "-q"],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert (tmp_path / "m" / "tiny_seg.onnx").is_file()


def test_default_dest_needs_the_repository_root(tmp_path: Path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = _run(capsys, "--only", "tiny_cnn")
    assert code == 1 and "repository root" in err
    assert not any(tmp_path.iterdir())


def _stand_in_wheel(directory: Path, model: ppocr.PackagedModel, onnx_file: Path) -> Path:
    """A wheel of ``model``'s package holding ``onnx_file`` at the packaged path (what
    ``pip download`` would fetch), with the metadata pip reads."""
    import zipfile

    dist = model.pip_name.replace("-", "_")
    wheel = directory / f"{dist}-{model.version}-py3-none-any.whl"
    info = f"{dist}-{model.version}.dist-info"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.write(onnx_file, f"{model.package}/{model.member}")
        archive.writestr(f"{model.package}/__init__.py", "")
        archive.writestr(f"{info}/METADATA",
                         f"Metadata-Version: 2.1\nName: {model.pip_name}\nVersion: {model.version}\n")
        archive.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        archive.writestr(f"{info}/RECORD", "")
    return wheel


def test_takes_the_detector_out_of_a_wheel_without_installing_it(tmp_path: Path, capsys, no_ppocr):
    make_tiny_cnn(tmp_path / "det.onnx")
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    wheel = _stand_in_wheel(wheels, no_ppocr, tmp_path / "det.onnx")
    dest = tmp_path / "models"
    code, out, err = _run(capsys, "--dest", str(dest), "--only", "ppocr_det", "--wheel", str(wheel))
    assert code == 0, err
    assert "copied" in out and sha256_file(dest / "det.onnx") == sha256_file(tmp_path / "det.onnx")
    code, out, _ = _run(capsys, "--dest", str(dest), "--only", "ppocr_det", "--wheel", str(wheel))
    assert code == 0 and "up to date" in out

    code, _, err = _run(capsys, "--dest", str(dest), "--only", "ppocr_det", "--wheel", str(tmp_path / "det.onnx"))
    assert code == 1 and "not a readable wheel" in err


def test_download_fetches_the_wheel_with_pip_and_installs_nothing(tmp_path: Path, capsys, no_ppocr, monkeypatch):
    """`--download` runs `pip download --no-deps`; here pip finds the wheel in a local
    directory (PIP_NO_INDEX, PIP_FIND_LINKS) instead of PyPI."""
    make_tiny_cnn(tmp_path / "det.onnx")
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    _stand_in_wheel(wheels, no_ppocr, tmp_path / "det.onnx")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    dest = tmp_path / "models"
    code, out, err = _run(capsys, "--dest", str(dest), "--only", "tiny_cnn", "ppocr_det", "--download")
    assert code == 0, err
    assert sha256_file(dest / "det.onnx") == sha256_file(tmp_path / "det.onnx")
    assert ppocr.find_packaged(no_ppocr) is None  # nothing was installed

    (wheels / next(wheels.iterdir()).name).unlink()  # no wheel to be had: a clear error, exit 5
    (dest / "det.onnx").unlink()
    code, _, err = _run(capsys, "--dest", str(dest), "--only", "ppocr_det", "--download")
    assert code == 5 and "could not download no-such-package 0" in err and "--wheel FILE" in err
