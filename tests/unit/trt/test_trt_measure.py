"""trtops.trt.measure without a GPU: settings and cases are checked before TensorRT is
needed (bad ones are user errors naming the case), shapes are completed and matched to a
profile as the loader does, random inputs have the engine's dtypes. The measurement itself
is tests/gpu/test_measure.py."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from trtops.emit.runtime.shapes import IOSpec, TensorSpec
from trtops.errors import EnvironmentMissing, InputError
from trtops.trt.measure import (
    _case_shapes,
    _check_settings,
    _nbytes,
    _random_input,
    measure_engine,
)

SETTINGS = {"warmup": 2, "iterations": 10, "repeats": 3, "cuda_graph": "auto"}

IO = IOSpec(
    [TensorSpec("images", "input", "float32", (-1, 3, 8, 8)),
     TensorSpec("scale", "input", "float32", (1,)),
     TensorSpec("logits", "output", "float32", (-1, 10))],
    [{"images": ((1, 3, 8, 8), (4, 3, 8, 8), (8, 3, 8, 8))},
     {"images": ((16, 3, 8, 8), (32, 3, 8, 8), (64, 3, 8, 8))}],
)


def test_settings_defaults_and_checks():
    checked = _check_settings(SETTINGS)
    assert checked == {**SETTINGS, "device": 0, "version_compatible": False, "max_seconds": None}
    assert _check_settings({**SETTINGS, "max_seconds": 2})["max_seconds"] == 2.0
    assert _check_settings({**SETTINGS, "cuda_graph": "off", "warmup": 0})["cuda_graph"] == "off"


@pytest.mark.parametrize("key, value, words", [
    ("iterations", 0, "'iterations' must be an integer >= 1"),
    ("repeats", 2.5, "'repeats' must be an integer >= 1"),
    ("warmup", -1, "'warmup' must be an integer >= 0"),
    ("warmup", True, "'warmup' must be an integer"),
    ("cuda_graph", "on", "'cuda_graph' must be 'auto' or 'off'"),
    ("max_seconds", 0, "'max_seconds' must be a number > 0"),
    ("max_seconds", float("inf"), "'max_seconds' must be a number > 0"),
    ("max_seconds", "2s", "'max_seconds' must be a number > 0"),
])
def test_bad_settings_are_user_errors(key, value, words):
    with pytest.raises(InputError, match=words):
        _check_settings({**SETTINGS, key: value})


def test_bad_settings_fail_before_tensorrt_is_needed(tmp_path):
    with pytest.raises(InputError):
        measure_engine(tmp_path / "engine.plan", [], {**SETTINGS, "iterations": 0})


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed")
def test_without_tensorrt_the_environment_is_missing(tmp_path):
    with pytest.raises(EnvironmentMissing, match="TensorRT"):
        measure_engine(tmp_path / "engine.plan", [{"label": "opt", "shapes": {}}], SETTINGS)


def test_case_shapes_fill_fixed_inputs_and_pick_the_profile():
    label, shapes, profile = _case_shapes(IO, {"label": "opt", "shapes": {"images": [4, 3, 8, 8]}})
    assert (label, shapes, profile) == ("opt", {"images": (4, 3, 8, 8), "scale": (1,)}, 0)
    assert list(shapes) == ["images", "scale"]  # the engine's order: batch is the first input's
    _, _, profile = _case_shapes(IO, {"label": "big", "shapes": {"images": [32, 3, 8, 8], "scale": [1]}})
    assert profile == 1


@pytest.mark.parametrize("shapes, words", [
    ({"image": [4, 3, 8, 8]}, r"case 'c'.*unknown input 'image' \(did you mean 'images'\?\)"),
    ({}, r"case 'c'.*missing input 'images'"),
    ({"images": [4, 3, 8]}, r"case 'c'.*rank 3"),
    ({"images": [4, 3, 9, 8]}, r"case 'c'.*axis 2 must be 8"),
    ({"images": [12, 3, 8, 8]}, r"case 'c'.*no optimization profile.*axis 0 is 12"),
    ({"images": "4x3x8x8"}, r"case 'c'.*list of integers"),
    ({"images": [4.0, 3, 8, 8]}, r"case 'c'.*list of integers"),
])
def test_case_shapes_the_engine_refuses_are_user_errors(shapes, words):
    with pytest.raises(InputError, match=words):
        _case_shapes(IO, {"label": "c", "shapes": shapes})


def test_random_inputs_have_the_engine_dtype():
    rng = np.random.default_rng(0)
    floats = _random_input(TensorSpec("x", "input", "float16", (2, 3)), (2, 3), rng)
    assert floats.dtype == np.float16 and floats.shape == (2, 3)
    assert 0.0 <= floats.min() and floats.max() < 1.0
    ids = _random_input(TensorSpec("ids", "input", "int64", (-1, 5)), (4, 5), rng)
    assert ids.dtype == np.int64 and set(np.unique(ids)) <= {0, 1}
    mask = _random_input(TensorSpec("m", "input", "bool", (3,)), (3,), rng)
    assert mask.dtype == np.bool_
    scalar = _random_input(TensorSpec("s", "input", "float32", ()), (), rng)
    assert isinstance(scalar, np.ndarray) and scalar.shape == () and scalar.dtype == np.float32


def test_nbytes_of_types_numpy_lacks():
    assert _nbytes("float32", np.dtype("float32"), (2, 3)) == 24
    assert _nbytes("bfloat16", None, (2, 3)) == 12
    assert _nbytes("int4", None, (3,)) == 2
    assert _nbytes("float32", np.dtype("float32"), ()) == 4


@pytest.mark.parametrize("per_call, warmup, expected", [
    (0.015, 20, 26),      # ResNet-50 fp32 at batch 64: 2 s / 5 repeats / 15 ms
    (0.00002, 20, 200),   # a fast engine keeps every iteration asked for
    (1.0, 20, 10),        # never fewer than ten
    (0.015, 0, 26),       # no warm-up: one untimed call gives the estimate
])
def test_a_slow_engine_gets_fewer_iterations_within_max_seconds(per_call, warmup, expected):
    from trtops.trt.measure import _iterations_within_budget

    calls = []
    settings = {"iterations": 200, "repeats": 5, "warmup": warmup, "max_seconds": 2.0}
    # the untimed call (warmup 0) is timed with the real clock: make it take per_call
    import time

    def run():
        calls.append(1)
        time.sleep(per_call)

    got = _iterations_within_budget(settings, per_call * warmup, run, lambda: None)
    if warmup == 0:  # a sleep lasts at least per_call: the estimate can only cut more
        assert calls == [1] and 10 <= got <= expected
    else:
        assert calls == [] and got == expected


def test_no_budget_or_few_iterations_asked_are_kept():
    from trtops.trt.measure import _iterations_within_budget

    never = lambda: pytest.fail("no call needed")  # noqa: E731
    assert _iterations_within_budget({"iterations": 300, "repeats": 5, "warmup": 5, "max_seconds": None},
                                     5.0, never, never) == 300
    assert _iterations_within_budget({"iterations": 4, "repeats": 5, "warmup": 5, "max_seconds": 0.001},
                                     5.0, never, never) == 4
