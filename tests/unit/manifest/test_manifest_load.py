"""Loading valid manifests: paths, locations, YAML details, url sources, import weight."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from helpers import make_conv_model, make_multi_input_model, write_manifest
from trtops.errors import ManifestError
from trtops.manifest import LoadedManifest, load_paths
from trtops.manifest.load import parse_yaml

VALID = """
# yaml-language-server: $schema=../trtops-manifest.schema.json
version: 1
defaults:
  workspace: 4GiB
  builder_optimization_level: 3
  timing_cache: off          # YAML 1.1 reads this as false; accepted as 'off'
targets:
  h100: {gpu: "NVIDIA H100*", tensorrt: ">=10.13,<10.14"}
  l4:
    compute_capability: "8.9"
    tensorrt: ">=10.13,<10.14"
  lab: {gpu: any}
models:
  - name: conv
    source: models/conv.onnx
    precisions: [fp32, fp16]
    workspace: 64MiB
    profiles:
      - input: {min: [1, 3, 64, 64], opt: [1, 3, 128, 128], max: [4, 3, 256, 256]}
    accuracy:
      tolerances:
        fp16: {atol: 1e-2, rtol: 1e-2, stat: median}
      inputs:
        seed: 7
        ranges: {input: [-1, 1]}
    loaders: [python, triton]
    targets: [h100, lab]
  - name: static
    source: {path: models/static.onnx}
    precisions: [fp16]
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TRTOPS_ALLOW_OUTSIDE_SOURCES", raising=False)
    make_conv_model(tmp_path / "manifests" / "models" / "conv.onnx")
    make_conv_model(tmp_path / "manifests" / "models" / "static.onnx", input_shape=[1, 3, 32, 32])
    write_manifest(tmp_path / "manifests", VALID, "vision.yaml")
    return tmp_path


def test_load_valid_manifest(project: Path) -> None:
    (loaded,) = load_paths(["manifests"])
    assert isinstance(loaded, LoadedManifest)
    assert loaded.path == Path("manifests/vision.yaml")
    assert loaded.name == "vision"
    manifest = loaded.manifest
    assert manifest.defaults.workspace == 4 * 2**30
    assert manifest.defaults.timing_cache == "off"
    assert manifest.targets["l4"].compute_capability == "8.9"
    conv = manifest.models[0]
    assert conv.workspace == 64 * 2**20
    assert conv.accuracy.tolerances["fp16"].atol == pytest.approx(0.01)
    assert conv.accuracy.inputs is not None and conv.accuracy.inputs.ranges["input"].low == -1


def test_locations(project: Path) -> None:
    (loaded,) = load_paths(["manifests/vision.yaml"])
    text = Path("manifests/vision.yaml").read_text().splitlines()

    def line_of(fragment: str) -> int:
        return next(i for i, line in enumerate(text, start=1) if fragment in line)

    assert loaded.location("models", 0).line == line_of("- name: conv")
    assert loaded.location("models", 1).line == line_of("- name: static")
    assert loaded.location("models", 0, "workspace").line == line_of("workspace: 64MiB")
    location = loaded.location("models", 0, "profiles", 0, "input", "max", 2)
    assert (location.line, location.column) == (line_of("- input:"), text[location.line - 1].index("256, 256]") + 1)
    # Defaults have no line: the nearest written node is used.
    assert loaded.location("models", 1, "loaders").line == line_of("- name: static")
    assert loaded.location("models", 0, "accuracy", "tolerances", "fp16", "outputs").line == line_of("fp16: {")
    assert loaded.location().line == line_of("version: 1")  # the top-level mapping
    assert str(loaded.location("version")) == f"manifests/vision.yaml:{line_of('version: 1')}:1"
    assert loaded.written("models", 1, "source", "path")
    assert not loaded.written("models", 0, "source", "path")


def test_directory_sorted_and_deduplicated(project: Path) -> None:
    shutil.copy("manifests/vision.yaml", "manifests/a.yml")
    Path("manifests/a.yml").write_text(Path("manifests/a.yml").read_text()
                                       .replace("name: conv", "name: conv_a")
                                       .replace("name: static", "name: static_a"))
    Path("manifests/notes.txt").write_text("not a manifest")
    loaded = load_paths(["manifests", "manifests/vision.yaml"])
    assert [m.name for m in loaded] == ["a", "vision"]


def test_missing_path_and_empty_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ManifestError) as caught:
        load_paths(["nope.yaml", "empty"])
    messages = [p.render() for p in caught.value.problems]
    assert any("empty: no manifest files" in m for m in messages), messages
    assert any("nope.yaml: no such file" in m for m in messages), messages


def test_merge_keys_and_anchors(project: Path) -> None:
    write_manifest("manifests", """
        version: 1
        targets: {lab: {gpu: any}}
        defaults: &common {workspace: 1GiB}
        models:
          - <<: *common
            name: a
            source: models/static.onnx
            precisions: [fp16]
          - <<: *common
            name: b
            source: models/static.onnx
            precisions: [fp16]
            workspace: 2GiB
    """, "merge.yaml")
    (loaded,) = load_paths(["manifests/merge.yaml"])
    assert [m.workspace for m in loaded.manifest.models] == [2**30, 2 * 2**30]
    assert loaded.location("models", 0, "workspace").line == 3  # where the anchor wrote it
    assert loaded.location("models", 1, "workspace").line == 13


