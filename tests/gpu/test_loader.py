"""Emitted Python loaders against real TensorRT: each loader runs its real engine, with
pycuda and with cuda-python, and matches ONNX Runtime; several profiles; the documented
errors for wrong inputs; zero-copy device inputs; CUDA graph replay; async; threads; and
the module runs without trtops installed.

Engines are built here with TensorRT directly (fp32, TF32 off), from the small example
models of :mod:`trtops.examples.models`, so only the emitter is under test.
"""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from trtops.emit.python_loader import LoaderInfo, write_loader
from trtops.emit.runtime.trt_io import io_from_engine
from trtops.engine_io import EngineIO
from trtops.examples import models as examples

trt = pytest.importorskip("tensorrt", reason="TensorRT is not installed")

pytestmark = pytest.mark.gpu

ATOL = RTOL = 1e-3  # fp32 without TF32: the engine's tolerance for these models
_COUNTER = itertools.count()

TINY_PROFILES = [{"input": ((1, 3, 32, 32), (4, 3, 32, 32), (8, 3, 32, 32))}]
TWO_PROFILES = [
    {"image": ((1, 3, 16, 16), (2, 3, 32, 32), (4, 3, 64, 64)),
     "scale": ((1, 8), (2, 8), (4, 8))},
    {"image": ((4, 3, 16, 16), (8, 3, 16, 16), (16, 3, 32, 32)),
     "scale": ((4, 8), (8, 8), (16, 8))},
]


def _backends() -> list[Any]:
    params = []
    for name, module in (("pycuda", "pycuda.driver"), ("cuda-python", "cuda")):
        marks = []
        if importlib.util.find_spec(module.split(".")[0]) is None:
            marks.append(pytest.mark.skip(reason=f"{name} is not installed"))
        params.append(pytest.param(name, marks=marks, id=name))
    return params


def build_plan(onnx_path: Path, profiles: list[dict[str, tuple]]) -> bytes:
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    major = int(trt.__version__.split(".")[0])
    flags = 0
    if major < 10:
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise AssertionError(f"ONNX parse failed: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, 1 << 28)
    if hasattr(trt.BuilderFlag, "TF32"):
        config.clear_flag(trt.BuilderFlag.TF32)
    for ranges in profiles:
        profile = builder.create_optimization_profile()
        for name, (lo, opt, hi) in ranges.items():
            profile.set_shape(name, lo, opt, hi)
        config.add_optimization_profile(profile)
    plan = builder.build_serialized_network(network, config)
    assert plan is not None, "TensorRT could not build the engine"
    return bytes(plan)


def engine_io_of(plan: bytes) -> EngineIO:
    runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
    engine = runtime.deserialize_cuda_engine(plan)
    io = io_from_engine(trt, engine)
    del engine
    return EngineIO.from_json(io.to_json())


def import_file(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(f"{path.stem}_{next(_COUNTER)}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Emitted:
    def __init__(self, onnx: Path, module_path: Path, engine_path: Path) -> None:
        self.onnx = onnx
        self.module_path = module_path
        self.engine_path = engine_path

    def load(self) -> Any:
        return import_file(self.module_path)


def _emit(root: Path, onnx: Path, profiles: list[dict], module: str) -> Emitted:
    plan = build_plan(onnx, profiles)
    engine = root / "cache" / f"{module}.engine"
    engine.parent.mkdir(parents=True, exist_ok=True)
    engine.write_bytes(plan)
    info = LoaderInfo(module, module.split("_")[0], "fp32", "lab", tensorrt=trt.__version__)
    emitted = write_loader(root / "loaders", engine_io_of(plan), engine, info)
    return Emitted(onnx, emitted.module_path, emitted.engine_path)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Emitted:
    root = tmp_path_factory.mktemp("tiny")
    onnx = examples.make_tiny_cnn(root / "tiny_cnn.onnx")
    return _emit(root, onnx, TINY_PROFILES, "tiny_fp32_lab")


@pytest.fixture(scope="module")
def two(tmp_path_factory) -> Emitted:
    root = tmp_path_factory.mktemp("two")
    onnx = examples.make_two_inputs(root / "two_inputs.onnx")
    return _emit(root, onnx, TWO_PROFILES, "two_fp32_lab")


def reference(onnx: Path, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, feeds)))


def assert_matches(onnx: Path, feeds: dict[str, np.ndarray], got: dict[str, np.ndarray]) -> None:
    expected = reference(onnx, feeds)
    assert set(got) == set(expected)
    for name, value in expected.items():
        assert got[name].shape == value.shape, name
        assert got[name].dtype == value.dtype, name
        if value.dtype == np.bool_:
            assert np.mean(got[name] != value) < 1e-3, name  # threshold ties may flip
        else:
            np.testing.assert_allclose(got[name], value, atol=ATOL, rtol=RTOL, err_msg=name)


def images(n: int, h: int = 32, w: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, 3, h, w), dtype=np.float32)


def two_feeds(n: int, h: int, w: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"image": rng.random((n, 3, h, w), dtype=np.float32),
            "scale": rng.random((n, 8), dtype=np.float32)}


