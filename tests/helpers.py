"""Small real ONNX models for tests, built with onnx.helper (no downloads).

Import as ``from helpers import make_conv_model`` (tests/ is on sys.path through
tests/conftest.py).
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np

Dim = int | str


def _onnx():
    import onnx  # heavy: tests that need no model should not pay for it

    return onnx


def _value_info(name: str, shape: Sequence[Dim] | None, elem_type: int | None = None):
    onnx = _onnx()
    elem_type = onnx.TensorProto.FLOAT if elem_type is None else elem_type
    return onnx.helper.make_tensor_value_info(name, elem_type, None if shape is None else list(shape))


def _save(model, path: Path, external_data: bool, check: bool = True) -> Path:
    onnx = _onnx()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if check:  # the checker refuses unknown-rank values, which some tests need
        onnx.checker.check_model(model)
    if external_data:
        onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=path.name + ".data", size_threshold=0)
    else:
        onnx.save_model(model, str(path))
    return path


def make_conv_model(
    path: str | Path,
    input_shape: Sequence[Dim] = ("N", 3, "H", "W"),
    *,
    input_name: str = "input",
    output_name: str = "output",
    out_channels: int = 4,
    seed: int = 0,
    external_data: bool = False,
    opset: int = 17,
) -> Path:
    """A 3x3 convolution (padding 1) followed by Relu: ``input [N,C,H,W] -> output [N,out,H,W]``.

    Args:
        path: where to write the .onnx file (parents are created).
        input_shape: dims of the input; strings are symbolic (dynamic) dims.
        external_data: store the weights in ``<name>.onnx.data`` next to the model.
        seed: changes the weights (and so the model digest), not the graph.

    Returns:
        The path written.
    """
    onnx = _onnx()
    helper = onnx.helper
    channels = input_shape[1] if isinstance(input_shape[1], int) else 3
    rng = np.random.default_rng(seed)
    weight = rng.standard_normal((out_channels, channels, 3, 3)).astype(np.float32) * 0.1
    bias = rng.standard_normal(out_channels).astype(np.float32) * 0.1
    output_shape = [input_shape[0], out_channels, *input_shape[2:]]
    graph = helper.make_graph(
        [
            helper.make_node("Conv", [input_name, "weight", "bias"], ["conv"],
                             kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["conv"], [output_name]),
        ],
        "conv",
        [_value_info(input_name, input_shape)],
        [_value_info(output_name, output_shape)],
        initializer=[
            onnx.numpy_helper.from_array(weight, "weight"),
            onnx.numpy_helper.from_array(bias, "bias"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return _save(model, Path(path), external_data)


def make_qdq_model(
    path: str | Path,
    input_shape: Sequence[Dim] = ("N", 3, "H", "W"),
    *,
    input_name: str = "input",
    output_name: str = "output",
    out_channels: int = 4,
    seed: int = 0,
    opset: int = 17,
) -> Path:
    """An explicitly quantized (Q/DQ) convolution, as TensorRT expects for int8 without
    calibration: activations and weights pass QuantizeLinear -> DequantizeLinear.

    Returns:
        The path written.
    """
    onnx = _onnx()
    helper = onnx.helper
    channels = input_shape[1] if isinstance(input_shape[1], int) else 3
    rng = np.random.default_rng(seed)
    weight = rng.standard_normal((out_channels, channels, 3, 3)).astype(np.float32) * 0.1
    weight_scale = np.float32(np.abs(weight).max() / 127.0)
    weight_q = np.clip(np.round(weight / weight_scale), -127, 127).astype(np.int8)
    output_shape = [input_shape[0], out_channels, *input_shape[2:]]
    graph = helper.make_graph(
        [
            helper.make_node("QuantizeLinear", [input_name, "x_scale", "x_zero"], ["x_q"]),
            helper.make_node("DequantizeLinear", ["x_q", "x_scale", "x_zero"], ["x_dq"]),
            helper.make_node("DequantizeLinear", ["w_q", "w_scale", "w_zero"], ["w_dq"]),
            helper.make_node("Conv", ["x_dq", "w_dq"], [output_name],
                             kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        ],
        "qdq_conv",
        [_value_info(input_name, input_shape)],
        [_value_info(output_name, output_shape)],
        initializer=[
            onnx.numpy_helper.from_array(np.array(1 / 127, dtype=np.float32), "x_scale"),
            onnx.numpy_helper.from_array(np.array(0, dtype=np.int8), "x_zero"),
            onnx.numpy_helper.from_array(weight_q, "w_q"),
            onnx.numpy_helper.from_array(np.array(weight_scale, dtype=np.float32), "w_scale"),
            onnx.numpy_helper.from_array(np.array(0, dtype=np.int8), "w_zero"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return _save(model, Path(path), external_data=False)


def make_multi_input_model(
    path: str | Path,
    inputs: dict[str, Sequence[Dim] | None],
    *,
    opset: int = 17,
) -> Path:
    """One Identity per input (``<name>`` -> ``<name>_out``): many inputs with any shapes.

    Args:
        inputs: input name -> dims (strings are symbolic; ``None`` = unknown rank).

    Returns:
        The path written.
    """
    onnx = _onnx()
    helper = onnx.helper
    nodes = [helper.make_node("Identity", [name], [f"{name}_out"]) for name in inputs]
    graph = helper.make_graph(
        nodes, "multi",
        [_value_info(name, shape) for name, shape in inputs.items()],
        [_value_info(f"{name}_out", shape) for name, shape in inputs.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return _save(model, Path(path), external_data=False,
                 check=all(shape is not None for shape in inputs.values()))


def write_manifest(directory: str | Path, text: str, name: str = "m.yaml") -> Path:
    """Write a manifest (dedented) into ``directory`` and return its path."""
    path = Path(directory) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def use_toolchain_double(monkeypatch) -> None:
    """Run the CLI in process as CI would, on the toolchain test double (tests/doubles.py):
    no TRTOPS_/GITHUB_ settings of the shell that started pytest leak in, CI=true."""
    import os

    for name in list(os.environ):
        if name.startswith(("TRTOPS_", "GITHUB_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("TRTOPS_TEST_TOOLCHAIN", "doubles:FakeToolchain")
    monkeypatch.setenv("CI", "true")


def verdict_disagreements(detected, release: str) -> list[tuple]:
    """Combinations where the builder's verdict with ``detected`` features (from an imported
    tensorrt module, real or fake) differs from the planner's with the features known for
    ``release``: every precision x compute capability x hardware compatibility x
    calibration x Q/DQ x strongly typed x tactic sources x version compatibility."""
    import itertools
    from dataclasses import replace

    from trtops.capabilities import PRECISIONS, features_for_version, unsupported_reason
    from trtops.spec import CalibrationSpec, make_engine_spec

    known = features_for_version(release)
    calibration = CalibrationSpec(data="/data/calib.npz", batch_size=8, algorithm="entropy", max_batches=None)
    differ = []
    for precision, hardware, calibrated, qdq, strongly_typed, sources, version_compatible in itertools.product(
            PRECISIONS, ("none", "ampere_plus", "same_compute_capability"), (False, True), (False, True),
            (False, True), (None, ("cudnn",), ("jit_convolutions",)), (False, True)):
        spec = make_engine_spec("/models/m.onnx", precision, hardware_compatibility=hardware,
                                calibration=calibration if calibrated else None, tactic_sources=sources,
                                version_compatible=version_compatible)
        build = replace(spec.build, strongly_typed=strongly_typed)
        for cc in ("7.5", "8.0", "8.6", "8.9", "9.0", "10.0"):
            planned = unsupported_reason(build, known, cc, model_has_qdq=qdq)
            built = unsupported_reason(build, detected, cc, model_has_qdq=qdq)
            if planned != built:
                differ.append((precision, hardware, calibrated, qdq, strongly_typed, sources,
                               version_compatible, cc, planned, built))
    return differ


def make_shared_dims_classifier(path: str | Path) -> Path:
    """Like paddle2onnx's PP-OCR angle classifier: input ``x`` declared ``[-1, 3, '?', '?']``
    (one name for H and W, which TensorRT then ties together), output ``[-1, 2]``."""
    onnx = _onnx()
    helper, TP = onnx.helper, onnx.TensorProto
    rng = np.random.default_rng(3)
    weight = onnx.numpy_helper.from_array(rng.standard_normal((2, 3, 3, 3)).astype(np.float32), "w")
    x = helper.make_tensor_value_info("x", TP.FLOAT, [-1, 3, "?", "?"])
    x.type.tensor_type.shape.dim[0].Clear()
    x.type.tensor_type.shape.dim[0].dim_value = -1  # paddle2onnx writes -1, not a name
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
         helper.make_node("GlobalAveragePool", ["c"], ["pooled"]),
         helper.make_node("Flatten", ["pooled"], ["m"]),
         helper.make_node("Softmax", ["m"], ["prob"], axis=1)],
        "cls", [x], [_value_info("prob", [-1, 2])], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return _save(model, Path(path), external_data=False, check=False)


def make_rate_branching_model(path: str | Path) -> Path:
    """Like torch exports of audio models (silero-vad): ``x`` float ``[N, T]`` and ``sr``, an
    int64 scalar. ``Slice`` takes its axes from ``Unsqueeze(Constant)`` (TensorRT 8.6 wants an
    initializer), and an ``If`` on ``sr == 16000`` keeps 256 or 128 samples (branches of
    different shapes, which TensorRT's conditional layer refuses). Output ``y = 2 * kept``."""
    onnx = _onnx()
    helper, TP = onnx.helper, onnx.TensorProto
    i64 = lambda name, values: onnx.numpy_helper.from_array(np.array(values, dtype=np.int64), name)  # noqa: E731
    then_branch = helper.make_graph(
        [helper.make_node("Slice", ["x", "zero", "n256", "axes"], ["kept_then"])],
        "then", [], [helper.make_tensor_value_info("kept_then", TP.FLOAT, ["N", 256])])
    else_branch = helper.make_graph(
        [helper.make_node("Slice", ["x", "zero", "n128", "axes"], ["kept_else"])],
        "else", [], [helper.make_tensor_value_info("kept_else", TP.FLOAT, ["N", 128])])
    graph = helper.make_graph(
        [helper.make_node("Constant", [], ["one"], value=onnx.numpy_helper.from_array(np.array(1, np.int64))),
         helper.make_node("Constant", [], ["dim0"], value=onnx.numpy_helper.from_array(np.array([0], np.int64))),
         helper.make_node("Unsqueeze", ["one", "dim0"], ["axes"]),
         helper.make_node("Equal", ["sr", "rate16k"], ["is16k"]),
         helper.make_node("If", ["is16k"], ["kept"], then_branch=then_branch, else_branch=else_branch),
         helper.make_node("Mul", ["kept", "two"], ["y"])],
        "vad",
        [helper.make_tensor_value_info("x", TP.FLOAT, ["N", "T"]), helper.make_tensor_value_info("sr", TP.INT64, [])],
        [helper.make_tensor_value_info("y", TP.FLOAT, ["N", None])],
        [i64("zero", [0]), i64("n256", [256]), i64("n128", [128]), i64("rate16k", 16000),
         onnx.numpy_helper.from_array(np.array(2.0, np.float32), "two")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 16)])
    model.ir_version = 8
    return _save(model, Path(path), external_data=False)


