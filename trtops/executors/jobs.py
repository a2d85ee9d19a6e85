"""One build job: what an executor's worker receives, runs and sends back.

The worker side of apply is only what needs TensorRT or the GPU: the build, the accuracy
check and the measurement of an accurate engine (:func:`run_build_job`), on the GPU that
built it. Everything else (reading and merging timing caches, publishing
to the cache, refs, pushes, loaders) stays in the parent process, so workers never touch the
cache and a crashed worker cannot leave half an entry behind.

:class:`BuildJob` and :class:`JobOutput` are plain picklable data: they cross a
multiprocessing pipe (``--gpus``) or Ray's object store (``--executor ray``) unchanged. The
in-process executor runs the same function and keeps the original exception, so in-process
builds report failures with the original error.
"""

from __future__ import annotations

import json
import os
import socket
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trtops.errors import BuildError, ExitCode, TrtopsError
from trtops.names import DISK_FULL_ERRNOS
from trtops.outcome import STATUS_EXIT, failure_status

Progress = Callable[[str], None]


@dataclass
class BuildJob:
    """What a worker needs to build and check one engine.

    Attributes:
        spec: The engine spec (:class:`trtops.spec.EngineSpec`).
        key: The engine key (for messages and worker logs).
        workdir: Where ``engine.plan`` goes: a private directory under the cache's tmp dir
            made by the parent (same host), or None for workers on other machines (Ray),
            which make their own and send the engine's bytes back.
        timing_cache: The stored timing cache for this TensorRT and GPU, or None.
        timing_pieces: Timing caches of other builds not merged into the store yet; the
            worker merges them into ``timing_cache`` before building (it has TensorRT).
        gpu_index: The plan's GPU for this engine (index in the plan's platform).
        signature: GPU signature the engine must be built on (``cc9.0-nvidia-h100...``).
        model_path: The model TensorRT parses when it is not the spec's source: the
            prepared model cast to fp16/bf16 for a strongly typed build (TensorRT 11); the
            spec's source stays the accuracy gate's fp32 reference.
        model_cast: The cast ``model_path`` had (``"fp16"``/``"bf16"``), or None; the
            builder refuses a build whose TensorRT wants a cast the model did not get.
        model_digest: The content digest of the model TensorRT parses (the key's
            ``model_digest``, or the ``prepared/`` digest of a prepared model), or None.
        preflight_verdicts: The cache's ``preflight/`` directory, or None: an in-process
            build keeps its parse preflight's verdict there under ``model_digest``, so a
            later apply runs no child (``BuildRequest.model_digest``).
    """

    spec: Any
    key: str
    workdir: str | None
    timing_cache: bytes | None = None
    timing_pieces: tuple[bytes, ...] = ()
    gpu_index: int | None = None
    signature: str | None = None
    model_path: str | None = None
    model_cast: str | None = None
    model_digest: str | None = None
    preflight_verdicts: str | None = None

    @property
    def id(self) -> str:
        return self.spec.id


@dataclass
class JobError:
    """A failed job, described so that it survives pickling.

    Attributes:
        status: The engine outcome status (build_failed, accuracy_failed, environment,
            invalid, error).
        message: One line.
        hint: What to do, or None.
        details: Longer text (build log tail, traceback, crash report).
    """

    status: str
    message: str
    hint: str | None = None
    details: str = ""


class JobFailure(TrtopsError):
    """A job that failed in another process, raised again in the parent."""

    def __init__(self, error: JobError) -> None:
        super().__init__(error.message, error.hint)
        self.outcome_status = error.status
        self.details = error.details
        self.exit_code = STATUS_EXIT.get(error.status, ExitCode.BUILD_FAILED)


