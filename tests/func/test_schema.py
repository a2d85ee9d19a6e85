"""`trtops schema`: a JSON Schema editors can use, with a description on every field."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from trtops.cli import main
from trtops.manifest.load import parse_yaml

jsonschema = pytest.importorskip("jsonschema")

MANIFEST = """
# yaml-language-server: $schema=trtops-manifest.schema.json
version: 1
defaults: {workspace: 4GiB, timing_cache: off}
targets:
  h100: {gpu: "NVIDIA H100*", tensorrt: ">=10.13,<10.14"}
  l4: {compute_capability: "8.9"}
x-notes: {anything: [goes]}
models:
  - name: conv
    source: models/conv.onnx
    precisions: [fp16, int8]
    workspace: 67108864
    calibration: {data: data/calib.npz}
    profiles:
      - input: {min: [1, 3, 64, 64], opt: [1, 3, 128, 128], max: [4, 3, 256, 256]}
    accuracy:
      tolerances:
        fp16: {atol: 1e-2, stat: quantile, quantile: 0.99, outputs: {out: {rtol: 0.1}}}
      inputs: {seed: 3, ranges: {input: [0, 1], other: {low: -1, high: 1}}}
    loaders: [python, triton]
  - name: remote
    source: {url: "https://example.com/m.onnx", sha256: "%s"}
    precisions: [fp32]
    targets: [l4]
""" % ("ab" * 32)


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    result = subprocess.run([sys.executable, "-m", "trtops", "schema"], capture_output=True,
                            text=True, check=True, timeout=60)
    return json.loads(result.stdout)


def _properties(node: Any, path: str = "#") -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        for name, prop in (node.get("properties") or {}).items():
            if isinstance(prop, dict):
                found.append((f"{path}/properties/{name}", prop))
        for key, value in node.items():
            found.extend(_properties(value, f"{path}/{key}"))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.extend(_properties(value, f"{path}/{index}"))
    return found


def test_header(schema: dict[str, Any]) -> None:
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] and schema["title"] == "trtops manifest"
    assert schema["description"]
    assert set(schema["required"]) == {"version", "targets", "models"}
    jsonschema.Draft202012Validator.check_schema(schema)


def test_every_property_has_a_description(schema: dict[str, Any]) -> None:
    properties = _properties(schema)
    assert len(properties) > 40
    missing = [path for path, prop in properties if not str(prop.get("description", "")).strip()]
    assert not missing, missing


def test_every_model_has_a_description(schema: dict[str, Any]) -> None:
    missing = [name for name, definition in schema["$defs"].items() if not definition.get("description")]
    assert not missing, missing


def test_valid_manifest_passes_the_schema(schema: dict[str, Any]) -> None:
    data, _ = parse_yaml(MANIFEST, "m.yaml")
    errors = [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(data)]
    assert not errors, errors


@pytest.mark.parametrize("old, new", [
    ("workspace: 4GiB", "worksapce: 4GiB"),
    ("[fp16, int8]", "[fp16, int9]"),
    ("version: 1", "version: 2"),
    ("name: conv", "name: a-b"),
    ("workspace: 67108864", "workspace: lots"),
    ("loaders: [python, triton]", "loaders: python"),
    ("{seed: 3,", "{seed: 3, bogus: 1,"),
    ('compute_capability: "8.9"', "compute_capability: 8.9"),
    ("workspace: 4GiB", "workspace: 4G"),
    ("workspace: 4GiB", "workspace: 4gib"),
    ("x-notes:", "y-notes:"),
])
def test_invalid_manifest_fails_the_schema(schema: dict[str, Any], old: str, new: str) -> None:
    assert old in MANIFEST
    data, _ = parse_yaml(MANIFEST.replace(old, new, 1), "m.yaml")
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(data))


def test_output_file(tmp_path: Path, schema: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "sub" / "trtops-manifest.schema.json"
    assert main(["schema", "-o", str(target)]) == 0
    assert json.loads(target.read_text()) == schema
    assert "wrote" in capsys.readouterr().err


def test_unwritable_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "file").write_text("")
    assert main(["schema", "-o", str(tmp_path / "file" / "x.json")]) == 1
    assert "cannot write" in capsys.readouterr().err


def test_committed_schema_file_is_current():
    """Editors read trtops-manifest.schema.json from the repo: it must match the code."""
    import json
    from pathlib import Path

    from trtops.ops.schema import manifest_json_schema

    committed = Path(__file__).resolve().parents[2] / "trtops-manifest.schema.json"
    assert json.loads(committed.read_text()) == manifest_json_schema(), (
        "run `trtops schema -o trtops-manifest.schema.json`"
    )
