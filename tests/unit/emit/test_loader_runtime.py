"""The emitted loader's runtime logic: input validation with the documented errors,
profile choice, contexts, buffers, zero-copy device inputs and CUDA graph replay.

TensorRT and CUDA are replaced by the numpy stand-ins of emit_fakes (the lab's GPU tests
run the same paths against real TensorRT)."""

from __future__ import annotations

import asyncio
import threading
import warnings

import numpy as np
import pytest
from emit_fakes import (
    DeviceArray,
    FakeBackend,
    FakeDriver,
    affine_engine,
    engine_bytes,
    install,
    mixed_engine,
)

# --------------------------------------------------------------------------- validation


@pytest.fixture
def mixed(emit_fake):
    module, _ = emit_fake(mixed_engine())
    return module


def _feed(n=2, h=8, w=8):
    rng = np.random.default_rng(0)
    return {"image": rng.random((n, 3, h, w), dtype=np.float32),
            "scale": rng.integers(0, 5, (n, 8), dtype=np.int32)}


def test_check_inputs_accepts_good_inputs(mixed):
    assert mixed.check_inputs(_feed()) == 0
    assert mixed.check_inputs(**_feed()) == 0


def test_unknown_input_names_the_expected_ones(mixed):
    feed = _feed()
    feed["imgae"] = feed.pop("image")
    with pytest.raises(mixed.UnknownInputError) as info:
        mixed.check_inputs(feed)
    message = str(info.value)
    assert "'imgae' (did you mean 'image'?)" in message
    assert "'image' float32 [-1, 3, -1, -1]" in message and "'scale' int32 [-1, 8]" in message
    assert info.value.name == "imgae"
    assert isinstance(info.value, ValueError)


def test_output_given_as_input(mixed):
    with pytest.raises(mixed.UnknownInputError, match=r"'mask' \(an output\)"):
        mixed.check_inputs(_feed(), mask=np.zeros((2, 1, 8, 8), bool))


def test_missing_input(mixed):
    with pytest.raises(mixed.MissingInputError, match=r"missing input 'scale' int32 \[-1, 8\]"):
        mixed.check_inputs(image=_feed()["image"])


def test_wrong_dtype(mixed):
    feed = _feed()
    feed["image"] = feed["image"].astype(np.float64)
    with pytest.raises(mixed.InputDTypeError) as info:
        mixed.check_inputs(feed)
    assert str(info.value) == ("input 'image' has dtype float64, the engine expects float32; "
                               "convert it with .astype(numpy.float32)")
    assert isinstance(info.value, TypeError) and isinstance(info.value, ValueError)


def test_wrong_rank(mixed):
    feed = _feed()
    feed["image"] = feed["image"][0]
    with pytest.raises(mixed.InputShapeError, match=r"has rank 3 \(shape \[3, 8, 8\]\), the "
                       r"engine expects rank 4: \[-1, 3, -1, -1\]"):
        mixed.check_inputs(feed)


def test_wrong_fixed_dimension(mixed):
    feed = _feed()
    feed["image"] = np.zeros((2, 4, 8, 8), np.float32)
    with pytest.raises(mixed.InputShapeError, match=r"axis 1 must be 3"):
        mixed.check_inputs(feed)


def test_shape_outside_every_profile(mixed):
    with pytest.raises(mixed.NoProfileError) as info:
        mixed.check_inputs(_feed(n=2, h=64, w=8))
    message = str(info.value)
    assert "no optimization profile of the engine accepts the input shapes" in message
    assert "profile 0: 'image' axis 2 is 64, the profile allows 4..32" in message
    assert isinstance(info.value, mixed.InputShapeError)


def test_profile_choice_prefers_the_closest_opt(emit_fake):
    module, _ = emit_fake(affine_engine())
    assert module.check_inputs(x=np.zeros((2, 4), np.float32)) == 0
    assert module.check_inputs(x=np.zeros((40, 4), np.float32)) == 1
    # 8 is in both profiles: profile 0's opt is 4 (|log 9/5|), profile 1's is 32 (|log 9/33|).
    assert module.check_inputs(x=np.zeros((8, 4), np.float32)) == 0
    with pytest.raises(module.NoProfileError, match="profile 0: .* 1..8 | profile 1: .*8..64"):
        module.check_inputs(x=np.zeros((65, 4), np.float32))


def test_lists_are_converted_and_input_given_twice_is_refused(emit_fake):
    module, _ = emit_fake(affine_engine())
    assert module.check_inputs(x=[[1, 2, 3, 4]]) == 0
    with pytest.raises(module.EngineInputError, match="given twice"):
        module.check_inputs({"x": [[1.0] * 4]}, x=[[1.0] * 4])