def test_x_prefixed_top_level_keys_hold_anchors_and_are_ignored(project: Path) -> None:
    write_manifest("manifests", """
        version: 1
        x-common: &common {workspace: 1GiB, precisions: [fp16]}
        x-notes: free text the schema ignores
        targets: {lab: {gpu: any}}
        models:
          - <<: *common
            name: a
            source: models/static.onnx
    """, "ext.yaml")
    (loaded,) = load_paths(["manifests/ext.yaml"])
    assert loaded.manifest.models[0].workspace == 2**30
    assert loaded.location("models", 0, "workspace").line == 2  # the anchor under x-common


def test_merge_key_locations(tmp_path: Path) -> None:
    data, index = parse_yaml("base: &b\n  x: 1\n  y: 2\nitem:\n  <<: *b\n  y: 3\n", "f.yaml")
    assert data["item"] == {"x": 1, "y": 3}
    assert index.keys[("item", "y")] == (6, 3)
    assert index.keys[("item", "x")] == (2, 3)  # where the merged value was written


def test_yaml12_floats() -> None:
    data, _ = parse_yaml("a: [1e-3, 5E+2, 2, 0.5, 1_000, '1e-3', 1e]\n", "f.yaml")
    assert data["a"] == [0.001, 500.0, 2, 0.5, 1000, "1e-3", "1e"]


def test_url_source_not_cached_is_not_checked(project: Path) -> None:
    digest = "ab" * 32
    write_manifest("manifests", f"""
        version: 1
        targets: {{lab: {{gpu: any}}}}
        models:
          - name: remote
            source: {{url: "https://models.example.com/m.onnx", sha256: "{digest.upper()}"}}
            precisions: [int8]
    """, "remote.yaml")
    (remote,) = load_paths(["manifests/remote.yaml"])
    assert remote.manifest.models[0].source.sha256 == digest  # normalized to lowercase


def test_url_source_in_cache_is_checked(project: Path) -> None:
    model = make_conv_model(project / "tmp" / "m.onnx")
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    (project / "cache" / "sources").mkdir(parents=True)
    shutil.copy(model, project / "cache" / "sources" / f"{digest}.onnx")
    write_manifest("manifests", f"""
        version: 1
        targets: {{lab: {{gpu: any}}}}
        models:
          - name: remote
            source: {{url: "https://models.example.com/m.onnx", sha256: "{digest}"}}
            precisions: [fp16]
    """, "remote.yaml")
    with pytest.raises(ManifestError, match="problem") as caught:
        load_paths(["manifests/remote.yaml"])
    assert "but no profiles" in caught.value.problems[0].message
    assert load_paths(["manifests/remote.yaml"], cache_dir=project / "elsewhere")
    assert load_paths(["manifests/remote.yaml"], check_models=False)


def test_no_model_checks_skips_file_checks(project: Path) -> None:
    write_manifest("manifests", VALID.replace("models/conv.onnx", "models/missing.onnx"), "vision.yaml")
    with pytest.raises(ManifestError):
        load_paths(["manifests"])
    assert load_paths(["manifests"], check_models=False)
    # Escapes are refused even without model checks: they need no file.
    write_manifest("manifests", VALID.replace("models/conv.onnx", "../conv.onnx"), "vision.yaml")
    with pytest.raises(ManifestError, match="problem"):
        load_paths(["manifests"], check_models=False)


def test_static_model_needs_no_profile_and_unknown_rank(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    make_multi_input_model(tmp_path / "models" / "m.onnx", {"a": [1, 3], "b": [2]})
    make_multi_input_model(tmp_path / "models" / "u.onnx", {"x": None})
    write_manifest(tmp_path, """
        version: 1
        targets: {lab: {gpu: any}}
        models:
          - {name: static, source: models/m.onnx, precisions: [fp32]}
          - name: unknown_rank
            source: models/u.onnx
            precisions: [fp32]
            profiles: [{x: {min: [1, 2], opt: [1, 2], max: [1, 2]}}]
          - name: static_with_profile
            source: models/m.onnx
            precisions: [fp32]
            profiles: [{a: {min: [1, 3], opt: [1, 3], max: [1, 3]}}]
    """)
    assert load_paths(["m.yaml"])


def test_external_data_model_is_read_without_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    make_conv_model(tmp_path / "models" / "ext.onnx", external_data=True)
    write_manifest(tmp_path, """
        version: 1
        targets: {lab: {gpu: any}}
        models:
          - name: ext
            source: models/ext.onnx
            precisions: [fp16]
            profiles: [{input: {min: [1, 3, 8, 8], opt: [1, 3, 8, 8], max: [1, 3, 8, 8]}}]
    """)
    assert load_paths(["m.yaml"])