HEAVY_OVERFLOW_KINDS = ("conv1x1", "conv3x3", "gemm")


def _overflow_heavy(onnx, kind: str):
    """Four heavy layers ``scale_up`` (x512), ``overflow`` (x512), ``scale_down`` (/512),
    ``restore`` (/512) plus ``harmless`` (x * 0.5), see :func:`make_overflow_model`."""
    helper, numpy_helper = onnx.helper, onnx.numpy_helper
    if kind == "gemm":  # x [256, 1024] @ scaled identities: 0.5 GFLOP per MatMul
        width, shape, op, attrs = 1024, [256, 1024], "MatMul", {}
        eye = np.eye(width, dtype=np.float32)
    else:
        width = 128 if kind == "conv1x1" else 256
        shape = [1, width, 64, 64]
        op = "Conv"
        kernel = 1 if kind == "conv1x1" else 3
        attrs = {} if kernel == 1 else {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}
        eye = np.zeros((width, width, kernel, kernel), np.float32)
        eye[np.arange(width), np.arange(width), kernel // 2, kernel // 2] = 1.0  # the centre tap
    # Every weight is well inside fp16's range (TensorRT runs a layer whose weights are not in
    # fp32): only the activation between overflow and scale_down, x * 2**18, is past 65504.
    values = (("s1", eye * 512), ("s2", eye * 512), ("s3", eye / 512), ("s4", eye / 512),
              ("half", np.float32(0.5)))
    weights = [numpy_helper.from_array(np.asarray(v, np.float32), n) for n, v in values]
    nodes = [
        helper.make_node(op, ["x", "s1"], ["a"], name="scale_up", **attrs),
        helper.make_node(op, ["a", "s2"], ["b"], name="overflow", **attrs),
        helper.make_node(op, ["b", "s3"], ["c"], name="scale_down", **attrs),
        helper.make_node(op, ["c", "s4"], ["y"], name="restore", **attrs),
        helper.make_node("Mul", ["x", "half"], ["z"], name="harmless"),
    ]
    graph = helper.make_graph(nodes, "overflow", [_value_info("x", shape)],
                              [_value_info("y", shape), _value_info("z", shape)], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def make_overflow_model(path: str | Path, *, scale: float = 3e4, matmul: bool = False, heavy: str | None = None) -> Path:
    """A chain that fp16 cannot carry, beside one it can: ``y = x * s * s / s**2`` (the middle
    value ``x * s * s`` is ~1e9, past fp16's 65504, so an fp16 engine gives inf while fp32 is
    exact) and ``z = x * 0.5``. Nodes ``scale_up``, ``overflow``, ``scale_down``, ``harmless``;
    input ``x`` [2, 16] in [0, 1).

    ``matmul``: the three steps of ``y`` are MatMuls with scaled identity matrices instead of
    Mul/Div by scalars, so TensorRT cannot fuse them into one pointwise kernel that computes
    in fp32 inside (the GPU lab test: each GEMM writes its fp16 output, and 1/s**2 is below
    fp16's smallest subnormal as a weight).

    ``heavy``: one of :data:`HEAVY_OVERFLOW_KINDS`: the four steps of ``y`` are layers heavy
    enough that TensorRT should pick fp16 tensor-core kernels for them, with weights inside
    fp16's range (x512, x512, /512, /512, so only the activation ``b`` = x * 2**18 does not
    fit): ``conv1x1`` (128 channels of 64x64), ``conv3x3`` (256 channels of 64x64, the
    identity at each kernel's centre) or ``gemm`` (``x`` [256, 1024], 1024-wide MatMuls).
    Lab history (TensorRT 8.6.0, H100/H200, 2026-12-06): the MatMul chain, a 64-channel
    1x1 Conv chain with a 1/s**2 weight and ``conv1x1`` at optimization level 3 all
    *passed* the fp16 gate (``z`` exact: TensorRT ran those small layers in fp32)."""
    onnx = _onnx()
    helper, numpy_helper = onnx.helper, onnx.numpy_helper
    if heavy is not None:
        return _save(_overflow_heavy(onnx, heavy), Path(path), external_data=False)
    eye = np.eye(16, dtype=np.float32)
    if matmul:
        values = (("s1", eye * scale), ("s2", eye * scale), ("s3", eye / (scale * scale)), ("half", 0.5))
        ops = ("MatMul", "MatMul", "MatMul")
    else:
        values = (("s1", scale), ("s2", scale), ("s3", scale * scale), ("half", 0.5))
        ops = ("Mul", "Mul", "Div")
    weights = [numpy_helper.from_array(np.array(v, np.float32), n) for n, v in values]
    nodes = [
        helper.make_node(ops[0], ["x", "s1"], ["a"], name="scale_up"),
        helper.make_node(ops[1], ["a", "s2"], ["b"], name="overflow"),
        helper.make_node(ops[2], ["b", "s3"], ["y"], name="scale_down"),
        helper.make_node("Mul", ["x", "half"], ["z"], name="harmless"),
    ]
    graph = helper.make_graph(nodes, "overflow", [_value_info("x", [2, 16])],
                              [_value_info("y", [2, 16]), _value_info("z", [2, 16])], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return _save(model, Path(path), external_data=False)
