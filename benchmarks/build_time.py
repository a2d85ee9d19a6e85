"""Build-time benchmark (run by hand in the GPU lab; results go to benchmarks/RESULTS.md).

Measures on one model, each build in a fresh process (TensorRT keeps a per-builder timing
cache, so builds in one process would warm each other):

1. Polygraphy, the peer: ``EngineBytesFromNetwork(NetworkFromOnnxPath(...), CreateConfig(...))``
   with the same settings trtops uses (precision flags; TF32 off for fp32 and on otherwise,
   TensorRT's default, which Polygraphy would otherwise clear; detailed profiling
   verbosity), timed around the call; also ``polygraphy convert`` wall time.
2. trtops cold: ``trtops.trt.builder.build_engine`` with no timing cache.
   With ``--pairs N``, N cold builds of each, in the order P T T P P T ... (medians
   reported), so that clock or thermal drift does not favour either.
3. trtops warm: the same with the timing cache the cold build produced.

For the warm build it lists where the time goes: the gaps between consecutive TensorRT log
lines longer than 0.3 s, with the line that ends each gap.

Usage (lab)::

    python3.10 benchmarks/build_time.py --model resnet50 --batch 16 --precision fp16 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def make_model(name: str, batch: int, dest: Path) -> Path:
    from trtops.examples import models

    if name == "resnet50":
        return models.make_resnet50(dest / f"resnet50_b{batch}.onnx", batch=batch)
    if name == "tiny_cnn":
        return models.make_tiny_cnn(dest / "tiny_cnn.onnx")
    raise SystemExit(f"unknown model {name}")


# ----------------------------------------------------------------------------- workers


def worker_polygraphy(model: str, precision: str) -> dict:
    import tensorrt as trt
    from polygraphy.backend.trt import (
        CreateConfig,
        EngineBytesFromNetwork,
        NetworkFromOnnxPath,
    )

    # Identical settings: trtops keeps TensorRT's default TF32 for fp16/int8 builds (off
    # only for strict fp32), while Polygraphy clears TF32 unless told otherwise.
    flags = {"fp16": {"fp16": True, "tf32": True}, "fp32": {"tf32": False},
             "int8": {"int8": True, "tf32": True}}[precision]
    config = CreateConfig(profiling_verbosity=trt.ProfilingVerbosity.DETAILED, **flags)
    start = time.monotonic()
    plan = EngineBytesFromNetwork(NetworkFromOnnxPath(model), config=config)()
    return {"seconds": time.monotonic() - start, "engine_bytes": int(plan.nbytes)}


def worker_trtops(model: str, precision: str, cache_in: str | None, cache_out: str | None) -> dict:
    from trtops.spec import make_engine_spec
    from trtops.trt.builder import BuildRequest, build_engine

    profiles = [{"input": ((1, 3, 32, 32), (4, 3, 32, 32), (8, 3, 32, 32))}] if "tiny_cnn" in model else []
    spec = make_engine_spec(model, precision, profiles=profiles)
    timing = Path(cache_in).read_bytes() if cache_in else None
    with tempfile.TemporaryDirectory() as workdir:
        start = time.monotonic()
        result = build_engine(BuildRequest(spec=spec, model_path=Path(model), workdir=Path(workdir),
                                           timing_cache=timing))
        total = time.monotonic() - start
    if cache_out and result.timing_cache:
        Path(cache_out).write_bytes(result.timing_cache)
    return {"seconds": total, "trt_build_seconds": result.build_seconds,
            "engine_bytes": result.engine_bytes, "gaps": gaps(result.log_text)}


LOG_STAMP = re.compile(r"^\[\s*([0-9.]+)s\]\s*(.*)$")


def gaps(log_text: str, threshold: float = 0.3) -> list[tuple[float, str]]:
    """Where a build's time goes: (seconds since the previous log line, the line after)."""
    out = []
    previous = None
    for line in log_text.splitlines():
        match = LOG_STAMP.match(line)
        if not match:
            continue
        stamp = float(match.group(1))
        if previous is not None and stamp - previous >= threshold:
            out.append((round(stamp - previous, 2), match.group(2)[:160]))
        previous = stamp
    return out


