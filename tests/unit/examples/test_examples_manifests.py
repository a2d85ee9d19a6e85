"""The example manifests validate against the schema and agree with the generated models."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from trtops.examples.data import DATA_REGISTRY
from trtops.examples.models import REGISTRY
from trtops.manifest.models import Manifest

MANIFESTS = Path(__file__).resolve().parents[3] / "manifests"
NAMES = ["vision.yaml", "lab.yaml", "ocr.yaml"]
SCHEMA_LINE = "# yaml-language-server: $schema=../trtops-manifest.schema.json"


@pytest.mark.parametrize("name", NAMES)
def test_manifest_matches_the_schema(name: str):
    text = (MANIFESTS / name).read_text()
    assert text.splitlines()[0] == SCHEMA_LINE
    manifest = Manifest.model_validate(yaml.safe_load(text))
    assert manifest.models


def test_seed_scenarios():
    vision = Manifest.model_validate(yaml.safe_load((MANIFESTS / "vision.yaml").read_text()))
    models = {m.name: m for m in vision.models}
    resnet, fcn = models["resnet50"], models["fcn_resnet"]
    assert resnet.source.path == "models/resnet50_b64.onnx"
    assert resnet.precisions == ["fp32", "fp16"] and not resnet.profiles
    assert set(resnet.accuracy.tolerances) == {"fp32", "fp16"}
    assert fcn.precisions == ["fp16"] and fcn.workspace == 64 * 2**20
    assert fcn.loaders == ["python", "triton"]
    (profile,) = fcn.profiles
    assert (profile["input"].min, profile["input"].opt, profile["input"].max) == (
        [1, 3, 256, 256], [1, 3, 1026, 1282], [1, 3, 1440, 2560])
    assert vision.targets["h100"].gpu == "NVIDIA H100*"
    assert vision.targets["l4"].compute_capability == "8.9"
    assert vision.targets["lab"].is_any


def test_lab_manifest_covers_the_features():
    lab = Manifest.model_validate(yaml.safe_load((MANIFESTS / "lab.yaml").read_text()))
    models = {m.name: m for m in lab.models}
    assert models["tiny_cnn"].precisions == ["fp32", "fp16", "int8"]
    assert models["tiny_cnn"].calibration.data == "data/tiny_cnn_calib.npz"
    assert len(models["two_inputs"].profiles) == 2
    assert models["tiny_qdq"].precisions == ["int8"] and models["tiny_qdq"].calibration is None
    assert lab.targets["ampere_plus"].hardware_compatibility == "ampere_plus"
    assert "ampere_plus" in models["tiny_cnn_portable"].targets


def _every_source(manifest: Manifest) -> set[str]:
    return {m.source.path for m in manifest.models}


def test_generated_files_are_what_the_manifests_name():
    named = set()
    for name in ("vision.yaml", "lab.yaml"):
        manifest = Manifest.model_validate(yaml.safe_load((MANIFESTS / name).read_text()))
        named |= _every_source(manifest)
        named |= {m.calibration.data for m in manifest.models if m.calibration}
    made = {f"models/{e.filename}" for e in REGISTRY.values()}
    made |= {f"data/{e.filename}" for e in DATA_REGISTRY.values()}
    assert named <= made, named - made


def test_full_check_against_the_generated_models(tmp_path: Path):
    """Copy lab.yaml, make its models next to it, and run every check that reads files
    (profiles against the graph's inputs, Q/DQ, calibration arrays, external data)."""
    collect = pytest.importorskip("trtops.manifest.collect")
    root = tmp_path / "manifests"
    root.mkdir()
    shutil.copy(MANIFESTS / "lab.yaml", root / "lab.yaml")
    from trtops.examples import cli

    assert cli.main(["--dest", str(root / "models"), "-q", "--only", "tiny_cnn", "two_inputs",
                     "tiny_qdq", "tiny_seg", "tiny_external", "tiny_cnn_calib"]) == 0
    _, problems, _ = collect.collect([root], check_models=True, cache_dir=tmp_path / "cache")
    assert [p.render() for p in problems] == []


def test_full_check_of_the_seed_scenarios(tmp_path: Path):
    collect = pytest.importorskip("trtops.manifest.collect")
    root = tmp_path / "manifests"
    root.mkdir()
    shutil.copy(MANIFESTS / "vision.yaml", root / "vision.yaml")
    from trtops.examples import cli

    assert cli.main(["--dest", str(root / "models"), "-q", "--only", "resnet50", "fcn_resnet"]) == 0
    _, problems, _ = collect.collect([root], check_models=True, cache_dir=tmp_path / "cache")
    assert [p.render() for p in problems] == []


def _strings(node):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(key)
            yield from _strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)
    elif isinstance(node, str):
        yield node


@pytest.mark.parametrize("name", NAMES)
def test_numbers_are_numbers_in_yaml_1_1(name: str):
    # PyYAML reads '1e-2' as a string (YAML 1.1 floats need a dot); pydantic would coerce
    # it, editors and JSON-schema validators would not. Examples write 0.01.
    import re

    data = yaml.safe_load((MANIFESTS / name).read_text())
    numeric = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
    strays = [s for s in _strings(data) if numeric.fullmatch(s.strip()) and s != "8.9"]
    assert strays == []


@pytest.mark.parametrize("name", NAMES)
def test_manifest_matches_the_json_schema(name: str):
    jsonschema = pytest.importorskip("jsonschema")
    schema = Manifest.model_json_schema()
    jsonschema.validate(yaml.safe_load((MANIFESTS / name).read_text()), schema)
