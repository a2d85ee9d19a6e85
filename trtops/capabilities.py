"""What TensorRT can build where: THE precision table and THE verdict (pure, no tensorrt).

Everything that knows which precision a TensorRT release and a GPU can build reads this
module, so ``trtops validate``, ``trtops plan`` and the builder cannot disagree:

* :data:`PRECISIONS` — one :class:`PrecisionRule` per precision: the builder flag of weakly
  typed networks (8.6, 9.x, 10.x), how a strongly typed network gets it (10.x on request,
  11.x always: plain, a math-mode flag, a model cast, or Q/DQ nodes), whether it needs
  Q/DQ nodes or INT8 calibration, the oldest TensorRT and compute capability, the default
  accuracy tolerance. Adding a precision means adding a row here (and its tests).
* :func:`features_for_version` — what a release is known to offer (:class:`Features`); the
  planner uses it for targets whose TensorRT is not installed here. At build time
  :func:`trtops.trt.trt_compat.detect_features` fills the same record from the imported
  module's attributes.
* :func:`choose_strategy` — how to build a precision with given :class:`Features`.
* :func:`unsupported_reason` — why a build config cannot be built with given features on a
  GPU of a compute capability, or ``None``. ``match_target`` in :mod:`trtops.plan` calls it
  with :func:`features_for_version` of the platform's TensorRT, the builder with the
  detected features, the manifest checks with :func:`quantization_problem` (the part that
  holds for every release).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

MIN_TENSORRT = (8, 6)

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
# Manifest name -> HardwareCompatibilityLevel member, with the first release that has it.
HARDWARE_LEVELS = {"ampere_plus": "AMPERE_PLUS", "same_compute_capability": "SAME_COMPUTE_CAPABILITY"}
HARDWARE_LEVEL_SINCE = {"ampere_plus": (8, 6), "same_compute_capability": (10, 9)}
# Hardware-compatible (ampere_plus) plans are built on Ampere or newer.
AMPERE = (8, 0)
# Strongly typed networks: the STRONGLY_TYPED flag from 10.0 (optional), the only kind in 11.
STRONGLY_TYPED_SINCE = (10, 0)
STRONGLY_TYPED_ONLY_SINCE = (11, 0)
# The pip wheels before 10.0 (8.6.0 in the GPU lab) ship no lean runtime, which
# version-compatible engines embed: such builds fail there ("Invalid Engine").
LEAN_RUNTIME_IN_WHEEL_SINCE = (10, 0)

_ARCH = {(8, 0): "Ampere", (8, 9): "Ada"}
_MODELOPT_HINT = "quantize the model with NVIDIA ModelOpt (it inserts Q/DQ nodes) and build from that model"


@dataclass(frozen=True)
class DefaultTolerance:
    """Accuracy tolerance used when the manifest gives none for a precision."""

    atol: float
    rtol: float
    stat: str  # elemwise | max | mean | median | quantile


@dataclass(frozen=True)
class PrecisionRule:
    """How one precision is built, and what it needs.

    Attributes:
        name: the manifest's name (``fp16``).
        builder_flag: BuilderFlag set for it in a weakly typed network (None: fp32).
        strong: how a strongly typed network gets it: ``"plain"`` (nothing to do),
            ``"flag"`` (the builder flag is a math mode that strong typing keeps: TF32),
            ``"cast"`` (the ONNX model is cast first, :mod:`trtops.prepare.cast`) or
            ``"qdq"`` (only from Q/DQ nodes in the model).
        cast_onnx_type: ``onnx.TensorProto`` member the model is cast to (``strong == "cast"``).
        clear_flags: BuilderFlags cleared (strict fp32 turns TF32 off).
        quantized: the engine needs Q/DQ nodes, or (``calibratable``) INT8 calibration data.
        calibratable: implicit calibration can stand in for Q/DQ nodes (weak typing only).
        qdq_feature: the :class:`Features` attribute the Q/DQ import of this type needs.
        min_tensorrt: oldest TensorRT that builds it (the builder flag appeared then).
        min_cc: lowest compute capability with the hardware for it, or None.
        tolerance: default accuracy tolerance (fp32/tf32 element-wise and tight; reduced
            precisions by the median error, which tolerates the few outliers rounding
            produces in large outputs but still catches a broken engine).
        reduced: layers may run below fp32, so ``keep_fp32`` (nodes held in fp32) means
            something; for fp32 and tf32 (a math mode of fp32 tensors) it has no effect.
    """

    name: str
    builder_flag: str | None
    strong: str
    tolerance: DefaultTolerance
    cast_onnx_type: str | None = None
    clear_flags: tuple[str, ...] = ()
    quantized: bool = False
    calibratable: bool = False
    qdq_feature: str | None = None
    min_tensorrt: tuple[int, int] = MIN_TENSORRT
    min_cc: tuple[int, int] | None = None
    reduced: bool = False


_RULES = (
    PrecisionRule("fp32", None, "plain", DefaultTolerance(1e-4, 1e-3, "elemwise"), clear_flags=("TF32",)),
    PrecisionRule("tf32", "TF32", "flag", DefaultTolerance(1e-3, 1e-2, "elemwise"), min_cc=AMPERE),
    PrecisionRule("fp16", "FP16", "cast", DefaultTolerance(1e-2, 1e-2, "median"), cast_onnx_type="FLOAT16",
                  reduced=True),
    PrecisionRule("bf16", "BF16", "cast", DefaultTolerance(5e-2, 5e-2, "median"), cast_onnx_type="BFLOAT16",
                  min_tensorrt=(9, 0), min_cc=AMPERE, reduced=True),
    PrecisionRule("int8", "INT8", "qdq", DefaultTolerance(1e-1, 1e-1, "median"), quantized=True,
                  calibratable=True, reduced=True),
    PrecisionRule("fp8", "FP8", "qdq", DefaultTolerance(1e-1, 1e-1, "median"), quantized=True,
                  qdq_feature="fp8_qdq", min_tensorrt=(10, 0), min_cc=(8, 9), reduced=True),
)
PRECISIONS: dict[str, PrecisionRule] = {rule.name: rule for rule in _RULES}
PRECISION_NAMES: tuple[str, ...] = tuple(PRECISIONS)
PRECISION_FLAGS: tuple[str, ...] = tuple(r.builder_flag for r in _RULES if r.builder_flag)
CAST_TARGETS: tuple[str, ...] = tuple(r.name for r in _RULES if r.strong == "cast")
# Precisions whose engines keep_fp32 applies to (the others ignore it: nothing runs below fp32).
KEEP_FP32_PRECISIONS: tuple[str, ...] = tuple(r.name for r in _RULES if r.reduced)
# Builder flags a strongly typed network still honours (math modes, not weak typing).
_STRONG_FLAGS = frozenset(r.builder_flag for r in _RULES if r.strong == "flag" and r.builder_flag)


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
    """``(10, 9)`` → ``"10.9"``."""
    return ".".join(str(p) for p in version)


def _parse_cc(text: str) -> tuple[int, int] | None:
    try:
        major, minor = str(text).strip().split(".", 1)
        return int(major), int(minor)
    except ValueError:
        return None


# --------------------------------------------------------------------------- releases


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
    tactic_sources: frozenset[str] = field(default_factory=lambda: frozenset(TACTIC_SOURCES.values()))
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
    release = v[:2]
    supported = release >= MIN_TENSORRT
    if release >= STRONGLY_TYPED_ONLY_SINCE:
        # Weak-typing flags are gone; TF32 is a math mode and stays.
        flags = frozenset(_STRONG_FLAGS)
        strongly_typed = "always"
    else:
        # A precision's builder flag arrived with its minimum release (the 8.6 FP8 flag only
        # served plugins, so fp8 counts from 10.0).
        flags = frozenset(r.builder_flag for r in _RULES
                          if r.builder_flag and (release >= r.min_tensorrt or r.min_tensorrt <= MIN_TENSORRT))
        strongly_typed = "optional" if release >= STRONGLY_TYPED_SINCE else "no"
    return Features(
        version=v,
        precision_flags=flags,
        strongly_typed=strongly_typed,
        calibrators=release < STRONGLY_TYPED_ONLY_SINCE,
        hardware_levels=frozenset(HARDWARE_LEVELS[name] for name, since in HARDWARE_LEVEL_SINCE.items()
                                  if release >= since),
        version_compatible=supported,
        fp8_qdq=release >= PRECISIONS["fp8"].min_tensorrt,
    )


def lean_runtime_expected(version: str | tuple[int, ...]) -> bool:
    """Whether version-compatible builds are expected to work with the pip wheel of this
    release (8.6.0's wheel has no lean runtime, so they fail there with "Invalid Engine")."""
    v = parse_version(version) if isinstance(version, str) else tuple(version)
    return v[:2] >= LEAN_RUNTIME_IN_WHEEL_SINCE


# --------------------------------------------------------------------------- strategies


@dataclass(frozen=True)
class Strategy:
    """How to build one precision with one TensorRT.

    Attributes:
        strongly_typed: create the network with the STRONGLY_TYPED flag (or rely on 11.x
            where every network is strongly typed).
        set_flags: BuilderFlag names to set.
        clear_flags: BuilderFlag names to clear (TF32 for strict fp32).
        cast: ``"fp16"`` / ``"bf16"`` when the ONNX model must be cast first
            (:mod:`trtops.prepare.cast`), else ``None``.
        calibrate: whether an INT8 calibrator must be attached.
        notes: human-readable lines for the build log.
    """

    strongly_typed: bool
    set_flags: tuple[str, ...] = ()
    clear_flags: tuple[str, ...] = ()
    cast: str | None = None
    calibrate: bool = False
    notes: tuple[str, ...] = ()


def quantization_problem(precision: str, *, model_has_qdq: bool, has_calibration: bool,
                         strongly_typed: bool = False) -> str | None:
    """What a quantized precision misses on every TensorRT release, or None (``validate``).

    Args:
        precision: a key of :data:`PRECISIONS`.
        model_has_qdq: the ONNX model has QuantizeLinear/DequantizeLinear nodes.
        has_calibration: calibration data is configured.
        strongly_typed: a strongly typed network is asked for (no implicit calibration).

    Returns:
        The problem, or None.
    """
    rule = PRECISIONS.get(precision)
    if rule is None or not rule.quantized or model_has_qdq:
        return None
    if rule.calibratable and strongly_typed:
        return (f"{precision} with strongly_typed needs a model with Q/DQ (QuantizeLinear/DequantizeLinear) "
                f"nodes: strongly typed networks have no implicit calibration; {_MODELOPT_HINT}")
    if rule.calibratable:
        if has_calibration:
            return None
        return (f"{precision} needs calibration data ('calibration:' in the manifest) or a model with "
                "Q/DQ (QuantizeLinear/DequantizeLinear) nodes")
    return (f"{precision} needs an explicitly quantized model (QuantizeLinear/DequantizeLinear nodes); "
            f"TensorRT has no {precision} calibration; {_MODELOPT_HINT}")


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
        precision: a key of :data:`PRECISIONS`.
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
        raise Unsupported(f"TensorRT {v} is older than {format_version(MIN_TENSORRT)}, the oldest release "
                          "trtops supports")
    rule = PRECISIONS.get(precision)
    if rule is None:
        raise Unsupported(f"unknown precision {precision!r}")
    if features.strongly_typed == "always":
        if strongly_typed is False:
            raise Unsupported(f"TensorRT {v} builds only strongly typed networks")
        use_strong = True
    elif strongly_typed:
        if features.strongly_typed == "no":
            raise Unsupported(f"TensorRT {v} has no strongly typed networks (TensorRT >= "
                              f"{format_version(STRONGLY_TYPED_SINCE)} has)")
        use_strong = True
    else:
        use_strong = False
    if features.version[:2] < rule.min_tensorrt:
        if rule.qdq_feature:
            why = f" ({precision.upper()} Q/DQ import)"
        else:
            why = f" ({rule.builder_flag} builder flag)" if rule.builder_flag else ""
        raise Unsupported(f"{precision} needs TensorRT >= {format_version(rule.min_tensorrt)}{why}; this is {v}")
    if use_strong:
        return _strong_strategy(rule, features, model_has_qdq=model_has_qdq)
    return _weak_strategy(rule, features, model_has_qdq=model_has_qdq, has_calibration=has_calibration)


def _check_qdq_import(rule: PrecisionRule, features: Features) -> None:
    if rule.qdq_feature and not getattr(features, rule.qdq_feature):
        raise Unsupported(f"{rule.name} needs TensorRT >= {format_version(rule.min_tensorrt)} "
                          f"({rule.name.upper()} Q/DQ import); this is {features.version_text}")


def _strong_strategy(rule: PrecisionRule, features: Features, *, model_has_qdq: bool) -> Strategy:
    v = features.version_text
    precision = rule.name
    note = f"strongly typed network (TensorRT {v})"
    if rule.strong == "plain":
        clear = tuple(f for f in rule.clear_flags if f in features.precision_flags)
        return Strategy(strongly_typed=True, clear_flags=clear, notes=(note,))
    if rule.strong == "flag":
        assert rule.builder_flag is not None
        if rule.builder_flag not in features.precision_flags:
            raise Unsupported(f"{precision} needs the {rule.builder_flag} builder flag, which TensorRT {v} "
                              "does not have")
        return Strategy(strongly_typed=True, set_flags=(rule.builder_flag,), notes=(note,))
    if rule.strong == "cast":
        return Strategy(
            strongly_typed=True,
            cast=precision,
            notes=(note, f"model cast to {precision} before parsing (inputs/outputs keep their types)"),
        )
    # "qdq": explicit quantization is the only way in a strongly typed network.
    _check_qdq_import(rule, features)
    if not model_has_qdq:
        if rule.calibratable:
            raise Unsupported(
                f"{precision} with a strongly typed network (TensorRT {v}) needs a model with Q/DQ nodes: "
                f"implicit {precision.upper()} calibration is not available; {_MODELOPT_HINT}"
            )
        raise Unsupported(f"{precision} needs a model with {precision.upper()} Q/DQ nodes; {_MODELOPT_HINT}")
    return Strategy(strongly_typed=True, notes=(note, f"explicit {precision.upper()} quantization from Q/DQ nodes"))


def _weak_strategy(rule: PrecisionRule, features: Features, *, model_has_qdq: bool,
                   has_calibration: bool) -> Strategy:
    v = features.version_text
    flags = features.precision_flags
    precision = rule.name
    # Weakly typed networks with Q/DQ layers need INT8 enabled whatever the label says:
    # the quantization is explicit, so no calibrator is involved.
    qdq = ("INT8",) if model_has_qdq and "INT8" in flags else ()
    if rule.builder_flag is None:
        clear = tuple(f for f in rule.clear_flags if f in flags)
        return Strategy(strongly_typed=False, set_flags=qdq, clear_flags=clear)
    if rule.builder_flag not in flags:
        raise Unsupported(f"{precision} needs the {rule.builder_flag} builder flag, which TensorRT {v} does not have")
    own = (rule.builder_flag,)
    if not rule.quantized:
        return Strategy(strongly_typed=False, set_flags=own + tuple(f for f in qdq if f not in own))
    _check_qdq_import(rule, features)
    if model_has_qdq:
        return Strategy(strongly_typed=False, set_flags=own + tuple(f for f in qdq if f not in own),
                        notes=(f"explicit {precision.upper()} quantization from Q/DQ nodes",))
    problem = quantization_problem(precision, model_has_qdq=False, has_calibration=has_calibration)
    if problem:
        raise Unsupported(problem)
    if not features.calibrators:
        raise Unsupported(f"TensorRT {v} has no INT8 calibrators; {_MODELOPT_HINT}")
    return Strategy(strongly_typed=False, set_flags=own, calibrate=True,
                    notes=(f"implicit {precision.upper()} calibration",))


# --------------------------------------------------------------------------- the verdict


def strongly_typed_request(build: Any) -> bool | None:
    """What a build config asks of :func:`choose_strategy`: ``True`` when it wants a strongly
    typed network, ``None`` (the release decides: weak where precision flags exist)."""
    return True if getattr(build, "strongly_typed", False) else None


def unsupported_reason(
    build: Any,
    features: Features,
    compute_capability: str | None,
    *,
    model_has_qdq: bool | None,
) -> str | None:
    """Why ``build`` cannot be built with a TensorRT offering ``features`` on a GPU of
    ``compute_capability``, or ``None`` if it can. THE rule: the planner (with
    :func:`features_for_version` of the platform's TensorRT) and the builder (with the
    detected features) both call it.

    Args:
        build: a :class:`trtops.spec.BuildConfig` (precision, calibration, compatibility,
            tactic sources, optimization level, strongly_typed).
        features: what the TensorRT offers.
        compute_capability: ``"major.minor"`` of the GPU the engine is built on, or ``None``
            when unknown (GPU checks are then skipped).
        model_has_qdq: the ONNX model has Q/DQ nodes (:func:`trtops.onnx_facts.model_has_qdq`);
            ``None`` when unknown (the model could not be read): Q/DQ needs are then not
            held against the build.

    Returns:
        A one-line reason ("bf16 needs a GPU of compute capability >= 8.0 (Ampere); this GPU
        has 7.5"), or ``None`` when the build is possible.
    """
    version = features.version_text
    if features.version[:2] < MIN_TENSORRT:
        return (f"TensorRT {version} is older than {format_version(MIN_TENSORRT)}, the oldest release "
                "trtops supports")
    precision = build.precision
    try:
        strategy = choose_strategy(
            precision,
            features,
            model_has_qdq=True if model_has_qdq is None else model_has_qdq,
            has_calibration=build.calibration is not None,
            strongly_typed=strongly_typed_request(build),
        )
    except Unsupported as exc:
        return str(exc)
    problem = keep_fp32_problem(build, strategy)
    if problem:
        return problem

    cc = _parse_cc(compute_capability) if compute_capability else None
    rule = PRECISIONS[precision]
    if cc is not None and rule.min_cc is not None and cc < rule.min_cc:
        need = rule.min_cc
        return (f"{precision} needs a GPU of compute capability >= {format_version(need)} ({_ARCH[need]}); "
                f"this GPU has {compute_capability}")

    level = build.hardware_compatibility
    if level != "none":
        trt_name = HARDWARE_LEVELS.get(level)
        if trt_name is None:
            return f"unknown hardware_compatibility {level!r}"
        if trt_name not in features.hardware_levels:
            since = format_version(HARDWARE_LEVEL_SINCE[level])
            return f"hardware_compatibility {level} needs TensorRT >= {since}; this is {version}"
        if level == "ampere_plus" and cc is not None and cc < AMPERE:
            return ("hardware_compatibility ampere_plus must be built on a GPU of compute capability >= "
                    f"{format_version(AMPERE)} ({_ARCH[AMPERE]}); this GPU has {compute_capability}")
        blocked = sorted(LIBRARY_TACTIC_SOURCES & set(build.tactic_sources or ()))
        if blocked:
            return (f"hardware_compatibility {level} disables the {', '.join(blocked)} tactic sources; "
                    "remove them from tactic_sources")

    if build.version_compatible:
        if not features.version_compatible:
            return f"version_compatible needs TensorRT >= {format_version(MIN_TENSORRT)}; this is {version}"
        blocked = sorted(LIBRARY_TACTIC_SOURCES & set(build.tactic_sources or ()))
        if blocked:
            return (f"version_compatible engines run on the lean runtime, which has no {', '.join(blocked)} "
                    "tactics; remove them from tactic_sources")

    if build.tactic_sources:
        unknown = sorted(set(build.tactic_sources) - set(TACTIC_SOURCES))
        if unknown:
            return f"unknown tactic source(s) {', '.join(unknown)}"
        missing = sorted(s for s in build.tactic_sources if TACTIC_SOURCES[s] not in features.tactic_sources)
        if missing:
            return f"tactic source(s) {', '.join(missing)} are not available in TensorRT {version}"

    if build.builder_optimization_level is not None and not 0 <= build.builder_optimization_level <= 5:
        return f"builder_optimization_level must be 0-5, got {build.builder_optimization_level}"
    return None


def model_cast(build: Any, tensorrt_version: str | tuple[int, ...]) -> str | None:
    """The precision the ONNX model is cast to before the given TensorRT release parses it
    (``"fp16"`` / ``"bf16"``), or ``None``: a strongly typed network of a ``"cast"``
    precision, which is every fp16/bf16 build on 11.x and the ``strongly_typed: true`` ones
    on 10.x; never on 8.6 or a weakly typed 10.x build. The preparation stage casts, and the
    engine key names the cast (:func:`trtops.prepare.options.prepare_component`).

    Args:
        build: the build config (precision, strongly_typed, calibration).
        tensorrt_version: the release that builds it (``"11.0.0"``).

    Returns:
        The cast, or None (also when the combination cannot be built: the planner skips it).
    """
    rule = PRECISIONS.get(getattr(build, "precision", None) or "")
    if rule is None or rule.strong != "cast":
        return None
    try:
        features = features_for_version(tensorrt_version)
        strategy = choose_strategy(rule.name, features, model_has_qdq=False,
                                   has_calibration=getattr(build, "calibration", None) is not None,
                                   strongly_typed=strongly_typed_request(build))
    except (Unsupported, ValueError):
        return None
    return strategy.cast
def keeps_fp32(build: Any) -> bool:
    """Whether a build config holds nodes in fp32 (``keep_fp32`` / ``keep_fp32_outputs``)."""
    return bool(getattr(build, "keep_fp32", ()) or getattr(build, "keep_fp32_outputs", ()))


def keep_fp32_how(strategy: Strategy) -> str:
    """How kept nodes stay in fp32 with ``strategy``: ``"layers"`` (weakly typed network:
    layer precisions and output types, with the builder flag that makes TensorRT obey them)
    or ``"casts"`` (a model cast for a strongly typed network: the preparation leaves those
    nodes in float32, with Casts around them, :func:`trtops.prepare.cast.cast_model`)."""
    return "casts" if strategy.cast else "layers"


def keep_fp32_problem(build: Any, strategy: Strategy) -> str | None:
    """Why ``keep_fp32`` cannot be honoured by ``strategy``, or None. A strongly typed network
    ignores layer precisions; its reduced precision comes from a model cast (which can leave
    nodes out) or from Q/DQ nodes (which it cannot)."""
    if not keeps_fp32(build) or strategy.cast or not strategy.strongly_typed:
        return None
    if not PRECISIONS[build.precision].reduced:
        return None
    return (f"keep_fp32 cannot hold nodes in fp32 in a strongly typed {build.precision} network: its "
            f"{build.precision} layers come from the model's Q/DQ nodes; remove the Q/DQ pairs around "
            "those nodes in the model instead")


def reason_for_version(build: Any, tensorrt_version: str, compute_capability: str | None, *,
                       model_has_qdq: bool | None) -> str | None:
    """:func:`unsupported_reason` with the features known for a release (the planner's view).

    Args:
        build: the build config.
        tensorrt_version: full TensorRT version string (``"8.6.0"``, ``"10.13.3.9"``).
        compute_capability: ``"major.minor"`` or None.
        model_has_qdq: as for :func:`unsupported_reason`.

    Returns:
        The reason, or None.
    """
    try:
        features = features_for_version(tensorrt_version)
    except ValueError:
        return f"cannot tell what TensorRT {tensorrt_version!r} supports: not a version number"
    return unsupported_reason(build, features, compute_capability, model_has_qdq=model_has_qdq)