@pytest.mark.parametrize("backend", _backends())
def test_loader_matches_onnxruntime(tiny, backend):
    module = tiny.load()
    with module.Engine(backend=backend) as engine:
        assert engine.backend == backend
        assert engine.input_names == ["input"] and engine.output_names == ["logits"]
        for n in (1, 3, 8, 3):
            feeds = {"input": images(n, seed=n)}
            assert_matches(tiny.onnx, feeds, engine.infer(feeds))
        first = engine.infer(input=images(2, seed=1))["logits"]
        second = engine.infer(input=images(2, seed=2))["logits"]
        assert not np.array_equal(first, second)  # fresh arrays, not a shared buffer


@pytest.mark.parametrize("backend", _backends())
def test_several_profiles(two, backend):
    module = two.load()
    with module.Engine(backend=backend) as engine:
        cases = [(2, 32, 32, 0), (16, 32, 32, 1), (1, 64, 48, 0), (8, 16, 16, 1),
                 (4, 16, 16, 1)]  # 4x16x16 fits both: profile 1's opt is closer
        for n, h, w, profile in cases:
            feeds = two_feeds(n, h, w, seed=n)
            assert module.check_inputs(feeds) == profile
            assert_matches(two.onnx, feeds, engine.infer(feeds))
        assert sorted(engine._contexts) == [0, 1]
        with pytest.raises(module.NoProfileError, match="profile 1: 'image' axis 0 is 17"):
            engine.infer(two_feeds(17, 16, 16))


def test_wrong_inputs_give_the_documented_errors(tiny):
    module = tiny.load()
    with module.Engine() as engine:
        good = images(2)
        with pytest.raises(module.UnknownInputError, match="did you mean 'input'"):
            engine.infer(inputs=good)
        with pytest.raises(module.MissingInputError, match="missing input 'input'"):
            engine.infer()
        with pytest.raises(module.InputDTypeError, match="has dtype float64"):
            engine.infer(input=good.astype(np.float64))
        with pytest.raises(module.InputShapeError, match="has rank 3"):
            engine.infer(input=good[0])
        with pytest.raises(module.InputShapeError, match="axis 1 must be 3"):
            engine.infer(input=np.zeros((2, 4, 32, 32), np.float32))
        with pytest.raises(module.NoProfileError, match="axis 0 is 9, the profile allows 1..8"):
            engine.infer(input=images(9))
        # The engine is still usable after refusing inputs.
        assert_matches(tiny.onnx, {"input": good}, engine.infer(input=good))


@pytest.mark.parametrize("backend", _backends())
def test_cuda_graph_replay_gives_the_same_outputs(tiny, two, backend):
    module = tiny.load()
    with module.Engine(backend=backend) as plain, \
            module.Engine(backend=backend, cuda_graph=True) as graphed:
        for n in (4, 4, 4, 2, 2, 2, 4):
            x = images(n, seed=n)
            expected = plain.infer(input=x)["logits"]
            np.testing.assert_allclose(graphed.infer(input=x)["logits"], expected,
                                       atol=1e-6, rtol=1e-6)
        assert graphed.graph_launches >= 4
        assert_matches(tiny.onnx, {"input": x}, graphed.infer(input=x))
    module = two.load()
    with module.Engine(backend=backend, cuda_graph=True) as engine:
        for n, h, w in ((2, 32, 32), (2, 32, 32), (2, 32, 32), (16, 32, 32), (16, 32, 32),
                        (16, 32, 32), (2, 32, 32)):
            feeds = two_feeds(n, h, w, seed=n)
            assert_matches(two.onnx, feeds, engine.infer(feeds))
        assert engine.graph_launches >= 3


class _CudaArray:
    """A device allocation exposed through ``__cuda_array_interface__`` (like PyTorch)."""

    def __init__(self, shape: tuple, dtype: Any, ptr: int) -> None:
        self.__cuda_array_interface__ = {"shape": shape, "typestr": np.dtype(dtype).str,
                                         "data": (ptr, False), "version": 2, "strides": None}


def test_device_inputs_zero_copy_and_device_outputs(tiny):
    cuda = pytest.importorskip("pycuda.driver")
    module = tiny.load()
    with module.Engine(backend="pycuda") as engine:
        x = images(3, seed=5)
        pushed = engine._backend.enter()  # allocate in the engine's (primary) context
        try:
            device_in = cuda.mem_alloc(x.nbytes)
            device_out = cuda.mem_alloc(3 * 10 * 4)
            cuda.memcpy_htod(device_in, x)
        finally:
            engine._backend.leave(pushed)
        source = _CudaArray(x.shape, np.float32, int(device_in))
        result = engine.infer(input=source)
        assert engine._contexts[0].bound["input"] == int(device_in)  # bound, not copied
        assert_matches(tiny.onnx, {"input": x}, result)
        target = _CudaArray((3, 10), np.float32, int(device_out))
        returned = engine.run({"input": source}, out={"logits": target})
        assert returned["logits"] is target
        host = np.empty((3, 10), np.float32)
        pushed = engine._backend.enter()
        try:
            cuda.memcpy_dtoh(host, device_out)
            device_in.free()
            device_out.free()
        finally:
            engine._backend.leave(pushed)
        np.testing.assert_allclose(host, result["logits"], atol=1e-6)


