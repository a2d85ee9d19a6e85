"""Where a TensorRT build's time goes, by tactic kind (run by hand in the GPU lab; results
go to benchmarks/RESULTS.md).

Builds one ONNX model in fp32 (or fp16) with TensorRT directly, with one dynamic profile on
its first input, a verbose log with a timestamp on every line, and the chosen builder
optimization level. It then charges the time between consecutive log lines to the tactic
kind named by the last "Timing Runner" line (``PointWiseV2``, ``CaskConvolution``...) and
prints the kinds that took longest. That is how the PP-OCR detector's level-3 build was
found to spend 306 of 402.6 s generating and timing pointwise kernels (RESULTS.md).

Usage (lab)::

    python3.10 benchmarks/tactic_time.py manifests/models/ch_PP-OCRv4_det_infer.onnx \\
        --level 3 --opt 640 --max 1280 --log /tmp/l3.log
"""

from __future__ import annotations

import argparse
import collections
import itertools
import re
import sys
import time
from pathlib import Path

_RUNNER = re.compile(r"Timing Runner: .*\((\w+)\[")


def tactic_seconds(lines: list[tuple[float, str]]) -> collections.Counter:
    """Seconds per tactic kind: each gap between two log lines goes to the kind of the
    "Timing Runner" line in force when it began."""
    spent: collections.Counter = collections.Counter()
    kind = None
    for (started, message), (ended, _) in itertools.pairwise(lines):
        match = _RUNNER.search(message)
        if match:
            kind = match.group(1)
        if kind is not None:
            spent[kind] += ended - started
    return spent


def main() -> int:
    import tensorrt as trt

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--level", type=int, default=3, help="builder optimization level")
    parser.add_argument("--opt", type=int, default=640, help="opt H = W of the profile")
    parser.add_argument("--max", type=int, default=1280, help="max H = W of the profile")
    parser.add_argument("--fp16", action="store_true")
    parser.add_argument("--workspace-mib", type=int, default=1024)
    parser.add_argument("--log", type=Path, default=None, help="also write the timed log here")
    args = parser.parse_args()

    lines: list[tuple[float, str]] = []
    origin = time.perf_counter()

    class TimedLogger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)

        def log(self, severity, message):
            lines.append((time.perf_counter() - origin, message))

    logger = TimedLogger()
    builder = trt.Builder(logger)
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser_ = trt.OnnxParser(network, logger)
    if not parser_.parse(args.model.read_bytes()):
        errors = [str(parser_.get_error(i)) for i in range(parser_.num_errors)]
        raise SystemExit(f"{args.model}: the ONNX parser failed: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, args.workspace_mib << 20)
    config.builder_optimization_level = args.level
    if args.fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    first = network.get_input(0)
    batch, channels = (d if d > 0 else 1 for d in tuple(first.shape)[:2])
    profile = builder.create_optimization_profile()
    profile.set_shape(first.name, (batch, channels, 32, 32),
                      (batch, channels, args.opt, args.opt), (batch, channels, args.max, args.max))
    config.add_optimization_profile(profile)
    parsed = time.perf_counter() - origin
    plan = builder.build_serialized_network(network, config)
    built = time.perf_counter() - origin - parsed
    if args.log:
        args.log.write_text("".join(f"{t:9.2f} {m}\n" for t, m in lines))
    print(f"{args.model.name}: {network.num_layers} layers, parsed in {parsed:.1f} s, level "
          f"{args.level}, build {'OK' if plan else 'FAILED'} in {built:.1f} s"
          + (f", {plan.nbytes} bytes" if plan else ""))
    runners = sum(1 for _, m in lines if _RUNNER.search(m))
    print(f"tactic timings: {runners}; seconds by tactic kind:")
    for kind, seconds in tactic_seconds(lines).most_common(8):
        print(f"  {kind:<28} {seconds:7.1f} s")
    return 0 if plan else 3


if __name__ == "__main__":
    sys.exit(main())
