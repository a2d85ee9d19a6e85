"""Example ONNX models, built offline with ``onnx.helper`` and seeded numpy weights.

Every model is deterministic: the same arguments give byte-identical files, on any
machine (fixed seeds, fixed IR/opset versions, no timestamps, no dependence on the
installed onnx version's defaults). Writes are atomic and skipped when the file already
holds the right bytes, so ``python -m trtops.examples`` can run any number of times.

All models use ONNX opset 13 and IR version 7, which TensorRT 8.6, 10 and 11 and any
recent ONNX Runtime read. Weights are He-initialized (conv + BatchNorm folded into the
conv's weights and bias, as an exported inference graph has them) and scaled so that
activations stay O(1), so fp16 engines neither overflow nor lose all precision.

Public API (stable: GPU tests import these; every ``make_*`` takes the destination path
first, returns it as a :class:`~pathlib.Path`, and leaves an up-to-date file untouched):

``make_resnet50(path, batch=64, seed=50)``
    ResNet-50 (torchvision v1.5 layout: bottlenecks 3-4-6-3), input ``input`` float32
    ``[batch, 3, 224, 224]`` (static), output ``logits`` ``[batch, 1000]``. ~100 MB.
``make_fcn(path, num_classes=21, seed=21)``
    FCN segmentation net on a dilated ResNet-18 backbone (output stride 16), input
    ``input`` ``[1, 3, H, W]`` (H, W dynamic, any size >= 32), output ``out``
    ``[1, num_classes, H, W]``: the logits are resized back to the input's own H/W
    through Shape ops, so sizes that are not multiples of 16 work. ~45 MB.
``make_tiny_cnn(path, seed=1)``
    ``input`` ``[N, 3, 32, 32]`` -> ``logits`` ``[N, 10]``; N dynamic. A few KB.
``make_two_inputs(path, seed=2)``
    Inputs ``image`` ``[N, 3, H, W]`` and ``scale`` ``[N, 8]``; outputs ``embedding``
    ``[N, 8]`` (pooled features times ``scale``) and ``mask`` ``[N, 1, H, W]``
    (sigmoid). N, H, W dynamic (N shared by both inputs).
``make_qdq(path, seed=3)``
    Explicitly quantized (QuantizeLinear/DequantizeLinear, int8, zero points 0,
    per-channel weight scales) version of the tiny CNN: ``input`` ``[N, 3, 32, 32]`` ->
    ``logits`` ``[N, 10]``. Build it as int8 without calibration data.
``make_tiny_seg(path, num_classes=5, seed=4)``
    ``input`` ``[N, 3, H, W]`` -> ``out`` ``[N, num_classes, H, W]``; N, H, W dynamic,
    H and W any size >= 4 (resized back through Shape ops, like :func:`make_fcn`).
``make_external_data(path, seed=5)``
    MLP ``input`` ``[N, 64]`` -> ``output`` ``[N, 10]`` whose weights live in
    ``<path>.data`` (ONNX external data, location ``<name>.data``). Different seeds
    give the same ``.onnx`` bytes and different ``.data`` bytes: a fingerprint that
    hashes only the ``.onnx`` file misses the change.

``REGISTRY`` maps each example name to ``Example(make, filename)``, the file name under
``manifests/models/`` (unpacks as ``make, filename = REGISTRY[name]``):
``resnet50``, ``fcn_resnet``, ``tiny_cnn``, ``two_inputs``, ``tiny_qdq``, ``tiny_seg``,
``tiny_external``. The ``build_*`` functions return the :class:`onnx.ModelProto` without
writing anything.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from trtops.examples.files import write_if_changed

OPSET = 13
IR_VERSION = 7
PRODUCER = "trtops.examples"
# Bump when a builder changes on purpose: it is stored in every model's producer_version.
EXAMPLES_VERSION = "1"

# Gain of the last conv of every residual branch. With plain He init every block would add
# its branch's full variance to the residual stream, and after 16 bottlenecks the logits
# would have a std of ~200; 0.35 keeps every block output within a small factor of the
# input's scale and the logits' std near 1.
_RESIDUAL_GAIN = 0.35


class _Graph:
    """Collects nodes and initializers; draws weights from one seeded generator in call
    order, so the same sequence of calls always gives the same weights."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._names: set[str] = set()

    # -- basics -------------------------------------------------------------------------

    def _unique(self, name: str) -> str:
        if name in self._names:
            raise ValueError(f"duplicate tensor name {name!r}")  # a bug in a builder
        self._names.add(name)
        return name

    def const(self, name: str, array: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), self._unique(name)))
        return name

    def op(self, op_type: str, inputs: Sequence[str], name: str, output: str | None = None,
           **attrs: object) -> str:
        """One node named ``name``; its output tensor is ``output`` (default: ``name``)."""
        out = self._unique(output or name)
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], name=name, **attrs))
        return out

    def normal(self, shape: Sequence[int], std: float) -> np.ndarray:
        return self.rng.standard_normal(tuple(shape), dtype=np.float32) * np.float32(std)

    # -- layers -------------------------------------------------------------------------

    def conv(
        self,
        x: str,
        name: str,
        cin: int,
        cout: int,
        kernel: int,
        stride: int = 1,
        dilation: int = 1,
        gain: float = 1.0,
        relu: bool = True,
        bias_std: float = 0.01,
    ) -> str:
        """Conv with folded BatchNorm (weights + bias), optionally followed by ReLU."""
        std = gain * math.sqrt(2.0 / (cin * kernel * kernel))
        w = self.const(f"{name}.weight", self.normal((cout, cin, kernel, kernel), std))
        b = self.const(f"{name}.bias", self.normal((cout,), bias_std))
        pad = dilation * (kernel - 1) // 2
        y = self.op(
            "Conv", [x, w, b], name,
            kernel_shape=[kernel, kernel], strides=[stride, stride], pads=[pad] * 4,
            dilations=[dilation, dilation],
        )
        return self.op("Relu", [y], f"{name}.relu") if relu else y

    def linear(self, x: str, name: str, fin: int, fout: int, std: float,
               output: str | None = None) -> str:
        w = self.const(f"{name}.weight", self.normal((fout, fin), std))
        b = self.const(f"{name}.bias", self.normal((fout,), 0.01))
        return self.op("Gemm", [x, w, b], name, output=output, transB=1)

    def resize_like(self, x: str, like: str, name: str) -> str:
        """Bilinear resize of ``x`` ([N, C, h, w]) to the H/W of ``like`` ([N, *, H, W]),
        computed at run time from both shapes (what torch exports for
        ``F.interpolate(x, size=like.shape[-2:])``)."""
        starts0 = self.const(f"{name}.starts0", np.array([0], np.int64))
        starts2 = self.const(f"{name}.starts2", np.array([2], np.int64))
        ends4 = self.const(f"{name}.ends4", np.array([4], np.int64))
        axes = self.const(f"{name}.axes", np.array([0], np.int64))
        like_shape = self.op("Shape", [like], f"{name}.like_shape")
        hw = self.op("Slice", [like_shape, starts2, ends4, axes], f"{name}.hw")
        x_shape = self.op("Shape", [x], f"{name}.x_shape")
        nc = self.op("Slice", [x_shape, starts0, starts2, axes], f"{name}.nc")
        sizes = self.op("Concat", [nc, hw], f"{name}.sizes", axis=0)
        return self.op(
            "Resize", [x, "", "", sizes], name,
            mode="linear", coordinate_transformation_mode="pytorch_half_pixel",
        )

    def model(
        self,
        name: str,
        inputs: list[onnx.ValueInfoProto],
        outputs: list[onnx.ValueInfoProto],
        doc: str,
        props: dict[str, str],
    ) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, name, inputs, outputs, self.initializers, doc_string=doc)
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", OPSET)],
            ir_version=IR_VERSION,
            producer_name=PRODUCER,
            producer_version=EXAMPLES_VERSION,
        )
        helper.set_model_props(model, {"trtops.example": name, **props})
        return model