@dataclass
class JobOutput:
    """What a worker sends back: a built (and maybe checked) engine, or an error.

    Attributes:
        engine_path: ``engine.plan`` in the job's workdir (same-host workers).
        engine_data: The engine's bytes (workers on other machines).
        io: :meth:`trtops.engine_io.EngineIO.to_json` of the engine.
        timing_cache: The config's timing cache after the build (what was loaded plus what
            this build timed), or None.
        calibration_cache: INT8 calibration cache, or None.
        layers: Engine inspector JSON, or None.
        build_seconds: Wall time of the TensorRT build.
        engine_bytes: Size of the engine.
        device_memory: Activation memory an execution context needs, if known.
        tensorrt_version: TensorRT's version in the worker.
        log_text: The build log (and on failures, what was logged before it).
        accuracy: ``accuracy.json`` content, or None when the check is disabled.
        accuracy_passed: The check's verdict, or None.
        accuracy_summary: The verdict line of the check.
        accuracy_details: The verdict and the worst outputs (for failures).
        perf: The measurement (:meth:`Toolchain.measure`'s body), or None when not measured.
        perf_error: Why the measurement failed (the engine itself is fine), or None.
        worker: Where it ran: host, pid, CUDA_VISIBLE_DEVICES, executor-specific fields.
        error: Set when the job failed (the fields above are filled as far as it got).
        exception: The original exception (in-process runs only; never pickled).
    """

    engine_path: str | None = None
    engine_data: bytes | None = None
    io: dict | None = None
    timing_cache: bytes | None = None
    calibration_cache: bytes | None = None
    layers: dict | None = None
    build_seconds: float = 0.0
    engine_bytes: int | None = None
    device_memory: int | None = None
    tensorrt_version: str | None = None
    log_text: str = ""
    accuracy: dict | None = None
    accuracy_passed: bool | None = None
    accuracy_summary: str = ""
    accuracy_details: str = ""
    perf: dict | None = None
    perf_error: str | None = None
    worker: dict = field(default_factory=dict)
    error: JobError | None = None
    exception: BaseException | None = field(default=None, repr=False, compare=False)

    @property
    def failed(self) -> bool:
        return self.error is not None or self.exception is not None

    def raise_failure(self) -> None:
        """Raise what made this job fail: the original exception when it ran in this
        process, else a :class:`JobFailure` with the same status and message."""
        if self.exception is not None:
            raise self.exception
        if self.error is not None:
            raise JobFailure(self.error)

    def engine_source(self) -> Path | bytes:
        """The engine for :func:`trtops.cache.local.publish_entry`: a path or bytes."""
        if self.engine_data is not None:
            return self.engine_data
        if self.engine_path is None:
            raise BuildError("the build worker returned no engine",
                             hint="this is a bug in trtops: please report it")
        return Path(self.engine_path)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["exception"] = None  # exceptions need not pickle; error describes it
        return state


def error_from_exception(exc: BaseException) -> JobError:
    """Describe an exception raised by a build or check as a picklable :class:`JobError`
    (the same status and message apply would give it in process)."""
    if isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS:
        # A full disk in the worker is no bug in trtops (apply says the same in process).
        from trtops.cache.local import write_error

        exc = write_error(exc, "the build files")
    if isinstance(exc, TrtopsError):
        return JobError(failure_status(exc), exc.message, exc.hint,
                        getattr(exc, "details", "") or "")
    return JobError("error", f"{type(exc).__name__}: {exc}",
                    details="".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))


def merge_pieces(toolchain: Any, base: bytes | None, pieces: Sequence[bytes]) -> bytes | None:
    """Fold timing caches into ``base`` with the toolchain's merge (TensorRT's combine).

    Args:
        toolchain: Has ``merge_timing_caches(base, new)``.
        base: The starting cache, or None.
        pieces: Caches to bring in, in order.

    Returns:
        The merged cache (None when there was nothing at all).
    """
    merged = base
    for piece in pieces:
        if not piece:
            continue
        merged = toolchain.merge_timing_caches(merged, piece) if merged else bytes(piece)
    return merged


