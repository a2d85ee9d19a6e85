"""The accuracy gate: run the engine and ONNX Runtime on the same inputs, compare, report.

Both sides run through Polygraphy's runners and ``Comparator.run``: the engine with
``TrtRunner(EngineFromBytes(...), optimization_profile=i)`` on the input sets of profile i,
the reference with ``OnnxrtRunner`` over one ONNX Runtime session (CUDA where available,
else CPU) on every input set. Outputs are compared with :func:`compare_outputs`, whose
semantics match ``CompareFunc.simple`` (so ``polygraphy run`` would agree).

:func:`verify_with_runners` is the runner-agnostic core (CPU tests use two ONNX Runtime
runners); :func:`verify_engine` wires it to TensorRT; :func:`verify_cached_engine` re-checks
an engine stored in the cache and rewrites its ``accuracy.json``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from trtops.console import library_output_to_stderr
from trtops.engine_io import EngineIO
from trtops.errors import CacheError, EnvironmentMissing, InputError
from trtops.gate.compare import compare_outputs
from trtops.gate.inputs import (
    InputSet,
    generate_input_sets,
    load_user_inputs,
    match_inputs,
)
from trtops.gate.report import AccuracyReport, CaseResult
from trtops.spec import AccuracySpec, ToleranceSpec
from trtops.textsafe import name_list

_ERROR_CHARS = 2000  # keep Polygraphy's multi-page messages out of accuracy.json


def input_sets_for(io: EngineIO, accuracy: AccuracySpec) -> tuple[list[InputSet], dict[str, Any]]:
    """The input sets the gate will use, and their description for the report.

    Args:
        io: The engine's inputs and profiles.
        accuracy: The model's accuracy settings (user data path, or seed and ranges).

    Returns:
        (input sets, ``inputs`` entry of accuracy.json).

    Raises:
        InputError: the user data or ranges do not fit the engine.
    """
    if accuracy.data:
        sets = match_inputs(io, load_user_inputs(accuracy.data))
        return sets, {"kind": "data", "path": str(accuracy.data), "sets": len(sets)}
    sets = generate_input_sets(io, accuracy)
    info = {
        "kind": "generated",
        "seed": accuracy.seed,
        "ranges": {name: [low, high] for name, low, high in accuracy.ranges},
        "iterations": accuracy.iterations,
    }
    return sets, info


def verify_with_runners(
    make_candidate_runner: Callable[[int], Any],
    make_reference_runner: Callable[[], Any],
    input_sets: Sequence[InputSet],
    tolerance: ToleranceSpec,
    *,
    precision: str = "",
    reference: str | None = None,
    candidate: str | None = None,
    inputs: dict[str, Any] | None = None,
    quiet: bool = True,
) -> AccuracyReport:
    """Run a candidate and a reference Polygraphy runner on the input sets and compare.

    Args:
        make_candidate_runner: profile index -> a fresh, inactive Polygraphy runner for the
            engine under test (``TrtRunner(..., optimization_profile=i)``). Called once per
            profile (and once per input set of a profile whose batch run failed, to find
            which set failed).
        make_reference_runner: () -> a fresh, inactive reference runner (``OnnxrtRunner``).
        input_sets: The feeds, each tagged with its profile.
        tolerance: Resolved tolerance (per-output overrides included).
        precision: Recorded in the report.
        reference: Human name of the reference (default: the runner's name).
        candidate: Human name of the candidate (default: the runner's name).
        inputs: Description of the inputs, recorded in the report.
        quiet: Keep Polygraphy's INFO/WARNING logging out of the way.

    Returns:
        The report. A candidate that fails to run on an input set makes that case fail (with
        the error), it does not raise.

    Raises:
        InputError: the reference itself could not run on the inputs (model or input
            problem, not an engine problem), or there are no input sets.
        EnvironmentMissing: Polygraphy is not installed.
    """
    if not input_sets:
        raise InputError("no input sets to compare", hint="check accuracy.data or the profiles")
    Comparator, PolygraphyException = _polygraphy()

    with _quiet(quiet):
        reference_runner = make_reference_runner()
        reference_name = reference or reference_runner.name
        try:
            reference_outputs = _run(Comparator, reference_runner, [s.feeds for s in input_sets])
        except Exception as exc:  # noqa: BLE001 - narrowed by _is_runtime_failure
            if not _is_runtime_failure(exc, PolygraphyException):
                raise
            raise InputError(
                f"the reference ({reference_name}) could not run the model on the accuracy "
                f"inputs: {_message(exc)}",
                hint="check accuracy.inputs.ranges (e.g. token ids within the vocabulary) or "
                "accuracy.data, or set accuracy.enabled: false for this model",
            ) from exc

        groups: dict[int, list[int]] = {}
        for index, input_set in enumerate(input_sets):
            groups.setdefault(input_set.profile, []).append(index)

        candidate_name = candidate
        candidate_outputs: list[dict[str, np.ndarray] | str] = [""] * len(input_sets)
        for profile, indices in groups.items():
            runner = make_candidate_runner(profile)
            candidate_name = candidate_name or runner.name
            try:
                outputs = _run(Comparator, runner, [input_sets[i].feeds for i in indices])
            except Exception as exc:  # noqa: BLE001 - narrowed by _is_runtime_failure
                if not _is_runtime_failure(exc, PolygraphyException):
                    raise
                # Run the sets one by one so that the report says which shapes fail.
                outputs = []
                for i in indices:
                    try:
                        outputs.extend(_run(Comparator, make_candidate_runner(profile),
                                            [input_sets[i].feeds]))
                    except Exception as single_exc:  # noqa: BLE001
                        if not _is_runtime_failure(single_exc, PolygraphyException):
                            raise
                        outputs.append(_message(single_exc))
            for i, output in zip(indices, outputs, strict=True):
                candidate_outputs[i] = output

    cases = []
    for input_set, ref, cand in zip(input_sets, reference_outputs, candidate_outputs, strict=True):
        case = CaseResult(input_set.label, input_set.profile, input_set.shapes)
        if isinstance(cand, str):
            case.error = cand
        else:
            case.outputs = compare_outputs(ref, cand, tolerance)
        cases.append(case)

    return AccuracyReport(
        precision=precision,
        reference=reference_name,
        tolerance=tolerance,
        cases=cases,
        inputs=dict(inputs or {}),
        candidate=candidate_name or "candidate",
    )


def verify_engine(
    engine_path: Path,
    model_path: Path,
    io: EngineIO,
    accuracy: AccuracySpec,
    *,
    precision: str,
    quiet: bool = True,
) -> AccuracyReport:
    """Verify a serialized TensorRT engine against ONNX Runtime running its ONNX model.

    Args:
        engine_path: The serialized engine (``engine.plan``).
        model_path: The ONNX model it was built from (external data next to it).
        io: The engine's inputs, outputs and profiles (from the builder or meta.json).
        accuracy: Resolved accuracy settings: tolerance, inputs (generated or data).
        precision: The engine's precision, recorded in the report.
        quiet: Keep Polygraphy's INFO/WARNING logging out of the way.

    Returns:
        The report; ``report.passed`` is the verdict. With ``accuracy.enabled`` false a
        skipped report (passed, no cases) is returned without running anything.

    Raises:
        EnvironmentMissing: TensorRT, Polygraphy or ONNX Runtime is not installed.
        InputError: bad user data or ranges, or ONNX Runtime cannot run the model.
    """
    if not accuracy.enabled:
        return AccuracyReport(precision=precision, reference="", tolerance=accuracy.tolerance,
                              cases=[], inputs={}, skipped=True)
    with library_output_to_stderr():  # Polygraphy logs with print(): keep stdout for --json
        return _verify_enabled(engine_path, model_path, io, accuracy, precision=precision, quiet=quiet)


def _verify_enabled(engine_path: Path, model_path: Path, io: EngineIO, accuracy: AccuracySpec, *,
                    precision: str, quiet: bool) -> AccuracyReport:
    if accuracy.reference != "onnxruntime":
        raise InputError(f"unsupported accuracy reference {accuracy.reference!r}",
                         hint="use reference: onnxruntime")
    input_sets, inputs_info = input_sets_for(io, accuracy)
    _require("tensorrt", "TensorRT is needed to run the engine for the accuracy check",
             "run on a machine with TensorRT, or set accuracy.enabled: false")
    _polygraphy()
    from polygraphy.backend.onnxrt import OnnxrtRunner
    from polygraphy.backend.trt import EngineFromBytes, TrtRunner

    engine_bytes = Path(engine_path).read_bytes()
    session, reference_name = make_reference_session(model_path, quiet=quiet)
    model_inputs = sorted(i.name for i in session.get_inputs())
    engine_inputs = sorted(t.name for t in io.inputs)
    if model_inputs != engine_inputs:
        # Polygraphy would match inputs by position and cast: never compare that way.
        case = CaseResult("inputs", -1, {}, error=(
            f"the engine's inputs ({name_list(engine_inputs)}) differ from the model's "
            f"({name_list(model_inputs)}): the engine was not built from this model"))
        return AccuracyReport(precision=precision, reference=reference_name,
                              tolerance=accuracy.tolerance, cases=[case], inputs=inputs_info,
                              candidate="tensorrt")

    def make_candidate(profile: int):
        # The runner owns the engine it deserializes and frees it on deactivation.
        return TrtRunner(EngineFromBytes(engine_bytes), optimization_profile=profile)

    def make_reference():
        return OnnxrtRunner(session)

    report = verify_with_runners(
        make_candidate, make_reference, input_sets, accuracy.tolerance,
        precision=precision, reference=reference_name, candidate="tensorrt",
        inputs=inputs_info, quiet=quiet,
    )
    trt = sys.modules.get("tensorrt")  # imported by Polygraphy by now; only build/ imports it
    if trt is not None and getattr(trt, "__version__", None):
        report.candidate = f"tensorrt {trt.__version__}"
    return report


def reference_providers() -> list[str]:
    """ONNX Runtime execution providers for the reference: CUDA where available, then CPU.

    Returns:
        Provider names in priority order.
    """
    import onnxruntime

    available = onnxruntime.get_available_providers()
    if "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def make_reference_session(model_path: Path, *, providers: list[str] | None = None,
                           quiet: bool = True) -> tuple[Any, str]:
    """An ONNX Runtime session for the reference, through Polygraphy's ``SessionFromOnnx``.

    Args:
        model_path: The ONNX model (loaded by path so that external data resolves).
        providers: Execution providers (default: :func:`reference_providers`).
        quiet: Keep Polygraphy's logging out of the way.

    Returns:
        (session, human name such as ``onnxruntime 1.17.1 (CPUExecutionProvider)``).

    Raises:
        EnvironmentMissing: ONNX Runtime or Polygraphy is not installed.
        InputError: ONNX Runtime cannot load the model.
    """
    _require("onnxruntime", "ONNX Runtime is needed as the accuracy reference",
             "pip install 'trtops[verify]' (onnxruntime or onnxruntime-gpu)")
    _, PolygraphyException = _polygraphy()
    import onnxruntime
    from polygraphy.backend.onnxrt import SessionFromOnnx

    providers = list(providers or reference_providers())
    attempts: list[list[Any]] = []
    if "CUDAExecutionProvider" in providers:
        # TF32 in the reference would blur fp32 comparisons; older ONNX Runtime versions do
        # not know the option (or Polygraphy the tuple form), hence the plain fallback.
        attempts.append([("CUDAExecutionProvider", {"use_tf32": "0"}) if p == "CUDAExecutionProvider"
                         else p for p in providers])
    attempts.append(providers)
    last: BaseException | None = None
    with _quiet(quiet):
        for number, attempt in enumerate(attempts, start=1):
            try:
                session = SessionFromOnnx(str(model_path), providers=attempt)()
                break
            except Exception as exc:  # noqa: BLE001 - narrowed by _is_runtime_failure
                # Any error of the provider-options attempt falls back to plain names (a
                # Polygraphy without tuple support fails with TypeError, not a runtime error).
                if number == len(attempts) and not _is_runtime_failure(exc, PolygraphyException):
                    raise
                last = exc
        else:
            raise InputError(
                f"ONNX Runtime could not load {model_path}: {_message(last)}",
                hint="check that the model is valid ONNX (its external data next to it), or "
                "set accuracy.enabled: false for this model",
            ) from last
    used = session.get_providers()
    return session, f"onnxruntime {onnxruntime.__version__} ({used[0] if used else 'unknown'})"


def verify_cached_engine(store: Any, key: str, model_path: Path, accuracy: AccuracySpec, *,
                         precision: str, io: EngineIO | None = None, write: bool = True,
                         quiet: bool = True,
                         verify: Callable[..., AccuracyReport] | None = None) -> AccuracyReport:
    """Re-check an engine stored in the cache (e.g. after tolerances changed): the one
    path from a cache entry to a verdict (``trtops verify`` runs it for every engine).

    Uses only the store protocol: ``read_meta`` (for ``io``), ``fetch_file`` (the engine)
    and ``replace_file`` (the new ``accuracy.json``). The fetched engine is checked
    against meta.json's sha256 before anything reads it.

    Args:
        store: An :class:`trtops.cache.store.EntryStore`.
        key: The engine key.
        model_path: The ONNX model the engine was built from.
        accuracy: The (new) accuracy settings.
        precision: The engine's precision.
        io: The engine's inputs and profiles; default: ``meta.json``'s ``io``
            (:meth:`EngineIO.to_json` form).
        write: Replace the entry's ``accuracy.json`` with the new report.
        quiet: Keep Polygraphy's logging out of the way.
        verify: What compares the engine with its model, called like
            :func:`verify_engine` without ``quiet`` (default: :func:`verify_engine`; apply's
            toolchain passes its own so that CPU tests can swap it).

    Returns:
        The new report.

    Raises:
        CacheError: no complete entry for the key, no ``io`` given nor in its meta.json,
            or an engine whose bytes are not the published ones.
    """
    from trtops.cache.entries import fetch_engine, read_engine_meta
    from trtops.cache.store import ACCURACY_FILE, ENGINE_FILE

    meta = read_engine_meta(store, key)
    if io is None:
        if not meta.get("io"):
            raise CacheError(f"engine {key[:12]} in {store.url} has no 'io' in its meta.json",
                             hint="rebuild it with `trtops apply`")
        io = EngineIO.from_json(meta["io"])
    with tempfile.TemporaryDirectory(prefix="trtops-verify-") as tmp:
        engine_path = fetch_engine(store, key, meta, Path(tmp) / ENGINE_FILE)
        if verify is None:
            report = verify_engine(engine_path, model_path, io, accuracy, precision=precision,
                                   quiet=quiet)
        else:
            report = verify(engine_path, model_path, io, accuracy, precision=precision)
    if write:
        store.replace_file(key, ACCURACY_FILE, report.to_bytes())
    return report


# --------------------------------------------------------------------------- helpers


def _run(comparator: Any, runner: Any, feeds: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
    results = comparator.run([runner], data_loader=[dict(f) for f in feeds])
    (_, iterations), = list(results.items())
    # Copies: runners may reuse their host buffers between iterations.
    return [{name: np.array(array, copy=True) for name, array in iteration.items()}
            for iteration in iterations]


def _polygraphy() -> tuple[Any, type]:
    try:
        from polygraphy.comparator import Comparator
        from polygraphy.exception import PolygraphyException
    except ImportError as exc:
        raise EnvironmentMissing(
            "Polygraphy is not installed; the accuracy check runs through it",
            hint="pip install 'trtops[verify]' (polygraphy, onnxruntime)",
        ) from exc
    return Comparator, PolygraphyException


def _require(module: str, message: str, hint: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise EnvironmentMissing(message, hint=hint)


def _is_runtime_failure(exc: BaseException, polygraphy_exception: type) -> bool:
    """Errors of the runtimes themselves (bad shapes, out-of-range ids, CUDA failures), as
    opposed to bugs in trtops, which must surface as internal errors."""
    if isinstance(exc, (polygraphy_exception, RuntimeError, MemoryError)):
        return True
    module = type(exc).__module__ or ""
    return module.startswith(("onnxruntime", "tensorrt", "polygraphy", "pycuda"))


def _message(exc: BaseException | None) -> str:
    if exc is None:
        return "unknown error"
    text = " ".join(str(exc).split()) or type(exc).__name__
    if len(text) > _ERROR_CHARS:
        text = text[:_ERROR_CHARS] + " ..."
    return text


@contextlib.contextmanager
def _quiet(enabled: bool) -> Iterator[None]:
    if not enabled:
        yield
        return
    from polygraphy.logger import G_LOGGER

    verbosity = getattr(G_LOGGER, "verbosity", None)
    if verbosity is None:
        yield
        return
    with verbosity(G_LOGGER.ERROR):
        yield
