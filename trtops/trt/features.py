"""What a TensorRT generation can do, and how each precision is built with it (pure).

Two sources describe a TensorRT installation with the same :class:`Features` record:

* :func:`features_for_version` says what a release *is known* to offer. The planner uses
  it (through :mod:`trtops.trt.support`) for targets whose TensorRT is not installed here.
* :func:`trtops.trt.trt_compat.detect_features` looks at the imported ``tensorrt``
  module (attributes present or not) at build time.

:func:`choose_strategy` turns a precision plus :class:`Features` into a
:class:`Strategy` (network typing, builder flags, model cast, calibration) or raises
:class:`Unsupported` with a reason a person can act on. Because both the planner and the
builder go through it, a combination refused at plan time is exactly one the builder could
not honour, and vice versa.

Nothing here imports tensorrt.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MIN_TENSORRT = (8, 6)

PRECISION_FLAGS = ("FP16", "BF16", "TF32", "INT8", "FP8")
TACTIC_SOURCES = {
    "cublas": "CUBLAS",
    "cublas_lt": "CUBLAS_LT",
    "cudnn": "CUDNN",
    "edge_mask_convolutions": "EDGE_MASK_CONVOLUTIONS",
    "jit_convolutions": "JIT_CONVOLUTIONS",
}
# Library-backed tactics: not available to hardware-compatible engines (TensorRT disables
# them) nor to the lean runtime that version-compatible engines carry.
LIBRARY_TACTIC_SOURCES = frozenset({"cublas", "cublas_lt", "cudnn"})
HARDWARE_LEVELS = {"ampere_plus": "AMPERE_PLUS", "same_compute_capability": "SAME_COMPUTE_CAPABILITY"}


class Unsupported(Exception):
    """A precision/feature combination this TensorRT cannot build; ``str()`` says why."""


def parse_version(text: str) -> tuple[int, ...]:
    """``"8.6.0"`` / ``"10.13.3.9"`` / ``"10.0.0b6"`` → ``(8, 6, 0)`` ... (numeric parts only).

    Raises:
        ValueError: when the text does not start with ``major.minor``.
    """
    match = re.match(r"^\s*(\d+)\.(\d+)((?:\.\d+)*)", str(text))
    if not match:
        raise ValueError(f"not a TensorRT version: {text!r}")
    parts = [int(match.group(1)), int(match.group(2))]
    parts += [int(p) for p in match.group(3).split(".") if p]
    return tuple(parts)


def format_version(version: tuple[int, ...]) -> str:
    return ".".join(str(p) for p in version)


@dataclass(frozen=True)
class Features:
    """What one TensorRT installation offers, as far as trtops cares.

    ``strongly_typed`` is ``"no"`` (8.6: flag missing), ``"optional"`` (10.x: the
    STRONGLY_TYPED network flag exists) or ``"always"`` (11.x: precision flags are gone and
    every network is strongly typed).
    """

    version: tuple[int, ...]
    precision_flags: frozenset[str]
    strongly_typed: str
    calibrators: bool
    hardware_levels: frozenset[str]
    version_compatible: bool
    tactic_sources: frozenset[str] = field(default_factory=lambda: frozenset(TACTIC_SOURCES))
    # FP8 Q/DQ import from ONNX (the 8.6 FP8 flag only serves plugins).
    fp8_qdq: bool = False

    @property
    def version_text(self) -> str:
        return format_version(self.version)


def features_for_version(version: str | tuple[int, ...]) -> Features:
    """Features known for a TensorRT release (the planner's view of a target).

    Args:
        version: a version string (``"10.13.3.9"``) or tuple.

    Returns:
        The :class:`Features` of that release family.

    Raises:
        ValueError: for an unparseable version string.
    """
    v = parse_version(version) if isinstance(version, str) else tuple(version)
    major_minor = v[:2]
    if major_minor >= (11, 0):
        # TF32 is a math-mode switch, not a weak-typing flag; 11 keeps it.
        return Features(
            version=v,
            precision_flags=frozenset({"TF32"}),
            strongly_typed="always",
            calibrators=False,
            hardware_levels=frozenset({"AMPERE_PLUS", "SAME_COMPUTE_CAPABILITY"}),
            version_compatible=True,
            fp8_qdq=True,
        )
    if major_minor >= (9, 0):
        levels = {"AMPERE_PLUS"}
        if major_minor >= (10, 9):
            levels.add("SAME_COMPUTE_CAPABILITY")
        return Features(
            version=v,
            precision_flags=frozenset(PRECISION_FLAGS),
            strongly_typed="optional",
            calibrators=True,
            hardware_levels=frozenset(levels),
            version_compatible=True,
            fp8_qdq=major_minor >= (10, 0),
        )
    if major_minor >= MIN_TENSORRT:
        return Features(
            version=v,
            precision_flags=frozenset({"FP16", "TF32", "INT8"}),
            strongly_typed="no",
            calibrators=True,
            hardware_levels=frozenset({"AMPERE_PLUS"}),
            version_compatible=True,
        )
    return Features(
        version=v,
        precision_flags=frozenset({"FP16", "TF32", "INT8"}),
        strongly_typed="no",
        calibrators=True,
        hardware_levels=frozenset(),
        version_compatible=False,
    )


@dataclass(frozen=True)
class Strategy:
    """How to build one precision with one TensorRT.

    Attributes:
        strongly_typed: create the network with the STRONGLY_TYPED flag (or rely on 11.x
            where every network is strongly typed).
        set_flags: BuilderFlag names to set.
        clear_flags: BuilderFlag names to clear (TF32 for strict fp32).
        cast: ``"fp16"`` / ``"bf16"`` when the ONNX model must be cast first
            (:mod:`trtops.trt.prepare`), else ``None``.
        calibrate: whether an INT8 calibrator must be attached.
        notes: human-readable lines for the build log.
    """

    strongly_typed: bool
    set_flags: tuple[str, ...] = ()
    clear_flags: tuple[str, ...] = ()
    cast: str | None = None
    calibrate: bool = False
    notes: tuple[str, ...] = ()


_MODELOPT_HINT = "quantize the model with NVIDIA ModelOpt (it inserts Q/DQ nodes) and build from that model"


def choose_strategy(
    precision: str,
    features: Features,
    *,
    model_has_qdq: bool,
    has_calibration: bool,
    strongly_typed: bool | None = None,
) -> Strategy:
    """Pick the way to build ``precision`` with a TensorRT offering ``features``.

    Args:
        precision: fp32 | tf32 | fp16 | bf16 | int8 | fp8.
        features: what the TensorRT offers.
        model_has_qdq: the ONNX model has QuantizeLinear/DequantizeLinear nodes.
        has_calibration: calibration data is configured for this engine.
        strongly_typed: force (True) or forbid (False) a strongly typed network; ``None``
            picks weak typing where the TensorRT still has precision flags.

    Returns:
        The :class:`Strategy`.

    Raises:
        Unsupported: the combination cannot be built; the message says why and what to do.
    """
    v = features.version_text
    if features.version[:2] < MIN_TENSORRT:
        raise Unsupported(f"TensorRT {v} is older than 8.6, the oldest release trtops supports")
    if features.strongly_typed == "always":
        if strongly_typed is False:
            raise Unsupported(f"TensorRT {v} builds only strongly typed networks")
        use_strong = True
    elif strongly_typed:
        if features.strongly_typed == "no":
            raise Unsupported(f"TensorRT {v} has no strongly typed networks (TensorRT >= 10 has)")
        use_strong = True
    else:
        use_strong = False

    if use_strong:
        return _strong_strategy(precision, features, model_has_qdq=model_has_qdq)
    return _weak_strategy(precision, features, model_has_qdq=model_has_qdq, has_calibration=has_calibration)


def _strong_strategy(precision: str, features: Features, *, model_has_qdq: bool) -> Strategy:
    v = features.version_text
    tf32 = "TF32" in features.precision_flags
    no_tf32 = ("TF32",) if tf32 else ()
    note = f"strongly typed network (TensorRT {v})"
    if precision == "fp32":
        return Strategy(strongly_typed=True, clear_flags=no_tf32, notes=(note,))
    if precision == "tf32":
        if not tf32:
            raise Unsupported(f"tf32 needs the TF32 builder flag, which TensorRT {v} does not have")
        return Strategy(strongly_typed=True, set_flags=("TF32",), notes=(note,))
    if precision in ("fp16", "bf16"):
        return Strategy(
            strongly_typed=True,
            cast=precision,
            notes=(note, f"model cast to {precision} before parsing (inputs/outputs keep their types)"),
        )
    if precision == "int8":
        if not model_has_qdq:
            raise Unsupported(
                f"int8 with a strongly typed network (TensorRT {v}) needs a model with Q/DQ nodes: "
                f"implicit INT8 calibration is not available; {_MODELOPT_HINT}"
            )
        return Strategy(strongly_typed=True, notes=(note, "explicit quantization from Q/DQ nodes"))
    if precision == "fp8":
        if not features.fp8_qdq:
            raise Unsupported(f"fp8 needs TensorRT >= 10.0 (FP8 Q/DQ import); this is {v}")
        if not model_has_qdq:
            raise Unsupported(f"fp8 needs a model with FP8 Q/DQ nodes; {_MODELOPT_HINT}")
        return Strategy(strongly_typed=True, notes=(note, "explicit FP8 quantization from Q/DQ nodes"))
    raise Unsupported(f"unknown precision {precision!r}")


def _weak_strategy(precision: str, features: Features, *, model_has_qdq: bool, has_calibration: bool) -> Strategy:
    v = features.version_text
    flags = features.precision_flags
    # Weakly typed networks with Q/DQ layers need INT8 enabled whatever the label says:
    # the quantization is explicit, so no calibrator is involved.
    qdq = ("INT8",) if model_has_qdq and "INT8" in flags else ()

    def need(flag: str) -> None:
        if flag not in flags:
            raise Unsupported(f"{precision} needs the {flag} builder flag, which TensorRT {v} does not have")

    if precision == "fp32":
        clear = ("TF32",) if "TF32" in flags else ()
        return Strategy(strongly_typed=False, set_flags=qdq, clear_flags=clear)
    if precision == "tf32":
        need("TF32")
        return Strategy(strongly_typed=False, set_flags=("TF32",) + qdq)
    if precision == "fp16":
        need("FP16")
        return Strategy(strongly_typed=False, set_flags=("FP16",) + qdq)
    if precision == "bf16":
        if "BF16" not in flags:
            raise Unsupported(f"bf16 needs TensorRT >= 9.0 (BF16 builder flag); this is {v}")
        return Strategy(strongly_typed=False, set_flags=("BF16",) + qdq)
    if precision == "int8":
        need("INT8")
        if model_has_qdq:
            return Strategy(strongly_typed=False, set_flags=("INT8",), notes=("explicit quantization from Q/DQ nodes",))
        if not has_calibration:
            raise Unsupported(
                "int8 needs calibration data ('calibration:' in the manifest) or a model with Q/DQ nodes"
            )
        if not features.calibrators:
            raise Unsupported(f"TensorRT {v} has no INT8 calibrators; {_MODELOPT_HINT}")
        return Strategy(strongly_typed=False, set_flags=("INT8",), calibrate=True, notes=("implicit INT8 calibration",))
    if precision == "fp8":
        if not features.fp8_qdq or "FP8" not in flags:
            raise Unsupported(f"fp8 needs TensorRT >= 10.0 (FP8 Q/DQ import); this is {v}")
        if not model_has_qdq:
            raise Unsupported(f"fp8 needs a model with FP8 Q/DQ nodes; {_MODELOPT_HINT}")
        return Strategy(strongly_typed=False, set_flags=("FP8",) + qdq, notes=("explicit FP8 quantization",))
    raise Unsupported(f"unknown precision {precision!r}")