def run_worker(*args: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    result = subprocess.run([sys.executable, __file__, "--worker", *args], env=env,
                            capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        raise SystemExit(f"worker {args[0]} failed:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--precision", default="fp16", choices=("fp32", "fp16", "int8"))
    parser.add_argument("--models-dir", default=None)
    parser.add_argument("--json", dest="json_out", default=None)
    parser.add_argument("--pairs", type=int, default=1,
                        help="cold builds of each tool, alternating ABBA... so drift hits both")
    parser.add_argument("--skip-convert", action="store_true",
                        help="skip the `polygraphy convert` wall-time run (context only)")
    args = parser.parse_args()
    if args.worker:
        kind, model, precision, *rest = args.worker
        if kind == "polygraphy":
            data = worker_polygraphy(model, precision)
        else:
            cache_in, cache_out = (rest + ["", ""])[:2]
            data = worker_trtops(model, precision, cache_in or None, cache_out or None)
        print(json.dumps(data))
        return 0

    work = Path(args.models_dir or tempfile.mkdtemp(prefix="bench-"))
    work.mkdir(parents=True, exist_ok=True)
    model = str(make_model(args.model, args.batch, work))
    cache = str(work / "timing.cache")
    results = {}
    # Warm-up process: CUDA, cuDNN stand-ins and kernel libraries get into the page cache,
    # so the first measured build does not pay for disk reads the others skip.
    run_worker("trtops", str(make_model("tiny_cnn", 1, work)), args.precision)
    pg_runs, cold_runs = [], []
    for index in range(max(1, args.pairs)):
        order = ("polygraphy", "trtops") if index % 2 == 0 else ("trtops", "polygraphy")
        for tool in order:
            if tool == "polygraphy":
                pg_runs.append(run_worker("polygraphy", model, args.precision))
            else:
                cold_runs.append(run_worker("trtops", model, args.precision, "", cache))
    results["polygraphy_runs"] = pg_runs
    results["trtops_cold_runs"] = cold_runs
    results["polygraphy"] = {"seconds": statistics.median(r["seconds"] for r in pg_runs)}
    results["trtops_cold"] = {"seconds": statistics.median(r["seconds"] for r in cold_runs)}
    results["trtops_warm"] = run_worker("trtops", model, args.precision, cache, "")
    # Once more warm, with TensorRT's verbose log, only to see where the warm time goes.
    os.environ["TRTOPS_TRT_LOG"] = "verbose"
    results["trtops_warm_verbose"] = run_worker("trtops", model, args.precision, cache, "")
    del os.environ["TRTOPS_TRT_LOG"]
    if not args.skip_convert:
        start = time.monotonic()
        precision_flags = {"fp32": [], "fp16": ["--fp16", "--tf32"], "int8": ["--int8", "--tf32"]}
        convert = subprocess.run(["polygraphy", "convert", model, *precision_flags[args.precision],
                                  "--profiling-verbosity", "detailed", "-o", str(work / "pg.plan")],
                                 capture_output=True, text=True)
        results["polygraphy_convert_wall"] = {"seconds": time.monotonic() - start,
                                              "rc": convert.returncode,
                                              "tail": convert.stderr[-500:] if convert.returncode else ""}
    pg = results["polygraphy"]["seconds"]
    cold = results["trtops_cold"]["seconds"]
    warm = results["trtops_warm"]["seconds"]
    summary = {
        "model": f"{args.model} batch {args.batch} {args.precision}",
        "polygraphy_runs_s": [round(r["seconds"], 2) for r in pg_runs],
        "trtops_cold_runs_s": [round(r["seconds"], 2) for r in cold_runs],
        "polygraphy_s": round(pg, 2),
        "trtops_cold_s": round(cold, 2),
        "ratio_trtops_over_polygraphy": round(cold / pg, 3),
        "trtops_warm_s": round(warm, 2),
        "warm_speedup": round(cold / warm, 2),
    }
    results["summary"] = summary
    print(json.dumps(results, indent=1))
    print("\n| model | polygraphy (API) | trtops cold | ratio | trtops warm timing cache | speed-up |")
    print("|---|---|---|---|---|---|")
    print(f"| {summary['model']} | {pg:.1f} s | {cold:.1f} s | {cold / pg:.3f} | {warm:.1f} s | {cold / warm:.2f}x |")
    print("\nwarm build (verbose log), gaps >= 0.3 s between log lines:")
    for seconds, line in results["trtops_warm_verbose"]["gaps"]:
        print(f"  {seconds:6.2f}s before: {line}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
