"""A test double of the TensorRT toolchain, for CPU tests of apply's orchestration only.

Selected with ``TRTOPS_TEST_TOOLCHAIN=doubles:FakeToolchain`` (tests/ on PYTHONPATH). The
"engine" it builds is the ONNX model itself, so the accuracy gate still runs trtops' real
comparison code, with ONNX Runtime on both sides. Nothing here proves a TensorRT feature:
tests/gpu does that in the GPU lab.

Failure injection (environment variables, comma-separated model names):
- ``TRTOPS_FAKE_BUILD_FAIL``: the build of these models fails like a parser error.
- ``TRTOPS_FAKE_PERTURB``: the engine of these models gets perturbed weights (accuracy fails).
- ``TRTOPS_FAKE_FP16_BAD``: ONNX node names that compute wrongly (outputs x1.5) in reduced
  precisions (fp16, bf16, int8, fp8) unless the engine's keep_fp32 holds them: what
  ``trtops repair`` has to find.
- ``TRTOPS_FAKE_LOG``: a file that gets one line per build (to count builds).
- ``TRTOPS_FAKE_TENSORRT`` / ``TRTOPS_FAKE_GPU``: the platform the double pretends to be.

For the executors (``--gpus``, ``--executor ray``):
- ``TRTOPS_FAKE_GPUS``: how many GPUs (all alike) the platform has (default 1).
- ``TRTOPS_FAKE_CC``: their compute capability (default 9.0).
- ``TRTOPS_FAKE_DEVICE_LOG``: a file that gets ``<id> cuda=<CUDA_VISIBLE_DEVICES>
  gpu=<TRTOPS_FAKE_GPU> pid=<pid>`` per build (which worker built what).
- ``TRTOPS_FAKE_CRASH``: the build of these models kills its process with SIGSEGV, like a
  crash inside TensorRT.
- ``TRTOPS_FAKE_BUILD_SECONDS``: each build sleeps this long first.
- ``TRTOPS_FAKE_SLOW``: the builds of these models sleep 120 s (timeouts).
The timing cache a build returns holds the one it was given plus its own line, like
TensorRT's (what was loaded plus what this build timed).

The performance gate (``measure``): deterministic numbers, per sample of the case's batch,
by precision (:data:`FAKE_LATENCY_MS`), steered by
- ``TRTOPS_FAKE_LATENCY``: ``model=ms`` or ``model/precision=ms`` pairs, comma-separated
  (``conv/fp16=0.4,conv=2``): the median latency of one sample;
- ``TRTOPS_FAKE_PERF_CV``: the coefficient of variation of the repeat medians (default 0.005);
- ``TRTOPS_FAKE_MEASURE_FAIL``: the measurement of these models fails;
- ``TRTOPS_FAKE_MEASURE_LOG``: a file that gets one line per measurement (to count them).
The engine the double builds records its spec id in the ONNX metadata (``trtops_fake_engine``),
which is how ``measure`` knows the model and precision of a cached engine too (``bench``).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np


def _names(variable: str) -> set[str]:
    return {n.strip() for n in os.environ.get(variable, "").split(",") if n.strip()}


#: Median latency (ms) of one sample per precision, when TRTOPS_FAKE_LATENCY says nothing.
FAKE_LATENCY_MS = {"fp32": 1.0, "tf32": 0.8, "fp16": 0.5, "bf16": 0.5, "int8": 0.3, "fp8": 0.25}
FAKE_ENGINE_KEY = "trtops_fake_engine"


def _fake_latency(spec_id: str) -> float:
    _, model, precision, _ = (spec_id.split("/") + ["", "", "", ""])[:4]
    steer = {}
    for pair in os.environ.get("TRTOPS_FAKE_LATENCY", "").split(","):
        name, _, value = pair.partition("=")
        if name.strip() and value.strip():
            steer[name.strip()] = float(value)
    for name in (f"{model}/{precision}", model):
        if name in steer:
            return steer[name]
    return FAKE_LATENCY_MS.get(precision, 1.0)


class FakeToolchain:
    def platform(self) -> Any:
        from trtops.keys.platform import GpuInfo, Platform

        name = os.environ.get("TRTOPS_FAKE_GPU", "NVIDIA H200")
        cc = os.environ.get("TRTOPS_FAKE_CC", "9.0")
        count = int(os.environ.get("TRTOPS_FAKE_GPUS", "1"))
        return Platform(tensorrt=os.environ.get("TRTOPS_FAKE_TENSORRT", "8.6.0"),
                        gpus=tuple(GpuInfo(i, name, cc, memory_bytes=141 * 2**30) for i in range(count)),
                        source="flags")

    def build(self, request: Any) -> Any:
        import onnx
        from onnx import numpy_helper

        from trtops.engine_io import EngineIO, ProfileShapes, TensorIO
        from trtops.errors import BuildError
        from trtops.trt.builder import BuildResult

        spec = request.spec
        started = time.monotonic()
        if request.log:
            request.log(f"[fake] building {spec.id}")
        if log := os.environ.get("TRTOPS_FAKE_LOG"):
            with open(log, "a") as handle:
                handle.write(spec.id + "\n")
        if device_log := os.environ.get("TRTOPS_FAKE_DEVICE_LOG"):
            with open(device_log, "a") as handle:
                handle.write(f"{spec.id} cuda={os.environ.get('CUDA_VISIBLE_DEVICES', '-')} "
                             f"gpu={os.environ.get('TRTOPS_FAKE_GPU', 'NVIDIA H200').replace(' ', '_')} "
                             f"pid={os.getpid()} model={request.model_path} "
                             f"digest={getattr(request, 'model_digest', None) or '-'} "
                             f"verdicts={getattr(request, 'preflight_verdicts', None) or '-'} "
                             f"preflight={getattr(request, 'parse_preflight', '-')}\n")
        if seconds := float(os.environ.get("TRTOPS_FAKE_BUILD_SECONDS", "0") or 0):
            time.sleep(seconds)
        if spec.model in _names("TRTOPS_FAKE_SLOW"):
            time.sleep(120)
        if spec.model in _names("TRTOPS_FAKE_CRASH"):
            import signal

            os.kill(os.getpid(), signal.SIGSEGV)
        if spec.model in _names("TRTOPS_FAKE_BUILD_FAIL"):
            raise BuildError(f"ONNX parser: node 3 (Conv 'conv1') of {spec.model}: "
                             "unsupported attribute", hint="fake failure for tests")
        _cast_refusals(request, self.platform().tensorrt)
        model = onnx.load(request.model_path)
        onnx.helper.set_model_props(model, {FAKE_ENGINE_KEY: spec.id})
        if spec.model in _names("TRTOPS_FAKE_PERTURB"):
            for init in model.graph.initializer:
                array = numpy_helper.to_array(init)
                if array.dtype == np.float32 and array.size > 1:
                    init.CopyFrom(numpy_helper.from_array(array * 1.5 + 0.1, init.name))
        _reduced_precision_faults(model, request)
        engine = request.workdir / "engine.plan"
        onnx.save(model, engine)
        initializers = {i.name for i in model.graph.initializer}
        dtype = {1: "float32", 10: "float16", 6: "int32", 7: "int64", 9: "bool"}

        def tensor(value: Any, mode: str) -> TensorIO:
            dims = value.type.tensor_type.shape.dim
            shape = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in dims)
            return TensorIO(value.name, mode, dtype[value.type.tensor_type.elem_type], shape)

        tensors = tuple(tensor(v, "input") for v in model.graph.input if v.name not in initializers)
        tensors += tuple(tensor(v, "output") for v in model.graph.output)
        profiles = tuple(
            ProfileShapes(tuple((r.name, r.min, r.opt, r.max) for r in profile))
            for profile in spec.build.profiles
        )
        log_text = f"[fake] built {spec.id}\n"
        return BuildResult(
            engine_path=engine, io=EngineIO(tensors, profiles),
            timing_cache=self.merge_timing_caches(request.timing_cache,
                                                  f"timing:{spec.model}/{spec.precision}\n".encode()),
            calibration_cache=b"fake-calibration" if spec.precision == "int8" else None,
            layers={"Layers": ["fake"]}, build_seconds=time.monotonic() - started,
            engine_bytes=engine.stat().st_size, device_memory=1 << 20,
            tensorrt_version=self.platform().tensorrt, log_text=log_text,
        )

    def verify(self, engine_path: Path, model_path: Path, io: Any, accuracy: Any, *,
               precision: str) -> Any:
        from polygraphy.backend.onnxrt import OnnxrtRunner, SessionFromOnnx

        from trtops.gate.gate import input_sets_for, verify_with_runners

        sets, info = input_sets_for(io, accuracy)
        return verify_with_runners(
            lambda profile: OnnxrtRunner(SessionFromOnnx(str(engine_path))),
            lambda: OnnxrtRunner(SessionFromOnnx(str(model_path))),
            sets, accuracy.tolerance, precision=precision, reference="onnxruntime",
            candidate="fake-engine", inputs=info,
        )

    def merge_timing_caches(self, base: bytes | None, new: bytes) -> bytes:
        lines = set((base or b"").splitlines()) | set(new.splitlines())
        return b"\n".join(sorted(lines)) + b"\n"

    def measure(self, engine_path: Path, cases: list[dict], settings: dict) -> dict:
        import onnx

        from trtops.errors import EnvironmentMissing

        model = onnx.load(str(engine_path), load_external_data=False)
        spec_id = next((p.value for p in model.metadata_props if p.key == FAKE_ENGINE_KEY), "")
        if log := os.environ.get("TRTOPS_FAKE_MEASURE_LOG"):
            with open(log, "a") as handle:
                handle.write(f"{spec_id} {','.join(c['label'] for c in cases)}\n")
        parts = spec_id.split("/")
        if len(parts) == 4 and parts[1] in _names("TRTOPS_FAKE_MEASURE_FAIL"):
            raise EnvironmentMissing("fake measurement failure: CUDA context lost",
                                     hint="fake failure for tests")
        per_sample = _fake_latency(spec_id)
        cv = float(os.environ.get("TRTOPS_FAKE_PERF_CV", "0.005"))
        out = []
        for case in cases:
            shapes = case.get("shapes") or {}
            first = next(iter(shapes.values()), [1])
            batch = int(first[0]) if first else 1
            median = per_sample * max(batch, 1)
            stats = {"median": median, "p90": median * 1.05, "p99": median * 1.1,
                     "mean": median * 1.01, "min": median * 0.95}
            out.append({
                "label": case["label"], "shapes": shapes, "batch": batch,
                "cuda_graph": settings.get("cuda_graph") != "off",
                "iterations": int(settings["iterations"]), "latency_ms": stats,
                "gpu_ms": {k: v * 0.9 for k, v in stats.items()},
                "throughput": batch / median * 1000.0,
                "repeat_medians_ms": [median * (1 + cv * s) for s in (-1, -0.5, 0, 0.5, 1)][:int(settings["repeats"])],
                "cv": cv,
            })
        return {"gpu": {"name": self.platform().gpus[0].name if self.platform().gpus else "none",
                        "driver": "550.54", "sm_clock_mhz": 1980, "mem_clock_mhz": 2619,
                        "temperature_c": 40},
                "tensorrt": self.platform().tensorrt, "cases": out}


def _cast_refusals(request: Any, tensorrt: str) -> None:
    """What the real builder refuses before parsing (trtops.trt.builder): a strongly typed
    fp16/bf16 build of a model without the cast its TensorRT needs, or one cast keeping other
    nodes in fp32 than the build's keep_fp32 lists, so a caller that skips the preparation
    stage fails here too."""
    from trtops.capabilities import model_cast
    from trtops.errors import BuildError
    from trtops.prepare.kept import kept_problem, read_record
    from trtops.prepare.options import keep_lists
    from trtops.trt.builder import cast_problem

    wanted = model_cast(request.spec.build, tensorrt)
    problem = cast_problem(wanted, getattr(request, "model_cast", None), tensorrt)
    if problem is None and wanted:
        problem = kept_problem(keep_lists(request.spec.build), read_record(request.model_path), wanted)
    if problem:
        raise BuildError(problem, hint="fake refusal, as trtops.trt.builder's")


def _reduced_precision_faults(model: Any, request: Any) -> None:
    """``TRTOPS_FAKE_FP16_BAD``: the named nodes' outputs x1.5 unless kept in fp32."""
    from onnx import helper, numpy_helper

    from trtops.capabilities import KEEP_FP32_PRECISIONS
    from trtops.node_select import select_nodes
    from trtops.onnx_facts import read_graph

    bad = _names("TRTOPS_FAKE_FP16_BAD")
    build = request.spec.build
    if not bad or build.precision not in KEEP_FP32_PRECISIONS:
        return
    if getattr(request, "model_cast", None):
        # Strongly typed (TensorRT 11): layer precisions do nothing; what holds is what the
        # preparation's cast left in float32, as the cast model records it.
        from trtops.prepare.kept import read_record

        record = read_record(request.model_path)
        kept = set(record.nodes) if record is not None else set()
    else:
        kept = {n.name for n in select_nodes(read_graph(request.model_path).nodes, build.keep_fp32,
                                             build.keep_fp32_outputs)}
    factor = numpy_helper.from_array(np.array(1.5, dtype=np.float32), "fake_fp16_error")
    nodes = []
    changed = False
    for node in model.graph.node:
        nodes.append(node)
        if node.name not in bad or node.name in kept:
            continue
        changed = True
        for index, name in enumerate(node.output):
            wrong = f"{name}__fake_fp16"
            node.output[index] = wrong
            nodes.append(helper.make_node("Mul", [wrong, factor.name], [name], name=f"fake_fp16_{name}"))
    if changed:
        kept_nodes = [type(n)() for n in nodes]
        for copy, node in zip(kept_nodes, nodes):
            copy.CopyFrom(node)
        model.graph.initializer.append(factor)
        del model.graph.node[:]
        model.graph.node.extend(kept_nodes)
        del model.graph.value_info[:]
