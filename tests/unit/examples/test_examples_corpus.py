"""The real-model corpus fetch step (trtops/examples/corpus.py) and its manifest."""

from __future__ import annotations

import zipfile
from pathlib import Path

from trtops.examples import corpus
from trtops.examples.files import sha256_file

REPO = Path(__file__).resolve().parents[3]


def test_at_least_eight_models_from_several_packages():
    assert len(corpus.CORPUS) >= 8
    assert len(set(corpus.FILENAMES.values())) == len(corpus.CORPUS)
    assert len({m.pip_name for m in corpus.CORPUS}) >= 4
    command = corpus.pip_command()
    assert command.startswith("pip install --no-deps ") and "silero-vad==6.2.3" in command


def test_fetch_from_a_wheelhouse(tmp_path, capsys):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    model = next(m for m in corpus.CORPUS if m.name == "magika")
    with zipfile.ZipFile(wheels / "magika-1.0.3-py3-none-manylinux_2_28_x86_64.whl", "w") as archive:
        archive.writestr(f"{model.package}/{model.member}", b"not really onnx")
    dest = tmp_path / "models"
    assert corpus.fetch(dest, wheels, only=["magika"]) == 0
    copied = dest / "magika.onnx"
    assert copied.read_bytes() == b"not really onnx"
    assert "not the bytes of magika 1.0.3" in capsys.readouterr().out  # sha256 differs: said, not refused
    assert corpus.fetch(dest, wheels, only=["magika"]) == 0
    assert "up to date" in capsys.readouterr().out
    assert sha256_file(copied)


def test_missing_package_is_exit_5_with_the_pip_command(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(corpus, "copy_packaged", _missing)
    assert corpus.fetch(tmp_path, None, only=["nudenet_320n"]) == 5
    assert "pip install --no-deps" in capsys.readouterr().err


def _missing(model, dest, source=None):
    from trtops.errors import EnvironmentMissing

    raise EnvironmentMissing(f"{model.pip_name} is not installed")


def test_the_corpus_manifest_is_valid():
    from trtops.ops.validate import validate

    result = validate([str(REPO / "manifests" / "corpus")], check_models=False)
    assert result.errors == [] and result.valid[0].engines == 16
