"""Names from an ONNX model reach the terminal escaped and in bounded amounts.

A model is untrusted input: its input names may carry ESC sequences (clear the screen,
write the clipboard) or bidi overrides that make a message read differently from what it
says, and it may have thousands of inputs. `trtops validate`'s hint lists the model's
inputs: it must show escapes, and a few names with a count.
"""

from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from helpers import make_multi_input_model, write_manifest
from trtops.cli import main

MANIFEST = """\
version: 1
targets: {lab: {gpu: any}}
models:
  - name: m
    source: model.onnx
    precisions: [fp16]
    profiles:
      - nope: {min: [1], opt: [1], max: [1]}
"""


def _validate(tmp_path: Path) -> tuple[int, str]:
    write_manifest(tmp_path, MANIFEST)
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(["validate", str(tmp_path / "m.yaml")])
    return code, out.getvalue() + err.getvalue()


@pytest.fixture(autouse=True)
def _here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def test_hostile_input_names_are_escaped(tmp_path: Path) -> None:
    make_multi_input_model(tmp_path / "model.onnx", {
        "clear\x1b[2J\x1b[Hscreen": [1], "clip\x1b]52;c;ZWNobyBoaQ==\x07board": [1],
        "txt.\u202eexe": [1],
    })
    code, text = _validate(tmp_path)
    assert code == 1
    assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text, repr(text)
    assert "clear\\x1b[2J" in text and "\\u202e" in text


def test_a_model_with_5000_inputs_prints_a_short_hint(tmp_path: Path) -> None:
    make_multi_input_model(tmp_path / "model.onnx", {f"input_{i:04d}": [1] for i in range(5000)})
    code, text = _validate(tmp_path)
    assert code == 1
    assert "... and 4990 more" in text
    assert len(text) < 2000, len(text)
