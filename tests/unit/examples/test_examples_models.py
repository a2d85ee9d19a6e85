"""The example models: valid ONNX, run in ONNX Runtime at two sizes, deterministic."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from trtops.examples import models as M  # noqa: E402

SMALL = ["tiny_cnn", "two_inputs", "tiny_qdq", "tiny_seg", "tiny_external"]

# Two sizes for every dynamic dim; H/W deliberately not multiples of any stride.
SIZES = [{"N": 1, "H": 32, "W": 32}, {"N": 3, "H": 37, "W": 50}]

EXPECTED_IO = {
    "tiny_cnn": ({"input": ["N", 3, 32, 32]}, {"logits": ["N", 10]}),
    "two_inputs": ({"image": ["N", 3, "H", "W"], "scale": ["N", 8]},
                   {"embedding": ["N", 8], "mask": ["N", 1, "H", "W"]}),
    "tiny_qdq": ({"input": ["N", 3, 32, 32]}, {"logits": ["N", 10]}),
    "tiny_seg": ({"input": ["N", 3, "H", "W"]}, {"out": ["N", 5, "H", "W"]}),
    "tiny_external": ({"input": ["N", 64]}, {"output": ["N", 10]}),
}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _concrete(dims, sizes) -> list[int]:
    return [sizes[d] if isinstance(d, str) else d for d in dims]


def _session(path: Path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_registry_names_and_files_are_stable():
    assert {name: e.filename for name, e in M.REGISTRY.items()} == {
        "resnet50": "resnet50_b64.onnx",
        "fcn_resnet": "fcn_resnet.onnx",
        "tiny_cnn": "tiny_cnn.onnx",
        "two_inputs": "two_inputs.onnx",
        "tiny_qdq": "tiny_qdq.onnx",
        "tiny_seg": "tiny_seg.onnx",
        "tiny_external": "tiny_external.onnx",
    }
    make, filename = M.REGISTRY["tiny_cnn"]  # unpacks as a pair
    assert make is M.make_tiny_cnn and filename == "tiny_cnn.onnx"
    assert set(M.DESCRIPTIONS) == set(M.REGISTRY)


@pytest.mark.parametrize("name", SMALL)
def test_small_model_is_valid_and_runs(name: str, tmp_path: Path):
    make, filename = M.REGISTRY[name]
    path = make(tmp_path / filename)
    assert path == tmp_path / filename
    onnx.checker.check_model(str(path), full_check=True)
    assert path.stat().st_size < 4 * 2**20

    model = onnx.load(str(path), load_external_data=False)
    assert model.ir_version == M.IR_VERSION
    assert [(o.domain, o.version) for o in model.opset_import] == [("", M.OPSET)]

    inputs, outputs = EXPECTED_IO[name]
    session = _session(path)
    assert {i.name: i.shape for i in session.get_inputs()} == inputs
    assert {o.name: o.shape for o in session.get_outputs()} == outputs
    rng = np.random.default_rng(0)
    for sizes in SIZES:
        feeds = {n: rng.random(_concrete(d, sizes), dtype=np.float32) for n, d in inputs.items()}
        results = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds)))
        for out, dims in outputs.items():
            value = results[out]
            assert list(value.shape) == _concrete(dims, sizes), out
            assert np.isfinite(value).all(), out
            assert value.std() > 1e-3, f"{out} is (nearly) constant"


@pytest.mark.parametrize("name", SMALL)
def test_generation_is_deterministic_and_idempotent(name: str, tmp_path: Path):
    make, filename = M.REGISTRY[name]
    extras = M.EXTRA_FILES.get(name, ())
    first = make(tmp_path / "a" / filename)
    second = make(tmp_path / "b" / filename)
    assert _sha(first) == _sha(second)
    for extra in extras:
        assert _sha(first.with_name(extra)) == _sha(second.with_name(extra))

    # A second run over an up-to-date file leaves it alone (same inode: not replaced).
    stamp = first.stat()
    make(first)
    again = first.stat()
    assert (again.st_ino, again.st_mtime_ns) == (stamp.st_ino, stamp.st_mtime_ns)
    assert sorted(p.name for p in first.parent.iterdir()) == sorted([filename, *extras])


def test_a_changed_file_is_rewritten(tmp_path: Path):
    path = M.make_tiny_cnn(tmp_path / "tiny_cnn.onnx")
    good = _sha(path)
    path.write_bytes(b"not a model")
    M.make_tiny_cnn(path)
    assert _sha(path) == good


def test_seed_changes_weights(tmp_path: Path):
    a = M.make_tiny_cnn(tmp_path / "a.onnx", seed=1)
    b = M.make_tiny_cnn(tmp_path / "b.onnx", seed=2)
    assert _sha(a) != _sha(b)


def test_qdq_model_is_explicitly_quantized(tmp_path: Path):
    model = M.build_qdq()
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("QuantizeLinear") == ops.count("DequantizeLinear") == 6
    by_name = {t.name: t for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            zero = onnx.numpy_helper.to_array(by_name[node.input[2]])
            assert zero.dtype == np.int8 and not zero.any()  # TensorRT: symmetric int8 only
            assert (onnx.numpy_helper.to_array(by_name[node.input[1]]) > 0).all()
    # ONNX Runtime runs the fake-quantized graph close to the float one.
    path = M.make_qdq(tmp_path / "q.onnx")
    x = np.random.default_rng(3).random((4, 3, 32, 32), dtype=np.float32)
    (logits,) = _session(path).run(None, {"input": x})
    assert logits.shape == (4, 10) and np.isfinite(logits).all()


def test_external_data_seed_changes_only_the_data_file(tmp_path: Path):
    a = M.make_external_data(tmp_path / "a" / "tiny_external.onnx", seed=5)
    b = M.make_external_data(tmp_path / "b" / "tiny_external.onnx", seed=6)
    assert _sha(a) == _sha(b)
    data_a, data_b = (p.with_name("tiny_external.onnx.data") for p in (a, b))
    assert _sha(data_a) != _sha(data_b)
    assert M.external_data_files(a) == [a, data_a]

    model = onnx.load(str(a), load_external_data=False)
    locations = {
        entry.value
        for tensor in model.graph.initializer
        for entry in tensor.external_data
        if entry.key == "location"
    }
    assert locations == {"tiny_external.onnx.data"}
    assert all(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer)

    x = np.random.default_rng(0).random((2, 64), dtype=np.float32)
    out_a = _session(a).run(None, {"input": x})[0]
    out_b = _session(b).run(None, {"input": x})[0]
    assert not np.allclose(out_a, out_b)


def test_fcn_handles_sizes_that_are_not_multiples_of_the_stride(tmp_path: Path):
    path = M.make_fcn(tmp_path / "fcn_resnet.onnx")
    model = onnx.load(str(path), load_external_data=False)
    onnx.checker.check_model(model)
    session = _session(path)
    assert [(i.name, i.shape) for i in session.get_inputs()] == [("input", [1, 3, "H", "W"])]
    assert [(o.name, o.shape) for o in session.get_outputs()] == [("out", [1, 21, "H", "W"])]
    rng = np.random.default_rng(0)
    for h, w in ((64, 64), (66, 98)):
        (out,) = session.run(None, {"input": rng.random((1, 3, h, w), dtype=np.float32)})
        assert out.shape == (1, 21, h, w)
        assert np.isfinite(out).all() and 0.1 < out.std() < 10


def test_resnet50_smoke_at_batch_1(tmp_path: Path):
    path = M.make_resnet50(tmp_path / "resnet50_b1.onnx", batch=1)
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    assert len(convs) == 53  # 1 stem + 16 bottlenecks x 3 + 4 projections
    params = sum(int(np.prod(t.dims)) for t in model.graph.initializer)
    assert 25_000_000 < params < 26_000_000
    session = _session(path)
    assert [(i.name, i.shape) for i in session.get_inputs()] == [("input", [1, 3, 224, 224])]
    x = np.random.default_rng(0).random((1, 3, 224, 224), dtype=np.float32)
    (logits,) = session.run(None, {"input": x})
    assert logits.shape == (1, 1000)
    # Activations stay O(1) through the depth: logits neither explode nor vanish.
    assert np.isfinite(logits).all() and 0.2 < logits.std() < 5


def test_resnet50_default_is_batch_64():
    model = M.build_resnet50()
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [64, 3, 224, 224]
    out = [d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim]
    assert model.graph.output[0].name == "logits" and out == [64, 1000]


# The bytes every machine must produce (checked identical with Python 3.10 / onnx 1.14 /
# numpy 1.26 / protobuf 3.20 and Python 3.11 / onnx 1.23 / numpy 2.4 / protobuf 7). If a
# builder changes on purpose, bump EXAMPLES_VERSION and update these.
GOLDEN = {
    "tiny_cnn": "80fa5ba74d01bf231811f2d9ae96f4b3d89725647c6a09b6ad8ffba74e13e13c",
    "two_inputs": "9a1264becb97c87ac6e2e6b284208f05b2aefd74618d65064ba0873b7aaf7774",
    "tiny_qdq": "1562ae1ebe76e97859cc33a13ff88229d87ed8b8a6d8adc5ae5050f39a1c2d8a",
    "tiny_seg": "e366524efe2c68ffdab674c6f37a211d96d7ab214ee7e0921022bba0b428c108",
    "tiny_external": "41f6468fec597d542039f55a94999f302295b2488193eca44cbd8dd782d468c2",
}


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_same_bytes_on_every_machine(name: str, tmp_path: Path):
    make, filename = M.REGISTRY[name]
    assert _sha(make(tmp_path / filename)) == GOLDEN[name]
