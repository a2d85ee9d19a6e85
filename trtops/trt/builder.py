"""Build one TensorRT engine from an ONNX model: the only place that drives the builder.

TensorRT is driven directly (not through Polygraphy's ``CreateConfig``, which on 0.53 still
sets precision flags TensorRT 11 removed). Every API difference between 8.6, 10.x and 11.x
goes through :mod:`trtops.trt.trt_compat` (feature detection) and
:mod:`trtops.capabilities` (the verdict the planner also gives, and how to build each
precision).

Flow: check the combination (and that a strongly typed fp16/bf16 build got the model the
preparation stage cast, :mod:`trtops.prepare.cast`; the builder casts nothing) → start the
parse preflight's child (:mod:`trtops.trt.parse_preflight`) → builder, network, configure
(workspace, optimization level, tactic sources, aux streams, compatibility, precision) while
it runs → its verdict → parse ONNX (errors name node and op) → check profiles → profiles,
calibration, timing cache → build → write ``engine.plan`` → read back I/O, layers, device memory.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from trtops.capabilities import (
    HARDWARE_LEVELS,
    TACTIC_SOURCES,
    Features,
    Strategy,
    Unsupported,
    choose_strategy,
    keep_fp32_how,
    keeps_fp32,
    lean_runtime_expected,
    strongly_typed_request,
    unsupported_reason,
)
from trtops.engine_io import EngineIO
from trtops.errors import BuildError, EnvironmentMissing, TrtopsError
from trtops.names import ENGINE_FILE
from trtops.spec import EngineSpec
from trtops.trt.failure_causes import FailureContext, diagnose, error_code_name
from trtops.trt.logger import LogCapture, get_logger
from trtops.trt.network_checks import (
    InputInfo,
    ParserProblem,
    check_profiles,
    parser_error_message,
    resolve_nodes,
)
from trtops.trt.parse_check import parser_flag_names, set_parser_flags
from trtops.trt.trt_compat import (
    detect_features,
    device_memory_size,
    dims_tuple,
    dtype_name,
    has_builder_flag,
    import_tensorrt,
    needs_explicit_batch_flag,
    version_text,
)

if TYPE_CHECKING:
    import tensorrt

    from trtops.trt.api import TensorRT

_LEAN_RUNTIME_HINT = (
    "this TensorRT wheel has no lean runtime (the 8.6.0 pip wheel ships none), which version-compatible "
    "engines embed; set version_compatible: false for this target, or build with a TensorRT installation "
    "that includes libnvinfer_lean (8.6.1+ tarballs/containers, 10.x)"
)


@dataclass
class BuildRequest:
    """What to build and with which caches.

    Attributes:
        spec: the engine (model x precision x target), normalized.
        model_path: the ONNX file (external data beside it).
        workdir: a private directory for this build; ``engine.plan`` is written there.
        timing_cache: serialized timing cache for this TensorRT and GPU, or ``None``.
        calibration_cache: INT8 calibration cache of an earlier build, or ``None``.
        log: called with progress lines, warnings and errors while the build runs.
        model_cast: ``"fp16"``/``"bf16"`` when ``model_path`` is the prepared model cast to it
            (:func:`trtops.prepare.runner.ensure_prepared`), else None. A strongly typed
            fp16/bf16 build needs it (:func:`cast_problem`).
        parse_preflight: parse the model in a child process first, so that a crash of
            TensorRT's ONNX parser fails this build instead of ending the process
            (:mod:`trtops.trt.parse_preflight`; ``TRTOPS_PARSE_PREFLIGHT=0`` turns it off).
        model_digest: the content digest of ``model_path`` (the key's ``model_digest``, or the
            ``prepared/`` digest of a prepared model), or None. With ``preflight_verdicts``
            (a directory: apply gives the cache's ``preflight/``) the preflight's verdict is
            recorded there, and a later build of the same model, flags and TensorRT runs no
            child (:mod:`trtops.trt.preflight_verdicts`).

    Strongly typed networks are asked for by the spec (``spec.build.strongly_typed``);
    TensorRT 11 builds nothing else.
    """

    spec: EngineSpec
    model_path: Path
    workdir: Path
    timing_cache: bytes | None = None
    calibration_cache: bytes | None = None
    log: Callable[[str], None] | None = None
    model_cast: str | None = None
    # False where the build already runs in a worker process of its own (--gpus, Ray): a
    # crash there fails only that worker's engine (trtops.trt.parse_preflight).
    parse_preflight: bool = True
    model_digest: str | None = None
    preflight_verdicts: Path | None = None


def cast_problem(wanted: str | None, given: str | None, tensorrt: str) -> str | None:
    """Why a model cast to ``given`` cannot be built where the strategy wants ``wanted``, or
    None. The preparation stage casts for the TensorRT the plan names; a builder that finds
    another one (or a caller that skipped preparation) must not build an fp32 network under an
    fp16 key, nor cast twice."""
    if wanted == given:
        return None
    if wanted is None:
        return (f"the model was cast to {given} for a strongly typed build, which TensorRT {tensorrt} "
                "does not make here; plan and apply with the TensorRT that builds it")
    prepared = f"cast to {given}" if given else "not cast"
    return (f"TensorRT {tensorrt} builds {wanted} as a strongly typed network from a model cast to {wanted}, "
            f"and the model given was {prepared}; build through `trtops apply` (its preparation stage casts "
            f"it), or pass the model of trtops.prepare.runner.ensure_prepared(..., cast={wanted!r}) with "
            f"model_cast={wanted!r}")


@dataclass
class BuildResult:
    """A built engine and what was learned building it.

    Attributes:
        engine_path: ``<workdir>/engine.plan``.
        io: inputs, outputs and profile shapes, read from the built engine.
        timing_cache: the config's timing cache after the build (what was loaded plus what
            this build timed), serialized; ``None`` when the spec's timing cache is "off".
        calibration_cache: the INT8 calibration cache (to store with the entry), or ``None``.
        layers: engine inspector JSON when this TensorRT can give it, else ``None``.
        build_seconds: wall time of the TensorRT build (calibration included).
        engine_bytes: size of the plan.
        device_memory: activation memory an execution context needs, if known.
        tensorrt_version: ``tensorrt.__version__``.
        log_text: TensorRT's and trtops' messages (info and above).
    """

    engine_path: Path
    io: EngineIO
    timing_cache: bytes | None
    calibration_cache: bytes | None
    layers: dict | None
    build_seconds: float
    engine_bytes: int
    device_memory: int | None
    tensorrt_version: str
    log_text: str


def build_engine(request: BuildRequest) -> BuildResult:
    """Build the engine ``request.spec`` describes.

    Args:
        request: see :class:`BuildRequest`.

    Returns:
        :class:`BuildResult`.

    Raises:
        BuildError: the combination is not supported by this TensorRT, the ONNX parser
            failed (the message names node and op type), a profile does not fit the model,
            calibration data is unusable, or TensorRT failed to build (the message carries
            TensorRT's errors; a failed version-compatible build on a TensorRT without lean
            runtime says so).
        EnvironmentMissing: TensorRT, a GPU or (for INT8 calibration) cuda-python/pycuda is
            missing.
    """
    trt = import_tensorrt()
    # TRTOPS_TRT_LOG=info streams the build log to stderr as it happens (a build that seems
    # stuck shows where it is); =verbose also keeps TensorRT's verbose messages (slower;
    # for finding where build time goes).
    log_mode = os.environ.get("TRTOPS_TRT_LOG", "").lower()
    verbose = log_mode == "verbose"
    capture = LogCapture(echo=request.log, max_lines=200000 if verbose else 20000,
                         min_severity=4 if verbose else 3,
                         stream=sys.stderr if log_mode in ("info", "verbose") else None)
    with capture:
        try:
            return _Build(trt, request, capture).run()
        except TrtopsError:
            raise
        except Exception as exc:  # TensorRT raises plain RuntimeError/TypeError on bad input
            detail = "\n".join(list(capture.errors)[-10:]) or capture.tail(10)
            found = diagnose([*capture.errors, f"{type(exc).__name__}: {exc}"], warnings=list(capture.warnings),
                             context=failure_context(request.spec, Path(request.model_path)))
            raise BuildError(
                f"building {request.spec.id} failed ({found.title}): {found.detail}\n"
                f"{type(exc).__name__}: {exc}" + (f"\n{detail}" if detail else ""),
                hint=found.hint, cause=found.cause,
            ) from exc


def failure_context(spec: EngineSpec, model_path: Path) -> FailureContext:
    """What a failure diagnosis may use: the model's inputs and opsets (read without
    weights; nothing when the model cannot be read) and the build's profiles, workspace
    and precision."""
    from trtops.onnx_facts import read_graph

    try:
        graph = read_graph(model_path)
        inputs, opsets = dict(graph.inputs), dict(graph.opsets)
    except Exception:  # noqa: BLE001 - an unreadable model has its own error; diagnose without it
        inputs, opsets = {}, {}
    build = spec.build
    return FailureContext(inputs=inputs, opsets=opsets, profiles=build.profiles, workspace=build.workspace,
                          precision=build.precision)


class _Build:
    def __init__(self, trt: TensorRT, request: BuildRequest, capture: LogCapture) -> None:
        self.trt = trt
        self.request = request
        self.spec = request.spec
        self.cfg = request.spec.build
        self.capture = capture
        self.features: Features = detect_features(trt)
        self.logger = get_logger(trt)
        self.memory: Any = None
        self.calibrator: Any = None

    # ------------------------------------------------------------------ helpers

    def fail(self, message: str, hint: str | None = None, cause: str | None = None) -> BuildError:
        return BuildError(message, hint=hint, cause=cause)

    def _trt_errors(self, count: int = 10) -> str:
        errors = list(self.capture.errors)[-count:]
        return "\n".join(f"  {e}" for e in errors) if errors else self.capture.tail(count)

    def _set_attr(self, obj: Any, name: str, value: Any, what: str) -> None:
        try:
            setattr(obj, name, value)
        except AttributeError as exc:
            raise self.fail(
                f"{what} is not available in TensorRT {version_text(self.trt)}",
                hint=f"remove {what} from the manifest for this target",
            ) from exc

    # ------------------------------------------------------------------ steps

    def _check_kept(self, cast: str, model_path: Path) -> None:
        """A strongly typed network ignores layer precisions: keep_fp32 holds only if the
        preparation's cast left those nodes in float32, which the cast model records
        (:mod:`trtops.prepare.kept`). Refuse a model cast for other lists, and log what it kept."""
        from trtops.prepare.kept import kept_problem, read_record
        from trtops.prepare.options import keep_lists

        record = read_record(model_path)
        problem = kept_problem(keep_lists(self.cfg), record, cast)
        if problem:
            raise self.fail(problem, hint="this is a cast model prepared for another engine's keep_fp32, "
                            "or a direct builder call without the preparation stage")
        if record is not None:
            shown = ", ".join(record.nodes[:10]) + (f" and {len(record.nodes) - 10} more" if len(record.nodes) > 10 else "")
            self.capture.info(f"keep_fp32: {len(record.nodes)} nodes left in float32 by the preparation stage's "
                              f"cast: {shown or '-'}")

    def run(self) -> BuildResult:
        request, cfg, trt, log = self.request, self.cfg, self.trt, self.capture
        model_path = Path(request.model_path)
        if not model_path.is_file():
            raise self.fail(f"model file {model_path} does not exist")
        workdir = Path(request.workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        log.info(f"building {self.spec.id} with TensorRT {version_text(trt)} from {model_path}")

        from trtops.onnx_facts import model_has_qdq

        try:
            has_qdq = model_has_qdq(model_path)
        except Exception as exc:  # not a protobuf, unreadable
            raise self.fail(
                f"{model_path} is not a readable ONNX model: {type(exc).__name__}: {exc}",
                hint="re-export the model, or check that the file was fully downloaded",
            ) from exc
        strategy = self._strategy(has_qdq)
        for note in strategy.notes:
            log.info(note)

        problem = cast_problem(strategy.cast, request.model_cast, version_text(trt))
        if problem:
            raise self.fail(problem, hint="this is the planning platform's TensorRT differing from the building one, "
                            "or a direct builder call without the preparation stage")
        parse_path = model_path
        if strategy.cast:
            log.info(f"parsing the model cast to {strategy.cast} by the preparation stage")
            self._check_kept(strategy.cast, model_path)
        network_flags = self._network_flags(strategy)
        parser_flags = parser_flag_names(trt, portable=cfg.version_compatible or cfg.hardware_compatibility != "none")
        builder, network, config = self._overlapped(parse_path, network_flags, parser_flags, strategy)
        parser = self._parse(network, parse_path, parser_flags)
        inputs = self._inputs(network)
        problems = check_profiles(inputs, cfg.profiles)
        if problems:
            raise self.fail(
                "the optimization profiles do not fit the model:\n" + "\n".join(f"  {p}" for p in problems),
                hint="fix 'profiles:' in the manifest: every dynamic input needs min/opt/max, fixed dimensions must match the model",
            )

        if keeps_fp32(cfg) and keep_fp32_how(strategy) == "layers":
            from trtops.trt.keep_fp32 import hold_layers_fp32, kept_parser_names

            kept, every = kept_parser_names(parse_path, cfg.keep_fp32, cfg.keep_fp32_outputs)
            hold_layers_fp32(trt, network, config, kept, every, log.info)
        self._add_profiles(builder, config, network)
        try:
            if strategy.calibrate:
                self._calibration(builder, config, inputs)
            cache_loaded = False
            if self.spec.timing_cache != "off":
                from trtops.trt.timing import attach_timing_cache

                _, cache_loaded = attach_timing_cache(config, request.timing_cache, log.warning)
                log.info("timing cache loaded" if cache_loaded else "timing cache: starting empty")

            log.info("building the engine (this can take a while)")
            start = time.monotonic()
            try:
                serialized = builder.build_serialized_network(network, config)
            except Exception as exc:
                serialized = None
                log.add(1, f"build_serialized_network raised {type(exc).__name__}: {exc}", source="trtops")
            seconds = time.monotonic() - start
            if self.calibrator is not None and self.calibrator.error is not None:
                err = self.calibrator.error
                raise self.fail(f"INT8 calibration failed: {type(err).__name__}: {err}")
            if serialized is None or not serialized.nbytes:
                raise self._build_failure()
            log.info(f"engine built in {seconds:.1f}s ({serialized.nbytes} bytes)")

            plan = bytes(memoryview(serialized))
            del serialized
            engine_path = workdir / ENGINE_FILE
            tmp = engine_path.with_name(f".{ENGINE_FILE}.{os.getpid()}.tmp")
            tmp.write_bytes(plan)
            os.replace(tmp, engine_path)

            timing_bytes = None
            if self.spec.timing_cache != "off":
                from trtops.trt.timing import serialize_timing_cache

                timing_bytes = serialize_timing_cache(config)
            calibration_bytes = self.calibrator.cache if self.calibrator is not None else None
        finally:
            if self.calibrator is not None:
                self.calibrator.close()
            if self.memory is not None:
                self.memory.close()
        del parser

        from trtops.trt.inspect import layer_info
        from trtops.trt.runtime import deserialize_engine, engine_io

        engine, _runtime = deserialize_engine(trt, plan, host_code_allowed=cfg.version_compatible)
        io = engine_io(trt, engine)
        layers = layer_info(trt, engine)
        memory_size = device_memory_size(engine)
        return BuildResult(
            engine_path=engine_path,
            io=io,
            timing_cache=timing_bytes,
            calibration_cache=calibration_bytes,
            layers=layers,
            build_seconds=seconds,
            engine_bytes=len(plan),
            device_memory=memory_size,
            tensorrt_version=version_text(trt),
            log_text=log.text,
        )

    def _strategy(self, has_qdq: bool) -> Strategy:
        from trtops.trt.cuda_mem import current_compute_capability

        cc = current_compute_capability()
        # The planner's verdict, with what this TensorRT really offers.
        reason = unsupported_reason(self.cfg, self.features, cc, model_has_qdq=has_qdq)
        if reason:
            raise self.fail(
                f"cannot build {self.spec.id}: {reason}",
                hint="change the precision or target in the manifest (`trtops plan` lists these up front)",
            )
        try:
            return choose_strategy(
                self.cfg.precision,
                self.features,
                model_has_qdq=has_qdq,
                has_calibration=self.cfg.calibration is not None,
                strongly_typed=strongly_typed_request(self.cfg),
            )
        except Unsupported as exc:  # pragma: no cover - unsupported_reason already said so
            raise self.fail(f"cannot build {self.spec.id}: {exc}") from exc

    def _network_flags(self, strategy: Strategy) -> int:
        trt = self.trt
        flags = 0
        creation = trt.NetworkDefinitionCreationFlag
        if needs_explicit_batch_flag(trt):
            flags |= 1 << int(creation.EXPLICIT_BATCH)
        if strategy.strongly_typed and self.features.strongly_typed == "optional":
            flags |= 1 << int(creation.STRONGLY_TYPED)
        return flags

    def _network(self, builder: tensorrt.Builder, flags: int) -> tensorrt.INetworkDefinition:
        network = builder.create_network(flags)
        if network is None:
            raise self.fail("TensorRT could not create a network definition:\n" + self._trt_errors())
        return network

    def _overlapped(self, path: Path, network_flags: int, parser_flags: tuple[str, ...],
                    strategy: Strategy) -> tuple[Any, Any, Any]:
        """The builder, network and config, made while the parse preflight's child parses
        (both take seconds: CUDA start-up, kernel libraries); the child's verdict is waited
        for only now, right before the in-process parse it guards. The child is started
        first: it is a process of its own (fork and exec), needing nothing of this one's CUDA."""
        pending = self._start_preflight(path, network_flags, parser_flags)
        try:
            if pending is not None and pending.known:
                self._preflight_verdict(pending)  # a remembered crash fails at once
            made = self._builder_setup(network_flags, strategy)
            if pending is not None:
                self._preflight_verdict(pending)
            return made
        finally:
            if pending is not None:
                pending.close()  # a build that failed first: its child goes too

    def _preflight_verdict(self, pending: Any) -> None:
        verdict = pending.wait()
        if verdict.fatal:
            from trtops.trt.parse_preflight import crash_error

            raise crash_error(verdict, str(self.request.model_path))

    def _builder_setup(self, network_flags: int, strategy: Strategy) -> tuple[Any, Any, Any]:
        trt = self.trt
        try:
            builder = trt.Builder(self.logger)
        except Exception as exc:
            raise EnvironmentMissing(
                f"TensorRT could not create a builder ({exc}); {self._trt_errors(3).strip()}",
                hint="check that an NVIDIA GPU is visible (nvidia-smi) and the driver works",
            ) from exc
        if builder is None:
            raise EnvironmentMissing("TensorRT could not create a builder", hint="check the GPU and driver")
        if hasattr(trt, "init_libnvinfer_plugins"):
            trt.init_libnvinfer_plugins(self.logger, "")
        network = self._network(builder, network_flags)
        config = builder.create_builder_config()
        self._configure(trt, builder, config, strategy)
        return builder, network, config

    def _start_preflight(self, path: Path, network_flags: int, parser_flags: tuple[str, ...]) -> Any:
        """Start parsing in a child process where a parser crash would end this process
        (a :class:`~trtops.trt.parse_preflight.Pending`), or None."""
        from trtops.trt import parse_preflight

        request = self.request
        if not request.parse_preflight or not parse_preflight.enabled():
            return None
        verdicts = getattr(request, "preflight_verdicts", None)
        return parse_preflight.start_parse(path, network_flags=network_flags, parser_flags=parser_flags,
                                           tensorrt=version_text(self.trt), log=self.capture.info,
                                           digest=getattr(request, "model_digest", None),
                                           verdicts=Path(verdicts) if verdicts is not None else None)

    def _parse(self, network: tensorrt.INetworkDefinition, path: Path, flags: tuple[str, ...]) -> tensorrt.OnnxParser:
        parser = self.trt.OnnxParser(network, self.logger)
        set_parser_flags(self.trt, parser, flags)
        self.capture.info(f"parsing {path}")
        ok = parser.parse_from_file(str(path))
        count = int(getattr(parser, "num_errors", 0))
        if ok and count == 0:
            return parser
        problems = [self._parser_problem(parser.get_error(i)) for i in range(count)]
        if any(p.node_index >= 0 for p in problems):
            from trtops.onnx_facts import graph_nodes

            try:
                problems = resolve_nodes(problems, graph_nodes(path))
            except Exception:  # the model may be unreadable; keep what the parser said
                pass
        found = diagnose(list(self.capture.errors), warnings=list(self.capture.warnings), parser_problems=problems,
                         context=failure_context(self.spec, path))
        raise self.fail(
            parser_error_message(str(self.request.model_path), problems) + f"\ncause: {found.title}: {found.detail}",
            hint=found.hint, cause=found.cause,
        )

    @staticmethod
    def _parser_problem(error: Any) -> ParserProblem:
        def call(name: str) -> Any:
            value = getattr(error, name, None)
            if callable(value):
                try:
                    return value()
                except Exception:
                    return None
            return value

        code_text = error_code_name(call("code"))
        try:
            node_index = int(call("node"))
        except (TypeError, ValueError):
            node_index = -1
        return ParserProblem(
            code=str(code_text),
            description=str(call("desc") or "").strip() or str(error),
            node_index=node_index,
            # TensorRT >= 10 names node and op itself; 8.6 gives only the index.
            node_name=call("node_name") or None,
            op_type=call("node_operator") or None,
        )

    def _inputs(self, network: tensorrt.INetworkDefinition) -> list[InputInfo]:
        inputs = []
        for index in range(network.num_inputs):
            tensor = network.get_input(index)
            inputs.append(
                InputInfo(
                    name=tensor.name,
                    shape=dims_tuple(tensor.shape),
                    dtype=dtype_name(tensor.dtype),
                    is_shape_tensor=bool(getattr(tensor, "is_shape_tensor", False)),
                )
            )
        return inputs

    def _configure(
        self, trt: TensorRT, builder: tensorrt.Builder, config: tensorrt.IBuilderConfig, strategy: Strategy
    ) -> None:
        cfg, log = self.cfg, self.capture
        if cfg.workspace is not None:
            if hasattr(config, "set_memory_pool_limit"):
                config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(cfg.workspace))
            else:  # pragma: no cover - < 8.4
                self._set_attr(config, "max_workspace_size", int(cfg.workspace), "workspace")
        if cfg.builder_optimization_level is not None:
            self._set_attr(config, "builder_optimization_level", int(cfg.builder_optimization_level),
                           "builder_optimization_level")
        if cfg.max_aux_streams is not None:
            self._set_attr(config, "max_aux_streams", int(cfg.max_aux_streams), "max_aux_streams")
        if cfg.tactic_sources is not None:
            mask = 0
            for source in cfg.tactic_sources:
                member = getattr(trt.TacticSource, TACTIC_SOURCES[source], None)
                if member is None:
                    raise self.fail(f"tactic source {source} is not available in TensorRT {version_text(trt)}")
                mask |= 1 << int(member)
            config.set_tactic_sources(mask)
        if cfg.hardware_compatibility != "none":
            level = getattr(getattr(trt, "HardwareCompatibilityLevel", None), HARDWARE_LEVELS[cfg.hardware_compatibility], None)
            if level is None:
                raise self.fail(
                    f"hardware_compatibility {cfg.hardware_compatibility} is not available in TensorRT {version_text(trt)}"
                )
            self._set_attr(config, "hardware_compatibility_level", level, "hardware_compatibility")
        if cfg.version_compatible:
            if not has_builder_flag(trt, "VERSION_COMPATIBLE"):
                raise self.fail(f"version_compatible is not available in TensorRT {version_text(trt)}")
            config.set_flag(trt.BuilderFlag.VERSION_COMPATIBLE)
        verbosity = getattr(getattr(trt, "ProfilingVerbosity", None), "DETAILED", None)
        if verbosity is not None:
            # Layer details for the engine inspector (saved with the cache entry).
            try:
                config.profiling_verbosity = verbosity
            except AttributeError:
                pass
        for name in strategy.set_flags:
            if not has_builder_flag(trt, name):
                raise self.fail(f"{cfg.precision} needs the {name} builder flag, missing in TensorRT {version_text(trt)}")
            config.set_flag(getattr(trt.BuilderFlag, name))
        for name in strategy.clear_flags:
            if has_builder_flag(trt, name):
                config.clear_flag(getattr(trt.BuilderFlag, name))
        described = [f"precision {cfg.precision}"]
        if strategy.set_flags:
            described.append("flags " + "+".join(strategy.set_flags))
        if strategy.clear_flags:
            described.append("cleared " + "+".join(strategy.clear_flags))
        if cfg.workspace is not None:
            described.append(f"workspace {cfg.workspace} B")
        described.append(f"optimization level {cfg.builder_optimization_level}")
        if cfg.max_aux_streams is not None:
            described.append(f"max aux streams {cfg.max_aux_streams}")
        if cfg.tactic_sources is not None:
            described.append("tactic sources " + (",".join(cfg.tactic_sources) or "none"))
        if cfg.hardware_compatibility != "none":
            described.append(f"hardware compatibility {cfg.hardware_compatibility}")
        if cfg.version_compatible:
            described.append("version compatible")
        if strategy.strongly_typed:
            described.append("strongly typed")
        log.info("config: " + ", ".join(described))

    def _add_profiles(
        self, builder: tensorrt.Builder, config: tensorrt.IBuilderConfig, network: tensorrt.INetworkDefinition
    ) -> None:
        for index, profile_spec in enumerate(self.cfg.profiles):
            profile = builder.create_optimization_profile()
            for shape_range in profile_spec:
                profile.set_shape(shape_range.name, tuple(shape_range.min), tuple(shape_range.opt), tuple(shape_range.max))
            added = config.add_optimization_profile(profile)
            if added is None or int(added) < 0:
                found = diagnose(list(self.capture.errors), context=failure_context(self.spec, Path(self.request.model_path)))
                raise self.fail(f"TensorRT rejected optimization profile {index} ({found.title}): {found.detail}\n"
                                f"{self._trt_errors()}", hint=found.hint, cause=found.cause)
            self.capture.info(
                f"profile {index}: "
                + "; ".join(f"{r.name} {list(r.min)}/{list(r.opt)}/{list(r.max)}" for r in profile_spec)
            )

    def _calibration(self, builder: tensorrt.Builder, config: tensorrt.IBuilderConfig, inputs: list[InputInfo]) -> None:
        trt, cfg, log = self.trt, self.cfg, self.capture
        calibration = cfg.calibration
        assert calibration is not None
        from trtops.trt.calibration import (
            CalibrationDataError,
            NetworkInput,
            load_calibration_data,
            make_calibrator,
        )
        from trtops.trt.cuda_mem import open_device_memory

        cache = self.request.calibration_cache
        batches = None
        try:
            batches = load_calibration_data(
                calibration.data,
                [NetworkInput(i.name, i.shape, i.dtype) for i in inputs],
                calibration.batch_size,
                calibration.max_batches,
            )
        except CalibrationDataError as exc:
            if not cache:
                raise self.fail(f"INT8 calibration: {exc}", hint="fix 'calibration:' in the manifest") from exc
            log.warning(f"calibration data unusable ({exc}); relying on the stored calibration cache")
        if batches is not None:
            log.info(
                f"calibration: {calibration.algorithm}, {batches.num_batches} batches of {batches.batch_size}"
                + (" (cache given: TensorRT may skip them)" if cache else "")
            )
        self.memory = open_device_memory()
        self.calibrator = make_calibrator(trt, calibration.algorithm, batches, cache, self.memory, log.info)
        config.int8_calibrator = self.calibrator
        if batches is not None and any(i.dynamic for i in inputs):
            profile = builder.create_optimization_profile()
            for info in inputs:
                shape = batches.shape(info.name)
                profile.set_shape(info.name, shape, shape, shape)
            config.set_calibration_profile(profile)

    def _build_failure(self) -> BuildError:
        cfg = self.cfg
        errors = self._trt_errors()
        message = f"TensorRT failed to build {self.spec.id}" + (f":\n{errors}" if errors else "")
        if cfg.version_compatible:
            text = "\n".join(self.capture.errors).lower()
            if "lean" in text or not text or not lean_runtime_expected(self.features.version):
                return self.fail(message, hint=_LEAN_RUNTIME_HINT)
        found = diagnose(list(self.capture.errors), warnings=list(self.capture.warnings),
                         context=failure_context(self.spec, Path(self.request.model_path)))
        return self.fail(
            f"TensorRT failed to build {self.spec.id} ({found.title}): {found.detail}" + (f"\n{errors}" if errors else ""),
            hint=found.hint, cause=found.cause)
