"""The steps of apply and verify that need TensorRT, a GPU or Polygraphy, behind one
protocol: the real toolchain imports them lazily; trtops' CPU tests name a test double in
``TRTOPS_TEST_TOOLCHAIN`` (``module:attribute``) and everything else stays real.

Executors' workers import this module (not :mod:`trtops.ops.apply`) to get the toolchain.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any, Protocol

TOOLCHAIN_ENV = "TRTOPS_TEST_TOOLCHAIN"


class Toolchain(Protocol):
    """The steps of apply that need TensorRT, a GPU or Polygraphy."""

    def build(self, request: Any) -> Any:
        """Build one engine (:class:`trtops.trt.builder.BuildRequest` → ``BuildResult``)."""

    def verify(self, engine_path: Path, model_path: Path, io: Any, accuracy: Any, *,
               precision: str) -> Any:
        """Compare an engine with its ONNX model → :class:`trtops.gate.AccuracyReport`."""

    def merge_timing_caches(self, base: bytes | None, new: bytes) -> bytes:
        """Combine two serialized timing caches of one TensorRT version and GPU."""

    def measure(self, engine_path: Path, cases: list[dict], settings: dict) -> dict:
        """Time an engine on this GPU (the performance gate).

        Args:
            engine_path: The serialized engine.
            cases: ``[{"label": "opt" | "profile<i>.opt" | <shape name>, "shapes":
                {input: [dims]}}]`` (:func:`trtops.perf.cases.measure_cases`).
            settings: ``{"warmup", "iterations", "repeats", "cuda_graph": "auto"|"off",
                "max_seconds"}``.

        Returns:
            The perf document body: ``{"gpu": {name, driver, sm_clock_mhz, mem_clock_mhz,
            temperature_c}, "tensorrt": str, "cases": [{label, shapes, batch, cuda_graph,
            iterations, latency_ms: {median, p90, p99, mean, min}, gpu_ms: {...},
            throughput, repeat_medians_ms, cv}]}`` (see :mod:`trtops.perf.document`).
        """


class TensorRTToolchain:
    """The real toolchain: TensorRT builds, Polygraphy checks. Imports them lazily."""

    def build(self, request: Any) -> Any:
        from trtops.trt.builder import build_engine

        return build_engine(request)

    def verify(self, engine_path: Path, model_path: Path, io: Any, accuracy: Any, *,
               precision: str) -> Any:
        from trtops.gate import verify_engine

        return verify_engine(engine_path, model_path, io, accuracy, precision=precision)

    def merge_timing_caches(self, base: bytes | None, new: bytes) -> bytes:
        from trtops.trt.timing import merge_timing_caches

        return merge_timing_caches(base, new)

    def measure(self, engine_path: Path, cases: list[dict], settings: dict) -> dict:
        from trtops.trt.measure import measure_engine

        return measure_engine(engine_path, cases, settings)

    def platform(self) -> Any:
        from trtops.keys.platform import detect_platform

        return detect_platform()


def default_toolchain() -> Toolchain:
    """The TensorRT toolchain, or the test double named by ``TRTOPS_TEST_TOOLCHAIN``
    (``module:attribute``; for trtops' own CPU tests only)."""
    target = os.environ.get(TOOLCHAIN_ENV)
    if not target:
        return TensorRTToolchain()
    module_name, _, attribute = target.partition(":")
    factory = getattr(importlib.import_module(module_name), attribute or "toolchain")
    if isinstance(factory, type) or not hasattr(factory, "build"):
        return factory()  # a class or a factory function
    return factory


__all__ = ["TOOLCHAIN_ENV", "TensorRTToolchain", "Toolchain", "default_toolchain"]