def test_device_array_is_validated_from_its_interface(mixed):
    feed = _feed()
    feed["image"] = DeviceArray(feed["image"].astype(np.float16))
    with pytest.raises(mixed.InputDTypeError, match="float16"):
        mixed.check_inputs(feed)
    feed = _feed()
    feed["image"] = DeviceArray(feed["image"], strides=(4, 4, 4, 4))
    with pytest.raises(mixed.InputShapeError, match="not C-contiguous"):
        mixed.check_inputs(feed)


# --------------------------------------------------------------------------- running


@pytest.fixture
def affine(emit_fake, monkeypatch):
    module, _ = emit_fake(affine_engine())
    backend, driver = install(module, monkeypatch)
    return module, backend, driver


def test_infer_matches_the_reference_and_reuses_buffers(affine):
    module, backend, _ = affine
    engine = module.Engine()
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    for _ in range(3):
        result = engine.infer(x=x)
        assert set(result) == {"y", "total"}
        np.testing.assert_array_equal(result["y"], x * 2 + 1)
        np.testing.assert_array_equal(result["total"], x.sum(axis=1))
    assert backend.mallocs == 3  # one buffer per tensor, reused
    engine.infer(x=x[:1])  # smaller: same buffers
    assert backend.mallocs == 3
    engine.infer(x=np.ones((40, 4), np.float32))  # profile 1, 640 bytes: x and y grow
    assert backend.mallocs == 5  # (total, 160 bytes, fits the 512-byte minimum)
    results = engine.infer({"x": x})
    results["y"][:] = 0  # results are copies: the next call is unaffected
    np.testing.assert_array_equal(engine.infer(x=x)["y"], x * 2 + 1)
    engine.close()
    assert backend.closed and not backend.allocations


def test_outputs_are_fresh_arrays_each_call(affine):
    module, _, _ = affine
    engine = module.Engine()
    first = engine.infer(x=np.ones((2, 4), np.float32))["y"]
    second = engine.infer(x=np.zeros((2, 4), np.float32))["y"]
    assert first is not second and first[0, 0] == 3 and second[0, 0] == 1


def test_one_context_per_profile_created_on_first_use(affine):
    module, _, _ = affine
    engine = module.Engine()
    engine.infer(x=np.ones((40, 4), np.float32))  # profile 1 first
    engine.infer(x=np.ones((2, 4), np.float32))
    engine.infer(x=np.ones((50, 4), np.float32))
    contexts = {p: e.context for p, e in engine._contexts.items()}
    assert sorted(contexts) == [0, 1]
    assert contexts[1].profile == 1 and contexts[1].profile_calls == [1]
    assert contexts[0].profile == 0
    for n in (2, 40, 7, 64, 1):
        x = np.random.default_rng(n).random((n, 4), dtype=np.float32)
        np.testing.assert_allclose(engine.infer(x=x)["y"], x * 2 + 1)


def test_same_shapes_do_not_reset_the_context(affine):
    module, _, _ = affine
    engine = module.Engine()
    x = np.ones((3, 4), np.float32)
    engine.infer(x=x)
    context = engine._contexts[0].context
    calls = context.shape_calls
    for _ in range(5):
        engine.infer(x=x)
    assert context.shape_calls == calls


def test_errors_come_before_any_gpu_work(affine):
    module, backend, _ = affine
    engine = module.Engine()
    with pytest.raises(module.InputDTypeError):
        engine.infer(x=np.ones((2, 4), np.float64))
    with pytest.raises(module.NoProfileError):
        engine.infer(x=np.ones((65, 4), np.float32))
    with pytest.raises(module.UnknownInputError):
        engine.infer(y=np.ones((2, 4), np.float32))
    with pytest.raises(module.MissingInputError):
        engine.infer()
    assert backend.mallocs == 0


def test_non_contiguous_and_non_native_inputs(affine):
    module, _, _ = affine
    engine = module.Engine()
    base = np.arange(32, dtype=np.float32).reshape(4, 8)
    x = base[:, ::2]
    np.testing.assert_array_equal(engine.infer(x=x)["y"], x * 2 + 1)
    swapped = np.ones((2, 4), dtype=">f4")
    np.testing.assert_array_equal(engine.infer(x=swapped)["y"], np.full((2, 4), 3, np.float32))


