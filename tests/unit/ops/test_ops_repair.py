"""trtops.ops.repair's --write: the manifest edited in place, or a clear input error."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest
from helpers import make_overflow_model

from trtops.errors import InputError
from trtops.ops.repair import _patch

MANIFEST = """\
version: 1
targets:
  lab: {gpu: any}
models:
  - name: chain
    source: chain.onnx
    precisions: [fp16]
"""


@pytest.fixture
def manifest(tmp_path):
    make_overflow_model(tmp_path / "chain.onnx")
    path = tmp_path / "m.yaml"
    path.write_text(MANIFEST)
    return path


def test_write_edits_the_manifest_and_keeps_its_mode(manifest):
    manifest.chmod(0o640)
    diff, written = _patch(SimpleNamespace(manifest=str(manifest), model="chain"),
                           {"keep_fp32": ["overflow"]}, write=True)
    assert written == str(manifest) and "+    keep_fp32: [overflow]" in diff
    assert "keep_fp32: [overflow]" in manifest.read_text()
    assert manifest.stat().st_mode & 0o777 == 0o640


def test_a_manifest_that_cannot_be_written_is_an_input_error_not_a_crash(manifest):
    # the temporary file's name taken by a folder: the write fails as on a read-only checkout
    (manifest.parent / f".m.yaml.{os.getpid()}.tmp").mkdir()
    with pytest.raises(InputError, match="m.yaml: cannot write the repaired keep_fp32 list") as raised:
        _patch(SimpleNamespace(manifest=str(manifest), model="chain"), {"keep_fp32": ["overflow"]}, write=True)
    assert raised.value.exit_code == 1 and "without --write" in raised.value.hint
    assert manifest.read_text() == MANIFEST
