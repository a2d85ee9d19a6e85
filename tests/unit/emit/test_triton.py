"""Triton model repository entries: every config.pbtxt is parsed with Triton's own
protobuf definitions (``model_config.proto`` as compiled in the ``tritonclient`` wheel)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from trtops.emit.triton import (
    TritonOptions,
    TritonVariant,
    max_batch_size,
    pb_str,
    render_config,
    write_model,
)
from trtops.engine_io import EngineIO, ProfileShapes, TensorIO
from trtops.errors import InputError


def _model_config_pb2():
    """Triton's ModelConfig message class, loaded from tritonclient's generated module by
    path: importing ``tritonclient.grpc`` itself would need grpcio."""
    spec = importlib.util.find_spec("tritonclient")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("tritonclient is not installed (pip install tritonclient)")
    path = Path(next(iter(spec.submodule_search_locations))) / "grpc" / "model_config_pb2.py"
    if not path.exists():
        pytest.skip(f"{path} is missing")
    module_spec = importlib.util.spec_from_file_location("triton_model_config_pb2", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def pb2():
    return _model_config_pb2()


def parse(pb2, text: str):
    from google.protobuf import text_format

    return text_format.Parse(text, pb2.ModelConfig())


def _io(batch_ranges=((1, 4, 16),), extra_input=None, out_shape=(-1, 10)) -> EngineIO:
    tensors = [TensorIO("input", "input", "float32", (-1, 3, -1, -1))]
    if extra_input:
        tensors.append(extra_input)
    tensors.append(TensorIO("logits", "output", "float32", out_shape))
    profiles = []
    for lo, opt, hi in batch_ranges:
        entries = [("input", (lo, 3, 8, 8), (opt, 3, 16, 16), (hi, 3, 32, 32))]
        if extra_input:
            entries.append((extra_input.name, (lo, 8), (opt, 8), (hi, 8)))
        profiles.append(ProfileShapes(tuple(entries)))
    return EngineIO(tuple(tensors), tuple(profiles))


def _engine(tmp_path: Path, name: str = "engine.plan", data: bytes = b"plan") -> Path:
    path = tmp_path / "src" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_single_engine_dynamic_batch(pb2, tmp_path: Path):
    model = write_model(tmp_path / "repo", "tiny_fp16", [TritonVariant(_engine(tmp_path), _io())])
    assert model.directory == tmp_path / "repo" / "tiny_fp16"
    assert (model.directory / "1" / "model.plan").read_bytes() == b"plan"
    config = parse(pb2, model.config_path.read_text())
    assert config.name == "tiny_fp16"
    assert config.platform == "tensorrt_plan"
    assert config.max_batch_size == 16
    assert [(i.name, pb2.DataType.Name(i.data_type), list(i.dims)) for i in config.input] == \
        [("input", "TYPE_FP32", [3, -1, -1])]
    assert [(o.name, pb2.DataType.Name(o.data_type), list(o.dims)) for o in config.output] == \
        [("logits", "TYPE_FP32", [10])]
    (group,) = config.instance_group
    assert group.count == 1 and group.kind == pb2.ModelInstanceGroup.KIND_GPU
    assert list(group.profile) == []
    assert config.WhichOneof("scheduling_choice") == "dynamic_batching"
    assert config.dynamic_batching.max_queue_delay_microseconds == 100
    assert not config.cc_model_filenames


def test_profiles_and_batch_coverage(pb2, tmp_path: Path):
    io = _io(((1, 2, 8), (8, 32, 64)), extra_input=TensorIO("scale", "input", "int32", (-1, 8)))
    assert max_batch_size(io) == 64
    config = parse(pb2, render_config("m", io, batch_size=64, options=TritonOptions()))
    assert list(config.instance_group[0].profile) == ["0", "1"]
    assert [pb2.DataType.Name(i.data_type) for i in config.input] == ["TYPE_FP32", "TYPE_INT32"]
    # A gap between profiles caps the batch size below it.
    assert max_batch_size(_io(((1, 2, 4), (8, 8, 16)))) == 4
    # No profile serves a batch of 1: no batching.
    assert max_batch_size(_io(((2, 4, 16),))) == 0
    # Inputs limit each other: the smaller max wins.
    io = EngineIO(
        (TensorIO("a", "input", "float32", (-1, 2)), TensorIO("b", "input", "float32", (-1, 2)),
         TensorIO("c", "output", "float32", (-1, 2))),
        (ProfileShapes((("a", (1, 2), (2, 2), (8, 2)), ("b", (1, 2), (2, 2), (6, 2)))),))
    assert max_batch_size(io) == 6


def test_no_batching_keeps_full_shapes(pb2, tmp_path: Path):
    static = EngineIO((TensorIO("input", "input", "float32", (64, 3, 224, 224)),
                       TensorIO("logits", "output", "float32", (64, 1000))), ())
    model = write_model(tmp_path / "repo", "resnet50_fp16",
                        [TritonVariant(_engine(tmp_path), static)])
    config = parse(pb2, model.config_path.read_text())
    assert config.max_batch_size == 0 and model.max_batch_size == 0
    assert list(config.input[0].dims) == [64, 3, 224, 224]
    assert config.WhichOneof("scheduling_choice") is None
    # An output without a dynamic batch dimension disables batching too.
    assert max_batch_size(_io(out_shape=(10,))) == 0


def test_scalar_after_the_batch_dimension_needs_a_reshape(pb2):
    io = _io(out_shape=(-1,))
    config = parse(pb2, render_config("m", io, batch_size=16, options=TritonOptions()))
    assert list(config.output[0].dims) == [1]
    assert config.output[0].HasField("reshape") and list(config.output[0].reshape.shape) == []


def test_options(pb2, tmp_path: Path):
    options = TritonOptions(version=3, instance_count=2, max_batch_size=8,
                            max_queue_delay_microseconds=500)
    model = write_model(tmp_path / "repo", "m", [TritonVariant(_engine(tmp_path), _io())],
                        options)
    config = parse(pb2, model.config_path.read_text())
    assert (model.directory / "3" / "model.plan").exists()
    assert config.max_batch_size == 8 and config.instance_group[0].count == 2
    assert config.dynamic_batching.max_queue_delay_microseconds == 500
    with pytest.raises(InputError, match="exceeds"):
        write_model(tmp_path / "repo", "m", [TritonVariant(_engine(tmp_path), _io())],
                    TritonOptions(max_batch_size=32))


def test_several_compute_capabilities(pb2, tmp_path: Path):
    variants = [
        TritonVariant(_engine(tmp_path, "a.plan", b"sm89"), _io(), "8.9", label="l4"),
        TritonVariant(_engine(tmp_path, "b.plan", b"sm90"), _io(), "9.0", label="h100"),
        TritonVariant(_engine(tmp_path, "c.plan", b"sm80"), _io(), "8.0", True, label="a100"),
    ]
    model = write_model(tmp_path / "repo", "m", variants)
    config = parse(pb2, model.config_path.read_text())
    assert dict(config.cc_model_filenames) == {"8.0": "model_sm80.plan",
                                               "8.9": "model_sm89.plan",
                                               "9.0": "model_sm90.plan"}
    assert config.default_model_filename == "model_sm80.plan"
    version = model.directory / "1"
    assert (version / "model_sm90.plan").read_bytes() == b"sm90"
    assert sorted(p.name for p in version.iterdir()) == [
        "model_sm80.plan", "model_sm89.plan", "model_sm90.plan"]
    # Emitting one engine again removes the others' plans: Triton must not serve them.
    write_model(tmp_path / "repo", "m", variants[:1])
    assert sorted(p.name for p in version.iterdir()) == ["model.plan"]


def test_conflicting_variants(tmp_path: Path):
    engine = _engine(tmp_path)
    with pytest.raises(InputError, match="compute capability 9.0"):
        write_model(tmp_path / "r", "m", [TritonVariant(engine, _io(), "9.0"),
                                         TritonVariant(engine, _io(), "9.0")])
    with pytest.raises(InputError, match="no compute capability"):
        write_model(tmp_path / "r", "m", [TritonVariant(engine, _io(), "9.0"),
                                         TritonVariant(engine, _io(), None)])
    other = _io(extra_input=TensorIO("scale", "input", "int32", (-1, 8)))
    with pytest.raises(InputError, match="different inputs or outputs"):
        write_model(tmp_path / "r", "m", [TritonVariant(engine, _io(), "9.0"),
                                         TritonVariant(engine, other, "8.9")])


def test_hostile_names_stay_strings(pb2):
    names = ['"} platform: "x', "back\\slash", "new\nline", "caf\u00e9", "\u202e", "'"]
    io = EngineIO(
        tuple(TensorIO(n, "input", "float32", (-1, 2)) for n in names)
        + (TensorIO("out", "output", "float32", (-1, 2)),),
        (ProfileShapes(tuple((n, (1, 2), (2, 2), (4, 2)) for n in names)),))
    text = render_config("m", io, batch_size=4, options=TritonOptions())
    assert text.isascii()
    config = parse(pb2, text)
    assert [i.name for i in config.input] == names
    assert config.platform == "tensorrt_plan"
    assert pb_str("a\"b") == '"a\\"b"'


def test_unsafe_model_name_and_dtype(tmp_path: Path):
    with pytest.raises(InputError, match="not a safe identifier"):
        render_config("../m", _io(), batch_size=0, options=TritonOptions())
    io = EngineIO((TensorIO("x", "input", "float8_e4m3fn", (1,)),
                   TensorIO("y", "output", "float32", (1,))), ())
    with pytest.raises(InputError, match="float8_e4m3fn"):
        render_config("m", io, batch_size=0, options=TritonOptions())
