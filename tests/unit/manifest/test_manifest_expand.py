"""expand(): one normalized EngineSpec per model x precision x target."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest
from helpers import write_manifest

from trtops.errors import ManifestError
from trtops.keys.engine_key import build_component
from trtops.manifest import DEFAULT_TOLERANCES, LoadedManifest, expand, load_paths
from trtops.manifest.models import PRECISIONS, Manifest
from trtops.spec import EngineSpec, ToleranceSpec

BASE = """
version: 1
defaults:
  workspace: 2GiB
  builder_optimization_level: 4
targets:
  h100: {gpu: "NVIDIA H100*", tensorrt: ">= 10.13, < 10.14", hardware_compatibility: ampere_plus}
  l4: {compute_capability: "8.9", version_compatible: true}
  lab: {gpu: any}
models:
  - name: conv
    source: models/conv.onnx
    precisions: [fp32, fp16, int8]
    calibration: {data: data/calib.npz, batch_size: 4}
    profiles:
      - input: {min: [1, 3, 64, 64], opt: [1, 3, 128, 128], max: [4, 3, 256, 256]}
    loaders: [triton, python]
  - name: small
    source: ./models/small.onnx
    precisions: [fp16]
    workspace: 64MiB
    builder_optimization_level: 5
    timing_cache: read_only
    tactic_sources: [cudnn, cublas]
    targets: [lab, h100]
