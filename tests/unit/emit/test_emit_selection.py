"""`trtops emit`'s selection of engines (trtops.ops.emit): filters by model, precision and
target on the parsed engine id."""

from __future__ import annotations

from trtops.ops.emit import EngineFilter


def test_empty_filter_keeps_every_engine_id():
    assert EngineFilter().keeps("demo/tiny/fp16/h100")
    assert not EngineFilter().keeps("not/an/engine-id")  # three parts only


def test_each_filter_narrows_on_its_own_part():
    only = EngineFilter(models=("tiny",), precisions=("fp16", "int8"), targets=("h100",))
    assert only.keeps("demo/tiny/fp16/h100")
    assert only.keeps("other/tiny/int8/h100")
    assert not only.keeps("demo/big/fp16/h100")
    assert not only.keeps("demo/tiny/fp32/h100")
    assert not only.keeps("demo/tiny/fp16/l4")