def worker_facts(**extra: Any) -> dict:
    """Where a job runs: host, pid and the GPUs CUDA may use there."""
    facts = {"host": socket.gethostname(), "pid": os.getpid(),
             "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}
    facts.update(extra)
    return facts


def run_build_job(job: BuildJob, toolchain: Any, progress: Progress | None = None, *,
                  isolated: bool = False) -> JobOutput:
    """Build one engine and check its accuracy: the part of apply that needs the GPU.

    Never raises: a failure comes back in ``JobOutput.error`` (and ``exception``), with the
    log and timing cache of a build that succeeded before its check failed, so the parent
    can still keep both.

    Args:
        job: What to build.
        toolchain: Builder and verifier (:class:`trtops.ops.toolchain.Toolchain`).
        progress: Called with phase names ("checking accuracy").
        isolated: The caller is a worker process of its own (``--gpus``, Ray), where a crash
            of TensorRT fails only this job: the builder skips its parse preflight (a child
            process that keeps a crash of the ONNX parser from ending an in-process apply).

    Returns:
        The output; ``engine_path`` points into ``job.workdir``.
    """
    from trtops.trt.builder import BuildRequest

    spec = job.spec
    output = JobOutput()
    log_lines: list[str] = []
    try:
        timing = job.timing_cache
        if job.timing_pieces:
            try:
                timing = merge_pieces(toolchain, timing, job.timing_pieces)
            except Exception:  # noqa: BLE001 - a timing cache only saves time
                timing = job.timing_cache
        if job.workdir is None:
            raise BuildError("the build job has no working directory",
                             hint="this is a bug in trtops: please report it")
        request = BuildRequest(spec=spec, model_path=Path(job.model_path or spec.source.path),
                               workdir=Path(job.workdir), timing_cache=timing, log=log_lines.append,
                               model_cast=job.model_cast, parse_preflight=not isolated,
                               model_digest=job.model_digest,
                               preflight_verdicts=Path(job.preflight_verdicts) if job.preflight_verdicts else None)
        try:
            built = toolchain.build(request)
        except BuildError as exc:
            output.log_text = "\n".join(log_lines)
            exc.details = "\n".join(log_lines[-40:])  # type: ignore[attr-defined]
            raise
        except BaseException:
            output.log_text = "\n".join(log_lines)
            raise
        output.engine_path = str(built.engine_path)
        output.io = built.io.to_json()
        output.timing_cache = built.timing_cache
        output.calibration_cache = built.calibration_cache
        output.layers = built.layers
        output.build_seconds = float(built.build_seconds)
        output.engine_bytes = built.engine_bytes
        output.device_memory = built.device_memory
        output.tensorrt_version = built.tensorrt_version
        output.log_text = built.log_text
        if spec.accuracy.enabled:
            if progress is not None:
                progress("checking accuracy")
            report = toolchain.verify(built.engine_path, Path(spec.source.path), built.io,
                                      spec.accuracy, precision=spec.precision)
            output.accuracy = json.loads(report.to_bytes())
            output.accuracy_passed = bool(report.passed)
            output.accuracy_summary = report.summary_lines(1)[0]
            output.accuracy_details = "\n".join(report.summary_lines(5))
        if output.accuracy_passed is not False:
            _measure(job, toolchain, built, output, progress)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - reported as this engine's failure
        output.exception = exc
        output.error = error_from_exception(exc)
    return output


def _measure(job: BuildJob, toolchain: Any, built: Any, output: JobOutput,
             progress: Progress | None) -> None:
    """Time an accurate engine on the GPU that built it (the performance gate). A failed
    measurement is recorded, not raised: the engine is good, the parent decides."""
    spec = job.spec
    performance = getattr(spec, "performance", None)
    measure = getattr(toolchain, "measure", None)  # toolchains written before the gate
    if performance is None or not performance.enabled or measure is None:
        return
    from trtops.perf.cases import measure_cases

    if progress is not None:
        progress("measuring")
    try:
        output.perf = measure(built.engine_path, measure_cases(spec, built.io), performance.settings())
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - reported with the engine's outcome
        message = exc.message if isinstance(exc, TrtopsError) else f"{type(exc).__name__}: {exc}"
        output.perf_error = message


class LocalRunner:
    """Runs jobs in this process (the local executor's runner)."""

    label = "in process"

    def __init__(self, toolchain: Any) -> None:
        self.toolchain = toolchain

    def run(self, job: BuildJob, progress: Progress | None = None) -> JobOutput:
        """Build and check ``job`` here; the original exception is kept for the caller."""
        return run_build_job(job, self.toolchain, progress)