"""


def _load(tmp: Path, text: str, name: str = "m.yaml") -> list[LoadedManifest]:
    path = write_manifest(tmp, text, name)
    return load_paths([path], check_models=False)


def _specs(tmp: Path, text: str, **kwargs: object) -> list[EngineSpec]:
    return expand(_load(tmp, text), **kwargs)  # type: ignore[arg-type]


def _by_id(specs: list[EngineSpec]) -> dict[str, EngineSpec]:
    return {s.id.split("/", 1)[1]: s for s in specs}


def test_one_spec_per_model_precision_target(tmp_path: Path) -> None:
    specs = _specs(tmp_path, BASE)
    assert [s.id for s in specs] == [
        "m/conv/fp32/h100", "m/conv/fp32/l4", "m/conv/fp32/lab",
        "m/conv/fp16/h100", "m/conv/fp16/l4", "m/conv/fp16/lab",
        "m/conv/int8/h100", "m/conv/int8/l4", "m/conv/int8/lab",
        "m/small/fp16/lab", "m/small/fp16/h100",
    ]
    assert len({s.id for s in specs}) == len(specs)


def test_defaults_are_filled_in_order(tmp_path: Path) -> None:
    specs = _by_id(_specs(tmp_path, BASE))
    conv = specs["conv/fp16/lab"]
    assert conv.build.workspace == 2 * 2**30  # manifest defaults
    assert conv.build.builder_optimization_level == 4
    assert conv.build.tactic_sources is None  # BUILD_DEFAULTS
    assert conv.build.max_aux_streams is None
    assert conv.timing_cache == "shared"
    small = specs["small/fp16/lab"]
    assert small.build.workspace == 64 * 2**20  # the model wins
    assert small.build.builder_optimization_level == 5
    assert small.build.tactic_sources == ("cublas", "cudnn")  # sorted
    assert small.timing_cache == "read_only"
    bare = _by_id(_specs(tmp_path, BASE.replace("  workspace: 2GiB\n  builder_optimization_level: 4\n",
                                                "  max_aux_streams: 2\n")))
    assert bare["conv/fp16/lab"].build.workspace is None
    assert bare["conv/fp16/lab"].build.builder_optimization_level == 3
    assert bare["conv/fp16/lab"].build.max_aux_streams == 2


def test_targets_and_compatibility(tmp_path: Path) -> None:
    specs = _by_id(_specs(tmp_path, BASE))
    h100 = specs["conv/fp16/h100"]
    assert h100.target.name == "h100"
    assert h100.target.gpu == "NVIDIA H100*"
    assert h100.target.tensorrt == ">=10.13,<10.14"  # spaces removed
    assert h100.build.hardware_compatibility == "ampere_plus"
    assert h100.target.hardware_compatibility == "ampere_plus"
    l4 = specs["conv/fp16/l4"]
    assert (l4.target.gpu, l4.target.compute_capability) == (None, "8.9")
    assert l4.build.version_compatible and l4.target.version_compatible
    lab = specs["conv/fp16/lab"]
    assert lab.target.gpu == "any" and lab.target.tensorrt == ""
    assert lab.build.hardware_compatibility == "none" and not lab.build.version_compatible


def test_profiles_sources_and_paths(tmp_path: Path) -> None:
    specs = _by_id(_specs(tmp_path, BASE))
    conv = specs["conv/int8/lab"]
    ((only,),) = conv.build.profiles
    assert (only.name, only.min, only.opt, only.max) == ("input", (1, 3, 64, 64), (1, 3, 128, 128), (4, 3, 256, 256))
    assert conv.source.path == str(tmp_path / "models" / "conv.onnx")
    assert os.path.isabs(specs["small/fp16/lab"].source.path)
    assert specs["small/fp16/lab"].source.path == str(tmp_path / "models" / "small.onnx")
    assert conv.source.url is None and conv.source.sha256 is None
    assert conv.loaders == ("python", "triton")
    assert conv.manifest == str(tmp_path / "m.yaml") and conv.manifest_name == "m"
    assert conv.line == 10 and specs["small/fp16/lab"].line == 17


def test_calibration_only_for_int8(tmp_path: Path) -> None:
    specs = _by_id(_specs(tmp_path, BASE))
    calibration = specs["conv/int8/h100"].build.calibration
    assert calibration is not None
    assert calibration.data == str(tmp_path / "data" / "calib.npz")
    assert (calibration.batch_size, calibration.algorithm, calibration.max_batches) == (4, "entropy", None)
    assert specs["conv/fp16/h100"].build.calibration is None
    # The key holds the data's digest, never its path.
    component = build_component(specs["conv/int8/h100"].build, "c" * 64)
    assert component["calibration"]["data"] == "c" * 64 and str(tmp_path) not in json.dumps(component)


def test_url_source_lives_in_the_cache(tmp_path: Path) -> None:
    digest = "0f" * 32
    text = BASE.replace("source: models/conv.onnx",
                        f'source: {{url: "https://example.com/conv.onnx", sha256: "{digest}"}}')
    loaded = _load(tmp_path, text)
    spec = expand(loaded, cache_dir=tmp_path / "c")[0]
    assert spec.source.path == str(tmp_path / "c" / "sources" / f"{digest}.onnx")
    assert (spec.source.url, spec.source.sha256) == ("https://example.com/conv.onnx", digest)
    default = expand(loaded)[0]
    assert default.source.path == os.path.abspath(Path("cache") / "sources" / f"{digest}.onnx")


@pytest.mark.parametrize("left, right", [
    ("workspace: 64MiB", "workspace: 67108864"),
    ("workspace: 64MiB", "workspace: 64 MiB"),
    ("workspace: 1536MiB", "workspace: 1.5GiB"),
    ("workspace: 1GB", "workspace: 1000000000"),
    ("tactic_sources: [cudnn, cublas]", "tactic_sources: [cublas, cudnn]"),
    ("loaders: [python, triton]", "loaders: [triton, python]"),
    ("source: models/conv.onnx", "source: ./models/../models/conv.onnx"),
    ("source: models/conv.onnx", "source: {path: models/conv.onnx}"),
    ("profiles: [{a: {min: [1], opt: [2], max: [3]}, b: {min: [1], opt: [1], max: [1]}}]",
     "profiles: [{b: {min: [1], opt: [1], max: [1]}, a: {min: [1], opt: [2], max: [3]}}]"),
    ("accuracy: {}", "accuracy: {tolerances: {fp16: {atol: 0.01, rtol: 1e-2, stat: median}}}"),
    ("timing_cache: off", "timing_cache: 'off'"),
    ("builder_optimization_level: 3", "precisions: [fp16]"),  # 3 is the default
])
def test_equal_meanings_give_equal_specs(tmp_path: Path, left: str, right: str) -> None:
    def spec(line: str, name: str) -> EngineSpec:
        fields = {"name": "name: conv", "source": "source: models/conv.onnx", "precisions": "precisions: [fp16]"}
        fields[line.split(":", 1)[0]] = line
        lines = list(fields.values())
        text = ("version: 1\ntargets: {lab: {gpu: any}}\nmodels:\n  - " + lines[0]
                + "".join(f"\n    {item}" for item in lines[1:]) + "\n")
        (only,) = expand(_load(tmp_path, text, name))
        return only

    one, two = spec(left, "a.yaml"), spec(right, "b.yaml")
    assert one.build == two.build
    assert build_component(one.build, "c" * 64) == build_component(two.build, "c" * 64)
    assert dataclasses.replace(one, manifest=two.manifest, manifest_name=two.manifest_name) == two


def test_default_tolerances_cover_every_precision() -> None:
    assert set(DEFAULT_TOLERANCES) == set(PRECISIONS)
    assert DEFAULT_TOLERANCES["fp32"] == ToleranceSpec(atol=1e-4, rtol=1e-3, stat="elemwise")
    # Looser as precision drops.
    order = ["fp32", "tf32", "fp16", "bf16", "int8"]
    atols = [DEFAULT_TOLERANCES[p].atol for p in order]
    assert atols == sorted(atols)


def test_tolerance_defaults_and_overrides(tmp_path: Path) -> None:
    text = """
        version: 1
        targets: {lab: {gpu: any}}
        models:
          - name: conv
            source: models/conv.onnx
            precisions: [fp32, fp16, bf16, int8]
            calibration: {data: calib.npz}
            accuracy:
              tolerances:
                fp16:
                  atol: 0.05
                  stat: quantile
                  quantile: 0.99
                  outputs:
                    scores: {rtol: 0.5}
                    boxes: {stat: max}
                int8: {rtol: 0.2}
    """
    specs = _by_id(expand(_load(tmp_path, text)))
    assert specs["conv/fp32/lab"].accuracy.tolerance == DEFAULT_TOLERANCES["fp32"]
    assert specs["conv/bf16/lab"].accuracy.tolerance == DEFAULT_TOLERANCES["bf16"]
    fp16 = specs["conv/fp16/lab"].accuracy.tolerance
    assert (fp16.atol, fp16.rtol, fp16.stat, fp16.quantile) == (0.05, DEFAULT_TOLERANCES["fp16"].rtol, "quantile", 0.99)
    assert [name for name, _ in fp16.outputs] == ["boxes", "scores"]  # sorted
    scores = fp16.for_output("scores")
    assert (scores.atol, scores.rtol, scores.stat, scores.quantile) == (0.05, 0.5, "quantile", 0.99)
    boxes = fp16.for_output("boxes")
    assert (boxes.atol, boxes.stat, boxes.quantile) == (0.05, "max", None)
    assert fp16.for_output("other") is fp16
    int8 = specs["conv/int8/lab"].accuracy.tolerance
    assert (int8.atol, int8.rtol, int8.stat) == (DEFAULT_TOLERANCES["int8"].atol, 0.2, DEFAULT_TOLERANCES["int8"].stat)


def test_accuracy_settings(tmp_path: Path) -> None:
    text = """
        version: 1
        targets: {lab: {gpu: any}}
        models:
          - name: gen
            source: models/conv.onnx
            precisions: [fp16]
            accuracy:
              iterations: 3
              inputs: {seed: 9, ranges: {z: [0, 10], a: {low: -1, high: 1}}}
          - name: user
            source: models/conv.onnx
            precisions: [fp16]
            accuracy: {enabled: false, data: data/inputs.npz}
    """
    gen, user = expand(_load(tmp_path, text))
    assert (gen.accuracy.enabled, gen.accuracy.seed, gen.accuracy.iterations) == (True, 9, 3)
    assert gen.accuracy.ranges == (("a", -1.0, 1.0), ("z", 0.0, 10.0))
    assert gen.accuracy.data is None and gen.accuracy.reference == "onnxruntime"
    assert not user.accuracy.enabled
    assert user.accuracy.data == str(tmp_path / "data" / "inputs.npz")
    assert user.accuracy.seed == 1 and user.accuracy.ranges == ()


def test_specs_are_hashable_and_serializable(tmp_path: Path) -> None:
    specs = _specs(tmp_path, BASE)
    assert len(set(specs)) == len(specs)
    json.dumps([s.to_json() for s in specs])
    assert _specs(tmp_path, BASE) == specs  # deterministic


def test_unknown_target_outside_load_paths(tmp_path: Path) -> None:
    manifest = Manifest.model_validate({
        "version": 1,
        "targets": {"lab": {"gpu": "any"}},
        "models": [{"name": "m", "source": "m.onnx", "precisions": ["fp16"], "targets": ["nope"]}],
    })
    loaded = LoadedManifest(path=tmp_path / "x.yaml", name="x", manifest=manifest)
    with pytest.raises(ManifestError, match="problem") as caught:
        expand([loaded])
    assert "unknown target 'nope'" in caught.value.problems[0].message


PREPARE = """
version: 1
defaults:
  prepare: {}