def _io(name: str, dims: Sequence[int | str]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(dims))


# --------------------------------------------------------------------------- ResNet-50


def build_resnet50(batch: int = 64, seed: int = 50) -> onnx.ModelProto:
    """ResNet-50 v1.5 with random weights (see the module docstring).

    Args:
        batch: the static batch size of ``input``.
        seed: weight seed.

    Returns:
        The model.
    """
    if batch < 1:
        raise ValueError("batch must be >= 1")
    g = _Graph(seed)
    x = g.conv("input", "conv1", 3, 64, 7, stride=2)
    x = g.op("MaxPool", [x], "maxpool", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    cin = 64
    for stage, (width, blocks, stride) in enumerate(((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)), 1):
        cout = width * 4
        for block in range(blocks):
            s = stride if block == 0 else 1
            prefix = f"layer{stage}.{block}"
            y = g.conv(x, f"{prefix}.conv1", cin, width, 1)
            y = g.conv(y, f"{prefix}.conv2", width, width, 3, stride=s)
            y = g.conv(y, f"{prefix}.conv3", width, cout, 1, gain=_RESIDUAL_GAIN, relu=False)
            if block == 0:
                # The projection's input is post-ReLU (second moment half its variance
                # before ReLU): gain 1/sqrt(2) keeps the new stream at the old scale.
                shortcut = g.conv(x, f"{prefix}.downsample", cin, cout, 1, stride=s,
                                  gain=math.sqrt(0.5), relu=False)
            else:
                shortcut = x
            x = g.op("Relu", [g.op("Add", [y, shortcut], f"{prefix}.add")], f"{prefix}.relu")
            cin = cout
    x = g.op("GlobalAveragePool", [x], "avgpool")
    x = g.op("Flatten", [x], "flatten", axis=1)
    # Pooled features have an RMS of ~1 for inputs in [0, 1): logits get a std of ~1.
    g.linear(x, "fc", 2048, 1000, std=1.0 / math.sqrt(2048), output="logits")
    return g.model(
        "resnet50",
        [_io("input", [batch, 3, 224, 224])],
        [_io("logits", [batch, 1000])],
        "ResNet-50 (bottlenecks 3-4-6-3, BN folded), random He-initialized weights.",
        {"seed": str(seed), "batch": str(batch)},
    )


def make_resnet50(path: str | os.PathLike[str], batch: int = 64, seed: int = 50) -> Path:
    """Write :func:`build_resnet50` to ``path`` (atomic; skipped when up to date).

    Args:
        path: destination ``.onnx`` file.
        batch: static batch size.
        seed: weight seed.

    Returns:
        ``path`` as a Path.
    """
    return _save(build_resnet50(batch=batch, seed=seed), path)


# --------------------------------------------------------------------------- FCN


def build_fcn(num_classes: int = 21, seed: int = 21) -> onnx.ModelProto:
    """FCN on a ResNet-18 backbone whose last stage is dilated (output stride 16).

    Args:
        num_classes: channels of ``out``.
        seed: weight seed.

    Returns:
        The model: ``input`` [1, 3, H, W] -> ``out`` [1, num_classes, H, W].
    """
    g = _Graph(seed)
    x = g.conv("input", "backbone.conv1", 3, 64, 7, stride=2)
    x = g.op("MaxPool", [x], "backbone.maxpool", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    cin = 64
    # (width, stride, dilation): layer4 trades its stride for dilation, as torchvision's
    # segmentation backbones do, so the head sees 1/16 of the input resolution.
    for stage, (width, stride, dilation) in enumerate(((64, 1, 1), (128, 2, 1), (256, 2, 1), (512, 1, 2)), 1):
        for block in range(2):
            s = stride if block == 0 else 1
            prefix = f"backbone.layer{stage}.{block}"
            y = g.conv(x, f"{prefix}.conv1", cin, width, 3, stride=s, dilation=dilation)
            # Only 8 blocks add to the residual stream here (16 in ResNet-50): a larger
            # branch gain still keeps activations O(1).
            y = g.conv(y, f"{prefix}.conv2", width, width, 3, dilation=dilation,
                       gain=_RESIDUAL_GAIN * 1.5, relu=False)
            if block == 0 and (s != 1 or cin != width):
                shortcut = g.conv(x, f"{prefix}.downsample", cin, width, 1, stride=s,
                                  gain=math.sqrt(0.5), relu=False)
            else:
                shortcut = x
            x = g.op("Relu", [g.op("Add", [y, shortcut], f"{prefix}.add")], f"{prefix}.relu")
            cin = width
    x = g.conv(x, "classifier.0", 512, 128, 3)
    x = g.conv(x, "classifier.4", 128, num_classes, 1, gain=0.5, relu=False)
    g.resize_like(x, "input", "out")
    return g.model(
        "fcn_resnet",
        [_io("input", [1, 3, "H", "W"])],
        [_io("out", [1, num_classes, "H", "W"])],
        "FCN segmentation head on a dilated ResNet-18 backbone (stride 16), random weights; "
        "logits resized to the input H/W.",
        {"seed": str(seed), "num_classes": str(num_classes)},
    )


def make_fcn(path: str | os.PathLike[str], num_classes: int = 21, seed: int = 21) -> Path:
    """Write :func:`build_fcn` to ``path`` (atomic; skipped when up to date).

    Args:
        path: destination ``.onnx`` file.
        num_classes: output channels.
        seed: weight seed.

    Returns:
        ``path`` as a Path.
    """
    return _save(build_fcn(num_classes=num_classes, seed=seed), path)


# --------------------------------------------------------------------------- small models


def build_tiny_cnn(seed: int = 1) -> onnx.ModelProto:
    """Tiny classifier: ``input`` [N, 3, 32, 32] -> ``logits`` [N, 10]."""
    g = _Graph(seed)
    x = g.conv("input", "conv1", 3, 8, 3)
    x = g.op("MaxPool", [x], "pool1", kernel_shape=[2, 2], strides=[2, 2])
    x = g.conv(x, "conv2", 8, 16, 3)
    x = g.op("GlobalAveragePool", [x], "gap")
    x = g.op("Flatten", [x], "flatten", axis=1)
    g.linear(x, "fc", 16, 10, std=1.0 / math.sqrt(16), output="logits")
    return g.model(
        "tiny_cnn",
        [_io("input", ["N", 3, 32, 32])],
        [_io("logits", ["N", 10])],
        "Tiny CNN classifier with dynamic batch.",
        {"seed": str(seed)},
    )


def make_tiny_cnn(path: str | os.PathLike[str], seed: int = 1) -> Path:
    """Write :func:`build_tiny_cnn` to ``path``; returns it as a Path."""
    return _save(build_tiny_cnn(seed=seed), path)


def build_two_inputs(seed: int = 2) -> onnx.ModelProto:
    """Two inputs (``image`` [N, 3, H, W], ``scale`` [N, 8]) and two outputs
    (``embedding`` [N, 8], ``mask`` [N, 1, H, W])."""
    g = _Graph(seed)
    feat = g.conv("image", "conv1", 3, 8, 3)
    pooled = g.op("Flatten", [g.op("GlobalAveragePool", [feat], "gap")], "flatten", axis=1)
    g.op("Mul", [pooled, "scale"], "embedding")
    logit = g.conv(feat, "mask_conv", 8, 1, 1, relu=False)
    g.op("Sigmoid", [logit], "mask")
    return g.model(
        "two_inputs",
        [_io("image", ["N", 3, "H", "W"]), _io("scale", ["N", 8])],
        [_io("embedding", ["N", 8]), _io("mask", ["N", 1, "H", "W"])],
        "Two dynamic inputs, two outputs of different ranks.",
        {"seed": str(seed)},
    )


def make_two_inputs(path: str | os.PathLike[str], seed: int = 2) -> Path:
    """Write :func:`build_two_inputs` to ``path``; returns it as a Path."""
    return _save(build_two_inputs(seed=seed), path)


def build_qdq(seed: int = 3) -> onnx.ModelProto:
    """Tiny CNN with explicit int8 quantization (Q/DQ).

    Weights stay float and pass through QuantizeLinear -> DequantizeLinear (per output
    channel, axis 0), the pattern QAT toolkits export and TensorRT 8.6+ folds into int8
    weights; activations get per-tensor Q/DQ before every Conv and the Gemm. Zero points
    are int8 zeros (TensorRT accepts only symmetric quantization).
    """
    g = _Graph(seed)

    def qdq(x: str, name: str, scale: np.ndarray, axis: int | None = None) -> str:
        s = g.const(f"{name}.scale", scale.astype(np.float32))
        z = g.const(f"{name}.zero_point", np.zeros(scale.shape, np.int8))
        attrs = {} if axis is None else {"axis": axis}
        q = g.op("QuantizeLinear", [x, s, z], f"{name}.quantize", **attrs)
        return g.op("DequantizeLinear", [q, s, z], f"{name}.dequantize", **attrs)

    def qconv(x: str, name: str, cin: int, cout: int, act_scale: float) -> str:
        w = g.normal((cout, cin, 3, 3), math.sqrt(2.0 / (cin * 9)))
        b = g.normal((cout,), 0.01)
        w_name = g.const(f"{name}.weight", w)
        b_name = g.const(f"{name}.bias", b)
        w_scale = np.abs(w).reshape(cout, -1).max(axis=1) / 127.0
        xq = qdq(x, f"{name}.input", np.array(act_scale, np.float32))
        wq = qdq(w_name, f"{name}.weight", w_scale, axis=0)
        y = g.op("Conv", [xq, wq, b_name], name, kernel_shape=[3, 3], pads=[1, 1, 1, 1])
        return g.op("Relu", [y], f"{name}.relu")

    # Activation scales: inputs are in [0, 1); ReLU outputs of He-initialized convs stay
    # below ~4 for such inputs.
    x = qconv("input", "conv1", 3, 8, 1.0 / 127.0)
    x = g.op("MaxPool", [x], "pool1", kernel_shape=[2, 2], strides=[2, 2])
    x = qconv(x, "conv2", 8, 16, 4.0 / 127.0)
    x = g.op("GlobalAveragePool", [x], "gap")
    x = g.op("Flatten", [x], "flatten", axis=1)
    w = g.normal((10, 16), 1.0 / math.sqrt(16))
    w_name = g.const("fc.weight", w)
    b_name = g.const("fc.bias", g.normal((10,), 0.01))
    xq = qdq(x, "fc.input", np.array(2.0 / 127.0, np.float32))
    wq = qdq(w_name, "fc.weight", np.array(np.abs(w).max() / 127.0, np.float32))
    g.op("Gemm", [xq, wq, b_name], "fc", output="logits", transB=1)
    return g.model(
        "tiny_qdq",
        [_io("input", ["N", 3, 32, 32])],
        [_io("logits", ["N", 10])],
        "Tiny CNN with explicit int8 quantization (QuantizeLinear/DequantizeLinear).",
        {"seed": str(seed)},
    )


def make_qdq(path: str | os.PathLike[str], seed: int = 3) -> Path:
    """Write :func:`build_qdq` to ``path``; returns it as a Path."""
    return _save(build_qdq(seed=seed), path)


def build_tiny_seg(num_classes: int = 5, seed: int = 4) -> onnx.ModelProto:
    """Tiny segmentation net: ``input`` [N, 3, H, W] -> ``out`` [N, num_classes, H, W]."""
    g = _Graph(seed)
    x = g.conv("input", "conv1", 3, 8, 3, stride=2)
    x = g.conv(x, "conv2", 8, 16, 3, stride=2)
    x = g.conv(x, "head", 16, num_classes, 1, relu=False)
    g.resize_like(x, "input", "out")
    return g.model(
        "tiny_seg",
        [_io("input", ["N", 3, "H", "W"])],
        [_io("out", ["N", num_classes, "H", "W"])],
        "Tiny segmentation net (stride 4) with dynamic N/H/W; logits resized to the input.",
        {"seed": str(seed), "num_classes": str(num_classes)},
    )


def make_tiny_seg(path: str | os.PathLike[str], num_classes: int = 5, seed: int = 4) -> Path:
    """Write :func:`build_tiny_seg` to ``path``; returns it as a Path."""
    return _save(build_tiny_seg(num_classes=num_classes, seed=seed), path)


def build_external_mlp(seed: int = 5) -> onnx.ModelProto:
    """MLP ``input`` [N, 64] -> ``output`` [N, 10] with its weights inline (the
    external-data layout is applied by :func:`make_external_data`)."""
    g = _Graph(seed)
    x = g.linear("input", "fc1", 64, 256, std=math.sqrt(2.0 / 64))
    x = g.op("Relu", [x], "relu1")
    g.linear(x, "fc2", 256, 10, std=math.sqrt(1.0 / 256), output="output")
    return g.model(
        "tiny_external",
        [_io("input", ["N", 64])],
        [_io("output", ["N", 10])],
        "MLP whose weights are stored as ONNX external data.",
        {},  # no seed here: the seed must change only the .data file
    )


_EXTERNAL_ALIGN = 64


def external_data_bytes(model: onnx.ModelProto, location: str) -> tuple[bytes, bytes]:
    """Move every initializer of ``model`` into one external-data blob.

    Offsets are aligned to 64 bytes and depend only on tensor sizes, so two models that
    differ only in weight values give identical ``.onnx`` bytes.

    Args:
        model: modified in place (initializers point at ``location``).
        location: file name of the blob, relative to the ``.onnx`` file.

    Returns:
        ``(onnx_bytes, data_bytes)``.
    """
    from onnx.external_data_helper import set_external_data

    blob = bytearray()
    for tensor in model.graph.initializer:
        raw = numpy_helper.to_array(tensor).tobytes()
        blob.extend(b"\0" * (-len(blob) % _EXTERNAL_ALIGN))
        offset = len(blob)
        blob.extend(raw)
        set_external_data(tensor, location=location, offset=offset, length=len(raw))
        tensor.data_location = TensorProto.EXTERNAL
        tensor.ClearField("raw_data")
    return model.SerializeToString(), bytes(blob)


def make_external_data(path: str | os.PathLike[str], seed: int = 5) -> Path:
    """Write the external-data MLP: ``path`` and ``<path>.data`` (the data first, so the
    ``.onnx`` never points at a missing blob).

    Args:
        path: destination ``.onnx`` file; the weights go to ``path + ".data"``.
        seed: weight seed (changes only the ``.data`` file).

    Returns:
        ``path`` as a Path.
    """
    target = Path(path)
    location = target.name + ".data"
    model_bytes, data = external_data_bytes(build_external_mlp(seed=seed), location)
    write_if_changed(target.with_name(location), data)
    write_if_changed(target, model_bytes)
    return target


def external_data_files(path: str | os.PathLike[str]) -> list[Path]:
    """Every file a model written by :func:`make_external_data` consists of."""
    target = Path(path)
    return [target, target.with_name(target.name + ".data")]


# --------------------------------------------------------------------------- registry


def _save(model: onnx.ModelProto, path: str | os.PathLike[str]) -> Path:
    target = Path(path)
    write_if_changed(target, model.SerializeToString())
    return target


class Example(NamedTuple):
    """A generated example model: its maker and its file name under ``manifests/models``."""

    make: Callable[..., Path]
    filename: str


REGISTRY: dict[str, Example] = {
    "resnet50": Example(make_resnet50, "resnet50_b64.onnx"),
    "fcn_resnet": Example(make_fcn, "fcn_resnet.onnx"),
    "tiny_cnn": Example(make_tiny_cnn, "tiny_cnn.onnx"),
    "two_inputs": Example(make_two_inputs, "two_inputs.onnx"),
    "tiny_qdq": Example(make_qdq, "tiny_qdq.onnx"),
    "tiny_seg": Example(make_tiny_seg, "tiny_seg.onnx"),
    "tiny_external": Example(make_external_data, "tiny_external.onnx"),
}

# One line per example, for ``python -m trtops.examples --list``.
DESCRIPTIONS: dict[str, str] = {
    "resnet50": "ResNet-50, input [64,3,224,224] static -> logits [64,1000] (~100 MB)",
    "fcn_resnet": "FCN on dilated ResNet-18, input [1,3,H,W] -> out [1,21,H,W] (~45 MB)",
    "tiny_cnn": "tiny classifier, input [N,3,32,32] -> logits [N,10]",
    "two_inputs": "image [N,3,H,W] + scale [N,8] -> embedding [N,8], mask [N,1,H,W]",
    "tiny_qdq": "tiny classifier with explicit int8 Q/DQ, input [N,3,32,32] -> logits [N,10]",
    "tiny_seg": "tiny segmentation net, input [N,3,H,W] -> out [N,5,H,W]",
    "tiny_external": "MLP input [N,64] -> output [N,10], weights in tiny_external.onnx.data",
}

# Files each example writes besides its ``filename`` (relative to the same directory).
EXTRA_FILES: dict[str, tuple[str, ...]] = {
    "tiny_external": ("tiny_external.onnx.data",),
}