@pytest.mark.parametrize("backend", _backends())
def test_async_and_threads(tiny, backend):
    module = tiny.load()
    with module.Engine(backend=backend) as engine:
        xs = [images(n, seed=n) for n in (1, 2, 3, 4)]
        expected = [engine.infer(input=x)["logits"] for x in xs]

        async def run_all():
            return await asyncio.gather(*(engine.infer_async(input=x) for x in xs))

        for got, want in zip(asyncio.run(run_all()), expected):
            np.testing.assert_allclose(got["logits"], want, atol=1e-6)
        errors: list[str] = []

        def work(index: int) -> None:
            for _ in range(20):
                got = engine.infer(input=xs[index])["logits"]
                if not np.allclose(got, expected[index], atol=1e-6):
                    errors.append(f"thread {index}")

        threads = [threading.Thread(target=work, args=(i,)) for i in range(len(xs))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors


def test_module_runs_without_trtops(tiny):
    code = (
        "import importlib.util, json, sys\n"
        "sys.modules['trtops'] = None  # importing trtops would fail\n"
        f"spec = importlib.util.spec_from_file_location('loader', {str(tiny.module_path)!r})\n"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
        "import numpy as np\n"
        "e = m.Engine()\n"
        "out = e.infer(input=np.ones((2, 3, 32, 32), np.float32))['logits']\n"
        "print(json.dumps({'shape': list(out.shape), 'sum': float(out.sum())}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert data["shape"] == [2, 10]
    expected = reference(tiny.onnx, {"input": np.ones((2, 3, 32, 32), np.float32)})["logits"]
    assert abs(data["sum"] - float(expected.sum())) < 1e-2
    # `python <module>.py` loads the engine and times its opt shapes.
    result = subprocess.run([sys.executable, str(tiny.module_path)], capture_output=True,
                            text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])["latency_ms"] > 0


def test_altered_engine_is_refused(tiny, tmp_path):
    module = tiny.load()
    other = tmp_path / "other.plan"
    other.write_bytes(build_plan(tiny.onnx, [
        {"input": ((1, 3, 32, 32), (2, 3, 32, 32), (2, 3, 32, 32))}]))
    with pytest.raises(module.EngineLoadError, match="sha256"):
        module.Engine(other)
    with pytest.raises(module.EngineLoadError, match="does not match this loader"):
        module.Engine(other, verify=False)


def test_loader_from_the_builder_io(tmp_path):
    """The builder's EngineIO (meta.json ``io``) and the loader agree on the engine."""
    try:
        from trtops.spec import make_engine_spec, profile
        from trtops.trt.builder import BuildRequest, build_engine
    except ImportError as exc:  # pragma: no cover - builder not present
        pytest.skip(f"trtops.trt is not available: {exc}")
    onnx = examples.make_two_inputs(tmp_path / "two_inputs.onnx")
    ranges = profile(image=([1, 3, 16, 16], [2, 3, 32, 32], [4, 3, 64, 64]),
                     scale=([1, 8], [2, 8], [4, 8]))
    spec = make_engine_spec(onnx, "fp32", profiles=[ranges], timing_cache="off")
    result = build_engine(BuildRequest(spec=spec, model_path=onnx, workdir=tmp_path / "w"))
    emitted = write_loader(tmp_path / "loaders", result.io, result.engine_path,
                           LoaderInfo("two_fp32_lab", "two", "fp32", "lab"))
    module = import_file(emitted.module_path)
    with module.Engine() as engine:
        feeds = two_feeds(3, 40, 24)
        got = engine.infer(feeds)
    expected = reference(onnx, feeds)
    for name in expected:
        if expected[name].dtype != np.bool_:
            np.testing.assert_allclose(got[name], expected[name], atol=1e-2, rtol=1e-2)


@pytest.mark.parametrize("engine_ref", ["absolute", "relative"])
def test_an_engine_under_a_non_ascii_and_backslash_path_loads(tiny, tmp_path, engine_ref):
    """Paths the loader's docstring cannot show (non-ASCII, a backslash) are written only in
    METADATA (escaped): the loader finds and runs the engine all the same."""
    import shutil

    folder = tmp_path / "mödels\\x"
    folder.mkdir()
    engine = folder / "tiny.engine"
    shutil.copyfile(tiny.engine_path, engine)
    module = f"tiny_fp32_lab_{engine_ref}"
    info = LoaderInfo(module, "tiny", "fp32", "lab", tensorrt=trt.__version__)
    emitted = write_loader(tmp_path / "lödrs", engine_io_of(engine.read_bytes()), engine, info,
                           engine_ref=engine_ref)
    loaded = import_file(emitted.module_path)
    assert Path(loaded.resolve_engine_path()).resolve() == engine.resolve()
    with loaded.Engine() as runner:
        feeds = {"input": images(2, seed=5)}
        assert_matches(tiny.onnx, feeds, runner.infer(feeds))
    print(f"{engine_ref}: ran the engine from {engine}")
