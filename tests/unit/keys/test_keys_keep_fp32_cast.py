"""keep_fp32 enters the preparation stage's cast (TensorRT 11): the kept lists join the
``prepare`` component only where a cast applies and they are not empty, so every 8.6/10.x key
and every 11.x key without keep lists stays what it was, and two engines with different lists
never share a cast model."""

from __future__ import annotations

from dataclasses import replace

import pytest

from trtops.keys.engine_key import engine_key
from trtops.keys.model_digest import ModelDigest
from trtops.prepare import options
from trtops.prepare.options import (
    KeepLists,
    keep_of,
    prepare_component,
    steps_on,
    without_cast,
)
from trtops.prepare.runner import prepared_chain
from trtops.spec import PrepareSpec, TargetSpec, make_engine_spec

MODEL = ModelDigest.of("a" * 64, [("m.onnx.data", "b" * 64)], 100)
GPU = "cc9.0-nvidia-h100-80gb-hbm3"
TARGET = TargetSpec("h100", "NVIDIA H100*", None, "", "none", False)
PROFILE = [{"input": ((1, 3, 32, 32), (8, 3, 64, 64), (16, 3, 128, 128))}]
KEEP = ["overflow", "scale_*"]

# (TensorRT, precision, keep_fp32 set, prepare: {}) -> key, computed at the commit before
# keep_fp32 entered the cast (655754f), tool versions pinned below. Left out: the 11.x keys
# with keep lists, which must change (those engines were built without the nodes kept).
BEFORE = {
    ('8.6.0', 'fp16', False, False): "0f25f1cc8cb4388d224b73635a8899be14637affa5e33c73eb6bf72b6f4c0e2b",
    ('8.6.0', 'fp16', False, True): "3b583e9870178592a10b57674428f43189413e2cd474030a770cadd5be6313fc",
    ('8.6.0', 'fp16', True, False): "a1c7388da2e26d1e6f7015de839b0b03cc1179890b17f18f822b1b2540cad0e8",
    ('8.6.0', 'fp16', True, True): "4d6b6641f5c2dd3b48e140268646186409e4c8da15e55813e9435b253011908c",
    ('10.13.3.9', 'fp16', False, False): "41664e01352e2955448aabd0cc9b0f08cf50a038e4ec1dca8b54f260239c5e16",
    ('10.13.3.9', 'fp16', False, True): "6c6f0bd70ca2692a99660d873c273775345c5e4681fcbdf7e3a2c23f656fdee9",
    ('10.13.3.9', 'fp16', True, False): "210ff838cee5d432c019cfd31c75ddd787a075a3ad4fe3b3727bfd7bbf642474",
    ('10.13.3.9', 'fp16', True, True): "84f54752dde9d6654db8d5e59113aa04aaccf5fda5579583aca0a3e5ba5083a7",
    ('10.13.3.9', 'bf16', False, False): "f7deac78100709f0be8d649e6bad66d41176742df496f7b5a9a8b145d240c715",
    ('10.13.3.9', 'bf16', False, True): "50126a221acd0af17447ad5072f33e92e4fd97271cb19b57b79ba234b13c2d8c",
    ('10.13.3.9', 'bf16', True, False): "a1186ef8994b9c0fc743b1ccb662adec04a779d1d7e91353b7e84ad890c51b91",
    ('10.13.3.9', 'bf16', True, True): "3aef55718844043e61467ddf91915e5d272a29e272bb0f885ec3e2906213d19f",
    ('11.0.0', 'fp16', False, False): "bf1293f9003058cf02e48d821162cdd82870fc42a5215853261afcf78038e50b",
    ('11.0.0', 'fp16', False, True): "bd293d63604dd83cc54555111a64f04ed6fb15878899362123970c8105597b3a",
    ('11.0.0', 'bf16', False, False): "6a4e53cc8f348b2ed02d85bb5d4540bbf564855750fcadbc8578f9e644b9e37e",
    ('11.0.0', 'bf16', False, True): "922febac2c46e7abaaa5c432da4742bfe37072ed72011830040b3b4de97385c8",
}


@pytest.fixture(autouse=True)
def _pinned_tools(monkeypatch):
    monkeypatch.setattr(options, "tool_version", lambda name: {"onnx": "1.16.0", "onnx-graphsurgeon": "0.5.2"}[name])


def key_for(tensorrt: str, precision: str, keep: bool, prepared: bool, **build):
    spec = make_engine_spec("/m/m.onnx", precision, profiles=PROFILE, target=TARGET, name="m",
                            manifest="/m/demo.yaml", manifest_name="demo", keep_fp32=KEEP if keep else [], **build)
    if prepared:
        spec = replace(spec, prepare=PrepareSpec())
    return engine_key(spec, MODEL, tensorrt_version=tensorrt, gpu=GPU)


@pytest.mark.parametrize("case", sorted(BEFORE), ids=lambda c: "-".join(map(str, c)))
def test_keys_without_a_cast_or_without_keep_lists_are_unchanged(case):
    assert key_for(*case).key == BEFORE[case]


def test_weakly_typed_keys_carry_no_prepare_keep_step():
    for tensorrt in ("8.6.0", "10.13.3.9"):
        component = key_for(tensorrt, "fp16", True, True).components["prepare"]
        assert "cast" not in component["steps"] and "cast_keep_fp32" not in component["steps"]


def test_tensorrt_11_cast_component_names_the_lists_and_the_reference_drops_them():
    fp16 = key_for("11.0.0", "fp16", True, True).components["prepare"]
    assert fp16["steps"]["cast"] == "fp16"
    assert fp16["steps"]["cast_keep_fp32"] == {"nodes": ["overflow", "scale_*"]}
    assert keep_of(fp16) == KeepLists(("overflow", "scale_*"))
    # the gate's reference (the uncast prepared model) is the same with or without the lists
    assert without_cast(fp16) == without_cast(key_for("11.0.0", "fp16", False, True).components["prepare"])
    # strongly typed 10.x casts too, so it keeps them too
    strong = key_for("10.13.3.9", "fp16", True, False, strongly_typed=True).components["prepare"]
    assert keep_of(strong) == KeepLists(("overflow", "scale_*"))


def test_different_keep_lists_never_share_a_cast_model():
    a = prepare_component(None, "fp16", KeepLists(("overflow",)))
    b = prepare_component(None, "fp16", KeepLists(("overflow", "scale_down")))
    c = prepare_component(None, "fp16", KeepLists((), ("overflow",)))
    plain = prepare_component(None, "fp16")
    cast_digests = {prepared_chain("d" * 64, x)[-1] for x in (a, b, c, plain)}
    assert len(cast_digests) == 4
    # with prepare: steps, the uncast model (first in the chain) is shared
    spec = PrepareSpec()
    chains = [prepared_chain("d" * 64, prepare_component(spec, "fp16", k))
              for k in (KeepLists(("overflow",)), KeepLists(("scale_down",)))]
    assert chains[0][0] == chains[1][0] and chains[0][1] != chains[1][1]
    # the lists count only with a cast
    assert prepare_component(spec, None, KeepLists(("overflow",))) == prepare_component(spec)
    assert prepare_component(None, None, KeepLists(("overflow",))) is None


def test_plan_words_for_the_kept_nodes():
    assert steps_on(None, "fp16", KeepLists(("overflow", "scale_down"))) == [
        "cast to fp16 keeping 2 nodes in fp32 (overflow, scale_down) (strongly typed build: inputs and outputs "
        "keep their types)"]
    assert KeepLists(("a*",), ("y",)).text() == "the nodes of a*, output y in fp32"