targets: {lab: {gpu: any}}
models:
  - name: inherits
    source: a.onnx
    precisions: [fp32]
  - name: binds
    source: a.onnx
    precisions: [fp32]
    prepare: {constants: {sr: 16000, window: [[0.5, 1], [2, 3]]}, opset: 17, distinct_dims: false}
  - name: nothing
    source: a.onnx
    precisions: [fp32]
    prepare: {fold_constants: false, infer_shapes: false, distinct_dims: false}
"""


def test_prepare_is_inherited_replaced_or_nothing(tmp_path: Path) -> None:
    from trtops.plan.model import spec_from_json
    from trtops.spec import BoundInput, PrepareSpec

    path = write_manifest(tmp_path, PREPARE)
    specs = {s.model: s for s in expand(load_paths([str(path)], check_models=False))}
    assert specs["inherits"].prepare == PrepareSpec()
    assert specs["binds"].prepare == PrepareSpec(
        distinct_dims=False, opset=17,
        constants=(BoundInput("sr", (), (16000,)), BoundInput("window", (2, 2), (0.5, 1, 2, 3))))
    assert specs["nothing"].prepare is None  # every step off: no preparation, no key component
    # saved plans carry the preparation (spec -> JSON -> spec)
    for spec in specs.values():
        assert spec_from_json(json.loads(json.dumps(spec.to_json()))) == spec