def test_out_arrays(affine):
    module, _, _ = affine
    engine = module.Engine()
    x = np.ones((2, 4), np.float32)
    y = np.empty((2, 4), np.float32)
    device_total = DeviceArray(np.zeros(2, np.float32))
    result = engine.run({"x": x}, out={"y": y, "total": device_total})
    assert result["y"] is y and result["total"] is device_total
    np.testing.assert_array_equal(y, 3)
    np.testing.assert_array_equal(device_total.array, 4)
    with pytest.raises(module.EngineInputError, match=r"out\['y'\] must be"):
        engine.run({"x": x}, out={"y": np.empty((3, 4), np.float32)})
    with pytest.raises(module.EngineInputError, match="not an output"):
        engine.run({"x": x}, out={"x": y})


def test_device_inputs_are_bound_without_a_copy(affine):
    module, backend, driver = affine
    engine = module.Engine()
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    device = DeviceArray(x)
    np.testing.assert_array_equal(engine.infer(x=device)["y"], x * 2 + 1)
    assert engine._contexts[0].context.addresses["x"] == device.ptr
    assert driver.waits == [(backend.stream_handle, 1)]  # waited on the legacy stream
    # Unaligned: copied on the device into the engine's own buffer.
    unaligned = DeviceArray(x, offset=4)
    np.testing.assert_array_equal(engine.infer(x=unaligned)["y"], x * 2 + 1)
    assert engine._contexts[0].context.addresses["x"] == engine._buffers["x"].ptr
    # Back to host inputs: the engine's buffer is bound again.
    np.testing.assert_array_equal(engine.infer(x=x + 1)["y"], (x + 1) * 2 + 1)
    # A stream named by the array is waited on.
    engine.infer(x=DeviceArray(x, stream=0x1234))
    assert driver.waits[-1] == (backend.stream_handle, 0x1234)


def test_without_a_driver_foreign_streams_are_synchronized(emit_fake, monkeypatch):
    module, _ = emit_fake(affine_engine())
    backend, _ = install(module, monkeypatch)
    monkeypatch.setattr(module._Driver, "get", staticmethod(lambda: None))
    engine = module.Engine()
    x = np.ones((2, 4), np.float32)
    engine.infer(x=DeviceArray(x))
    assert backend.device_syncs == 1


def test_cuda_graph_capture_and_replay(affine):
    module, _, driver = affine
    engine = module.Engine(cuda_graph=True)
    rng = np.random.default_rng(1)
    xs = [rng.random((3, 4), dtype=np.float32) for _ in range(4)]
    for x in xs:  # first call runs normally, the second captures, then replays
        np.testing.assert_allclose(engine.infer(x=x)["y"], x * 2 + 1, rtol=1e-6)
    assert driver.captures == 1 and driver.launches == 3 and engine.graph_launches == 3
    # New shapes: the graph is dropped, and captured again once they repeat.
    for x in (xs[0][:2], xs[1][:2], xs[2][:2]):
        np.testing.assert_allclose(engine.infer(x=x)["y"], x * 2 + 1, rtol=1e-6)
    assert driver.captures == 2 and driver.destroyed == 1
    np.testing.assert_allclose(engine.infer(x=xs[3])["y"], xs[3] * 2 + 1, rtol=1e-6)
    # Growing a buffer (profile 1, 40 rows) drops every graph: no stale addresses.
    big = rng.random((40, 4), dtype=np.float32)
    for _ in range(3):
        np.testing.assert_allclose(engine.infer(x=big)["y"], big * 2 + 1, rtol=1e-6)
    np.testing.assert_allclose(engine.infer(x=xs[0])["y"], xs[0] * 2 + 1, rtol=1e-6)
    engine.close()
    assert not driver.graphs


def test_cuda_graph_mode_with_device_inputs(affine):
    module, _, driver = affine
    engine = module.Engine(cuda_graph=True)
    x = np.full((2, 4), 3, np.float32)
    for i in range(3):  # device inputs: bound without a copy, run without a graph
        device = DeviceArray(x + i)
        np.testing.assert_array_equal(engine.infer(x=device)["y"], (x + i) * 2 + 1)
        assert engine._contexts[0].context.addresses["x"] == device.ptr
    assert driver.launches == 0
    # Host inputs of the same shapes: TensorRT ran them already, so the graph is captured
    # (with the copies) and replayed at once; the engine's own buffer is bound again.
    for i in range(3):
        np.testing.assert_array_equal(engine.infer(x=x - i)["y"], (x - i) * 2 + 1)
    assert driver.captures == 1 and driver.launches == 3
    # A device call in between leaves the graph valid: it holds the engine's own buffers.
    np.testing.assert_array_equal(engine.infer(x=DeviceArray(x))["y"], x * 2 + 1)
    np.testing.assert_array_equal(engine.infer(x=x + 5)["y"], (x + 5) * 2 + 1)
    assert driver.captures == 1 and driver.launches == 4


