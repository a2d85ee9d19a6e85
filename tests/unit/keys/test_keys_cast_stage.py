"""Moving TensorRT 11's fp16/bf16 cast into the preparation stage keeps every 8.6 and 10.x
key as it was (no cast there), and gives 11.x cast builds a key per cast."""

from __future__ import annotations

import pytest

from trtops.keys.engine_key import engine_key
from trtops.keys.model_digest import ModelDigest
from trtops.prepare import options
from trtops.spec import PrepareSpec, TargetSpec, make_engine_spec

MODEL = ModelDigest.of("a" * 64, [("m.onnx.data", "b" * 64)], 100)
GPU = "cc9.0-nvidia-h100-80gb-hbm3"
TARGET = TargetSpec("h100", "NVIDIA H100*", None, "", "none", False)
PROFILE = [{"input": ((1, 3, 32, 32), (8, 3, 64, 64), (16, 3, 128, 128))}]

# Computed at the commit before the cast moved (3465f2e), with the tool versions pinned
# below: the refactor must not move one of them.
BEFORE = {
    ('10.13.3.9', 'bf16', False): "f7deac78100709f0be8d649e6bad66d41176742df496f7b5a9a8b145d240c715",
    ('10.13.3.9', 'bf16', True): "50126a221acd0af17447ad5072f33e92e4fd97271cb19b57b79ba234b13c2d8c",
    ('10.13.3.9', 'fp16', False): "41664e01352e2955448aabd0cc9b0f08cf50a038e4ec1dca8b54f260239c5e16",
    ('10.13.3.9', 'fp16', True): "6c6f0bd70ca2692a99660d873c273775345c5e4681fcbdf7e3a2c23f656fdee9",
    ('10.13.3.9', 'fp32', False): "1de30327fb37c66a9a8dcb03f077fac529415b92c929e3c01a0b50fa0fe8a2d8",
    ('10.13.3.9', 'fp8', False): "ff4963cee908c66783a7587043a0e7bd2603eae00b2e0a9be15e38dab7050dfc",
    ('10.13.3.9', 'tf32', False): "ce6dedc5ad757cf2f4a330c76848f4c0c9553afe49423f5db4fba6a80e6b4f94",
    ('8.6.0', 'fp16', False): "0f25f1cc8cb4388d224b73635a8899be14637affa5e33c73eb6bf72b6f4c0e2b",
    ('8.6.0', 'fp16', True): "3b583e9870178592a10b57674428f43189413e2cd474030a770cadd5be6313fc",
    ('8.6.0', 'fp32', False): "fe23a8475668d801ba765b47f0837969a67f520420220d333f37ef197b59ef5c",
    ('8.6.0', 'fp32', True): "88722b7be1aa96c5c3692c515676ecd0fa730cf7352e106d17b0450187c814f8",
    ('8.6.0', 'int8', False): "95ae8c60bead46881be42c0b0b2764c05ab7f0dac0f63d0c7d48dd67cf7dee41",
}


@pytest.fixture(autouse=True)
def _pinned_tools(monkeypatch):
    monkeypatch.setattr(options, "tool_version", lambda name: {"onnx": "1.16.0", "onnx-graphsurgeon": "0.5.2"}[name])


def key_for(tensorrt: str, precision: str, prepared: bool, **build) -> str:
    spec = make_engine_spec("/m/m.onnx", precision, profiles=PROFILE, target=TARGET, name="m",
                            manifest="/m/demo.yaml", manifest_name="demo", **build)
    if prepared:
        from dataclasses import replace

        spec = replace(spec, prepare=PrepareSpec())
    return engine_key(spec, MODEL, tensorrt_version=tensorrt, gpu=GPU).key


@pytest.mark.parametrize("case", sorted(BEFORE), ids=lambda c: f"{c[0]}-{c[1]}-{'prepared' if c[2] else 'plain'}")
def test_keys_of_8_6_and_10_are_unchanged(case):
    assert key_for(*case) == BEFORE[case]



def components_for(tensorrt: str, precision: str, prepared: bool = False, **build) -> dict:
    spec = make_engine_spec("/m/m.onnx", precision, profiles=PROFILE, target=TARGET, name="m",
                            manifest="/m/demo.yaml", manifest_name="demo", **build)
    if prepared:
        from dataclasses import replace

        spec = replace(spec, prepare=PrepareSpec())
    return engine_key(spec, MODEL, tensorrt_version=tensorrt, gpu=GPU).components


def test_tensorrt_11_keys_name_the_cast_per_precision():
    assert "prepare" not in components_for("11.0.0", "fp32")  # nothing to cast: built as it is
    fp16 = components_for("11.0.0", "fp16")["prepare"]
    bf16 = components_for("11.0.0", "bf16")["prepare"]
    assert fp16["steps"] == {"fold_constants": False, "infer_shapes": False, "distinct_dims": False, "cast": "fp16"}
    assert bf16["steps"]["cast"] == "bf16"
    prepared = components_for("11.0.0", "fp16", prepared=True)["prepare"]["steps"]
    assert prepared["cast"] == "fp16" and prepared["fold_constants"] is True
    # The prepared model without the cast is the fp32 one's (same component, same digest).
    from trtops.prepare.options import without_cast

    assert without_cast(components_for("11.0.0", "fp16", prepared=True)["prepare"]) == \
        components_for("11.0.0", "fp32", prepared=True)["prepare"]
    assert without_cast(fp16) is None


def test_strongly_typed_10x_builds_name_their_cast_too():
    # 10.x casts only where strongly_typed: true asks for it (the builder cast there before;
    # these keys changed once, with the cast moving into preparation).
    assert components_for("10.13.3.9", "fp16", strongly_typed=True)["prepare"]["steps"]["cast"] == "fp16"
    assert "prepare" not in components_for("10.13.3.9", "fp16")
    assert "prepare" not in components_for("8.6.0", "fp16")
