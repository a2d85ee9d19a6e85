"""Where a TensorRT build's time goes, by tactic kind (run by hand in the GPU lab; results
go to benchmarks/RESULTS.md).

Builds one ONNX model with trtops' builder (``TRTOPS_TRT_LOG=verbose``: every log line
carries its time since the build began), with one dynamic H/W profile on its first input
and the chosen builder optimization level. It then charges the time between consecutive
log lines to the tactic kind named by the last "Timing Runner" line (``PointWiseV2``,
``CaskConvolution``...) and prints the kinds that took longest. That is how the PP-OCR
detector's level-3 build was found to spend 306 of 402.6 s generating and timing
pointwise kernels (RESULTS.md).

Usage (lab)::

    python3.10 benchmarks/tactic_time.py manifests/models/ch_PP-OCRv4_det_infer.onnx \\
        --level 3 --opt 640 --max 1280 --log /tmp/l3.log 2>/tmp/l3.stderr

(the verbose log also streams to stderr while the build runs.)
"""

from __future__ import annotations

import argparse
import collections
import itertools
import os
import re
import sys
import tempfile
from pathlib import Path

from build_time import LOG_STAMP

_RUNNER = re.compile(r"Timing Runner: .*\((\w+)\[")


def timed_lines(log_text: str) -> list[tuple[float, str]]:
    """(seconds since the build began, message) of every stamped line of a build log."""
    return [(float(match.group(1)), match.group(2))
            for match in map(LOG_STAMP.match, log_text.splitlines()) if match]


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


def first_input(model: Path) -> tuple[str, int, int]:
    """Name, batch and channels (1 where dynamic) of the model's first graph input."""
    import onnx

    graph = onnx.load(str(model), load_external_data=False).graph
    initializers = {init.name for init in graph.initializer}
    (value, *_) = [v for v in graph.input if v.name not in initializers]
    batch, channels = (d.dim_value or 1 for d in value.type.tensor_type.shape.dim[:2])
    return value.name, batch, channels


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--level", type=int, default=3, help="builder optimization level")
    parser.add_argument("--opt", type=int, default=640, help="opt H = W of the profile")
    parser.add_argument("--max", type=int, default=1280, help="max H = W of the profile")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--workspace-mib", type=int, default=1024)
    parser.add_argument("--log", type=Path, default=None, help="also write the build log here")
    args = parser.parse_args()

    os.environ["TRTOPS_TRT_LOG"] = "verbose"  # the "Timing Runner" lines are verbose
    from trtops.spec import make_engine_spec
    from trtops.trt.builder import BuildRequest, build_engine

    name, batch, channels = first_input(args.model)

    def shape(side: int) -> tuple[int, int, int, int]:
        return batch, channels, side, side

    spec = make_engine_spec(args.model, args.precision,
                            profiles=[{name: (shape(32), shape(args.opt), shape(args.max))}],
                            workspace=args.workspace_mib << 20,
                            builder_optimization_level=args.level, timing_cache="off")
    with tempfile.TemporaryDirectory() as workdir:
        result = build_engine(BuildRequest(spec=spec, model_path=args.model,
                                           workdir=Path(workdir)))
    if args.log:
        args.log.write_text(result.log_text)
    lines = timed_lines(result.log_text)
    print(f"{args.model.name}: {args.precision}, level {args.level}, built in "
          f"{result.build_seconds:.1f} s, {result.engine_bytes} bytes")
    runners = sum(1 for _, message in lines if _RUNNER.search(message))
    print(f"tactic timings: {runners}; seconds by tactic kind:")
    for kind, seconds in tactic_seconds(lines).most_common(8):
        print(f"  {kind:<28} {seconds:7.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