def test_graph_capture_failure_falls_back(emit_fake, monkeypatch):
    module, _ = emit_fake(affine_engine())
    install(module, monkeypatch, driver=FakeDriver(fail_capture=True))
    engine = module.Engine(cuda_graph=True)
    x = np.ones((2, 4), np.float32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(4):
            np.testing.assert_array_equal(engine.infer(x=x)["y"], x * 2 + 1)
    assert len([w for w in caught if "graph capture failed" in str(w.message)]) == 1
    assert engine.graph_launches == 0


def test_infer_async(affine):
    module, _, _ = affine
    engine = module.Engine()

    async def main():
        xs = [np.full((2, 4), i, np.float32) for i in range(5)]
        results = await asyncio.gather(*(engine.infer_async(x=x) for x in xs))
        return xs, results

    xs, results = asyncio.run(main())
    for x, result in zip(xs, results):
        np.testing.assert_array_equal(result["y"], x * 2 + 1)


def test_threads_share_one_engine_safely(affine):
    module, _, _ = affine
    engine = module.Engine()
    errors = []

    def work(seed):
        rng = np.random.default_rng(seed)
        for _ in range(50):
            x = rng.random((int(rng.integers(1, 60)), 4), dtype=np.float32)
            result = engine.infer(x=x)
            if not np.allclose(result["y"], x * 2 + 1):
                errors.append(seed)

    threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors


def test_mixed_dtypes_and_two_inputs(emit_fake, monkeypatch):
    module, _ = emit_fake(mixed_engine())
    install(module, monkeypatch)
    engine = module.Engine()
    for n, h, w in ((1, 4, 4), (2, 16, 16), (4, 32, 7)):
        feed = _feed(n, h, w)
        result = engine.infer(feed)
        pooled = feed["image"].mean(axis=(1, 2, 3), dtype=np.float32)[:, None]
        np.testing.assert_allclose(result["embedding"], pooled * feed["scale"], rtol=1e-6)
        np.testing.assert_array_equal(result["mask"], feed["image"][:, :1] > 0.5)
        assert result["mask"].dtype == np.bool_


def test_warmup_runs_every_profile(affine):
    module, _, _ = affine
    engine = module.Engine()
    engine.warmup()
    assert sorted(engine._contexts) == [0, 1]


# --------------------------------------------------------------------------- loading


def test_altered_engine_file_is_refused(emit_fake, monkeypatch):
    module, emitted = emit_fake(affine_engine())
    install(module, monkeypatch)
    description = affine_engine()
    description["profiles"][0]["x"]["max"] = [9, 4]
    emitted.engine_path.write_bytes(engine_bytes(description))
    with pytest.raises(module.EngineLoadError, match="sha256"):
        module.Engine()
    # verify=False loads it, but the I/O check still catches the different profiles.
    with pytest.raises(module.EngineLoadError, match="profiles differ"):
        module.Engine(verify=False)


def test_an_engine_tensorrt_cannot_read(emit_fake, monkeypatch, tmp_path):
    module, _ = emit_fake(affine_engine(), tensorrt="8.6.0")
    install(module, monkeypatch)
    bad = tmp_path / "bad.plan"
    bad.write_bytes(b"not an engine")
    with pytest.raises(module.EngineLoadError, match=r"could not deserialize .* \(built with "
                       r"TensorRT 8\.6\.0"):
        module.Engine(bad, verify=False)


def test_missing_engine_and_missing_tensorrt(emit_fake, monkeypatch, tmp_path):
    module, _ = emit_fake(affine_engine())
    with pytest.raises(module.EngineLoadError, match="cannot read the engine file"):
        module.Engine(tmp_path / "none.plan")
    monkeypatch.setitem(__import__("sys").modules, "tensorrt", None)
    with pytest.raises(module.EngineLoadError, match="pip install tensorrt"):
        module.Engine()


def test_missing_cuda_packages(emit_fake, monkeypatch):
    module, _ = emit_fake(affine_engine())
    modules = __import__("sys").modules
    for name in ("pycuda", "pycuda.driver", "cuda", "cuda.bindings"):
        monkeypatch.setitem(modules, name, None)
    with pytest.raises(module.EngineLoadError, match="pycuda or cuda-python cannot be imported"):
        module._make_backend("auto", 0)
    with pytest.raises(module.EngineLoadError, match="pick the other backend"):
        module._make_backend("pycuda", 0)
    with pytest.raises(ValueError, match="backend must be"):
        module._make_backend("cupy", 0)


def test_closed_engine(affine):
    module, backend, _ = affine
    engine = module.Engine()
    with engine:
        engine.infer(x=np.ones((1, 4), np.float32))
    with pytest.raises(RuntimeError, match="closed"):
        engine.infer(x=np.ones((1, 4), np.float32))
    assert isinstance(backend, FakeBackend)


# --------------------------------------------------------------------------- the hot path


def test_repeated_shapes_skip_validation_and_set_up(affine, monkeypatch):
    """Issue 21: a call with the last call's shapes (plain numpy arrays of the engine's
    dtype) runs the recipe's prebound closure: no input checks, plan lookup or context
    set-up per call."""
    module, _, _ = affine
    engine = module.Engine()
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    engine.infer(x=x)  # new shapes: checked, planned, run
    engine.infer(x=x)  # known shapes: the recipe (views, bound copies) is set up

    def refuse(*args, **kwargs):
        raise AssertionError("the full path ran for repeated shapes")

    for name in ("_prepare", "_make_recipe", "_set_shapes", "_bind", "_ensure"):
        monkeypatch.setattr(engine, name, refuse)
    monkeypatch.setattr(engine.io, "check_names", refuse)
    for value in (x, x + 1, np.asfortranarray(x * 3)):  # any strides, same dtype and shape
        np.testing.assert_array_equal(engine.infer(x=value)["y"], value * 2 + 1)
        np.testing.assert_array_equal(engine.infer({"x": value})["total"], value.sum(axis=1))
        np.testing.assert_array_equal(engine.run({"x": value})["y"], value * 2 + 1)


def test_after_a_warm_call_bad_inputs_still_get_the_documented_errors(affine):
    module, backend, _ = affine
    engine = module.Engine()
    x = np.ones((2, 4), np.float32)
    engine.infer(x=x)
    engine.infer(x=x)
    assert engine._recipe is not None
    with pytest.raises(module.InputDTypeError):
        engine.infer(x=np.ones((2, 4), np.float64))
    with pytest.raises(module.NoProfileError):
        engine.infer(x=np.ones((65, 4), np.float32))
    with pytest.raises(module.UnknownInputError):
        engine.infer(x=x, y=x)
    with pytest.raises(module.MissingInputError):
        engine.infer()
    with pytest.raises(module.InputShapeError):
        engine.infer(x=np.ones((2, 5), np.float32))
    # Values the hot path does not take go the full way and still compute right.
    swapped = np.arange(8, dtype=">f4").reshape(2, 4)
    np.testing.assert_array_equal(engine.infer(x=swapped)["y"], swapped * 2 + 1)
    np.testing.assert_array_equal(engine.infer(x=[[1, 2, 3, 4], [5, 6, 7, 8]])["total"], [10, 26])
    np.testing.assert_array_equal(engine.infer(x=x)["y"], x * 3)
    engine.close()
    with pytest.raises(RuntimeError, match="closed"):
        engine.infer(x=x)


def test_the_hot_path_uses_the_backends_prebound_calls(emit_fake, monkeypatch):
    class Backend(FakeBackend):
        fast_enters = syncs = 0

        def enter_fast(self):
            Backend.fast_enters += 1
            return False

        def bind_synchronize(self):
            def synchronize():
                Backend.syncs += 1

            return synchronize

    module, _ = emit_fake(affine_engine())
    install(module, monkeypatch, backend=Backend())
    engine = module.Engine()
    x = np.ones((3, 4), np.float32)
    engine.infer(x=x)  # the first two calls plan and set the recipe up (full path)
    engine.infer(x=x)
    before = Backend.fast_enters, Backend.syncs
    for _ in range(4):
        engine.infer(x=x)
    assert (Backend.fast_enters - before[0], Backend.syncs - before[1]) == (4, 4)


def test_the_hot_path_waits_for_another_thread(affine):
    module, _, _ = affine
    engine = module.Engine()
    x = np.ones((2, 4), np.float32)
    engine.infer(x=x)
    engine.infer(x=x)
    engine._lock.acquire()  # another caller is mid-call
    done = []
    thread = threading.Thread(target=lambda: done.append(engine.infer(x=x)))
    thread.start()
    thread.join(0.2)
    assert not done  # it waits on the full path instead of running beside the other call
    engine._lock.release()
    thread.join(300)  # a hang guard
    np.testing.assert_array_equal(done[0]["y"], x * 3)
