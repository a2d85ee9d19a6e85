"""Multi-GPU build benchmark (GPU lab, ``nvidia-h200-x2``): the same 8 real TensorRT builds
with ``trtops apply --gpus 0,1`` (one worker process per GPU) and ``--gpus 0`` (one
worker), in one call; results go to benchmarks/RESULTS.md.

What it builds: 8 ResNet-50s (``trtops.examples``, static batch, random He-initialized
weights, a different seed each, so 8 different engines of equal work) in one precision,
with ``timing_cache: off`` so that every build is cold (a shared timing cache would let
later builds reuse earlier ones' timings, and the sequential run would profit more) and
the accuracy check off (``--verify`` turns it on), each run into an empty cache. Both runs
use the same executor (``--gpus``), so the difference is the parallelism alone; process
start and TensorRT's kernel-library start-up are counted in both.

Order: a warm-up process (TensorRT's libraries into the page cache), then 2 GPUs, then
1 GPU, whose timeout is what is left of ``--budget``; a 1-GPU run cut off by it still
gives a lower bound of the speed-up (printed as "> N x").

Target (issue 9): 2 GPUs >= 1.8x faster than 1 GPU.

Usage (lab, one call, after installing trtops there)::

    python3.10 benchmarks/multi_gpu.py --json $OUT/multi_gpu.json

Each ResNet-50 fp32 build takes roughly 25-35 s on an H200 with TensorRT 8.6 (fp16 about
75 s cold: too long for 12 builds in one 10-minute call); ``--opt-level`` 2 or lower
builds faster if the budget is short.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_WORKER_RE = re.compile(r"cuda_visible_devices=(\S+?)(?:,|$)", re.MULTILINE)


def write_project(root: Path, builds: int, batch: int, precision: str, opt_level: int,
                  verify: bool) -> None:
    from trtops.examples.models import make_resnet50

    models = root / "manifests" / "models"
    models.mkdir(parents=True, exist_ok=True)
    lines = ["version: 1", "defaults:", "  workspace: 2GiB",
             f"  builder_optimization_level: {opt_level}", "  timing_cache: 'off'",
             "targets:", "  lab: {gpu: any}", "models:"]
    for index in range(builds):
        name = f"resnet50_{index + 1}"
        make_resnet50(models / f"{name}.onnx", batch=batch, seed=100 + index)
        lines += [f"  - name: {name}", f"    source: models/{name}.onnx", f"    precisions: [{precision}]",
                  "    targets: [lab]"]
        if not verify:
            lines.append("    accuracy: {enabled: false}")
    (root / "manifests" / "bench.yaml").write_text("\n".join(lines) + "\n")


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRTOPS_TEST", "GITHUB_"))}
    env["CI"] = "true"  # plain progress lines
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    return env


def warm_up() -> float:
    """Load TensorRT and start its builder once, so the first measured run does not pay
    for reading the libraries from disk."""
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", "import tensorrt as trt; trt.Builder(trt.Logger(trt.Logger.ERROR))"],
                   env=environment(), check=True, timeout=300)
    return time.monotonic() - started


def run_apply(root: Path, gpus: str, timeout: float) -> dict:
    cache = root / f"cache-gpus-{gpus.replace(',', '_')}"
    command = [sys.executable, "-m", "trtops", "apply", "manifests", "--gpus", gpus, "--cache", str(cache),
               "--no-emit", "--json"]
    started = time.monotonic()
    try:
        done = subprocess.run(command, cwd=root, env=environment(), capture_output=True, text=True,
                              timeout=max(timeout, 1))
    except subprocess.TimeoutExpired as exc:
        return {"gpus": gpus, "timed_out": True, "seconds": time.monotonic() - started,
                "stderr_tail": (exc.stderr or b"")[-2000:].decode(errors="replace")
                if isinstance(exc.stderr, bytes) else (exc.stderr or "")[-2000:]}
    seconds = time.monotonic() - started
    result = {"gpus": gpus, "timed_out": False, "seconds": seconds, "exit_code": done.returncode,
              "stderr_tail": done.stderr[-2000:]}
    try:
        doc = json.loads(done.stdout)
    except ValueError:
        result["stdout_tail"] = done.stdout[-2000:]
        return result
    engines = []
    for engine in doc["engines"]:
        device = None
        if engine.get("key"):
            log = cache / "engines" / engine["key"][:2] / engine["key"] / "build.log"
            if log.exists():
                match = _WORKER_RE.search(log.read_text(errors="replace").split("\n", 1)[0])
                device = match.group(1) if match else None
        engines.append({"id": engine["id"], "status": engine["status"], "seconds": engine.get("seconds"),
                        "device": device, "message": engine.get("message", "")[:300]})
    result["engines"] = engines
    result["built"] = sum(1 for e in engines if e["status"] == "built")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--builds", type=int, default=8)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--precision", default="fp32", choices=("fp32", "tf32", "fp16"))
    parser.add_argument("--opt-level", type=int, default=3, help="builder optimization level (default 3)")
    parser.add_argument("--verify", action="store_true", help="keep the accuracy check on")
    parser.add_argument("--budget", type=float, default=560.0,
                        help="seconds for the whole script (the device allows 600 per command)")
    parser.add_argument("--no-warmup", action="store_true")
    parser.add_argument("--json", dest="json_out", default=None)
    args = parser.parse_args()
    t0 = time.monotonic()

    sys.path.insert(0, str(REPO))
    from trtops.keys.platform import detect_platform

    platform = detect_platform()
    if len(platform.gpus) < 2:
        print(f"multi_gpu: needs 2 GPUs, this machine has {platform.describe()}", file=sys.stderr)
        return 2
    root = Path(tempfile.mkdtemp(prefix="bench-multi-gpu-"))
    write_project(root, args.builds, args.batch, args.precision, args.opt_level, args.verify)
    report: dict = {
        "date": datetime.date.today().isoformat(), "platform": platform.describe(),
        "python": sys.version.split()[0], "builds": args.builds,
        "model": f"resnet50 batch {args.batch} {args.precision}, optimization level {args.opt_level}, "
                 f"timing cache off, accuracy check {'on' if args.verify else 'off'}",
        "setup_seconds": time.monotonic() - t0,
    }
    if not args.no_warmup:
        report["warmup_seconds"] = warm_up()
    runs = {}
    for label, gpus in (("2 GPUs", "0,1"), ("1 GPU", "0")):
        left = args.budget - (time.monotonic() - t0)
        print(f"multi_gpu: {label} (--gpus {gpus}), {left:.0f} s left", file=sys.stderr, flush=True)
        runs[label] = run_apply(root, gpus, left)
        run = runs[label]
        print(f"multi_gpu: {label}: {run['seconds']:.1f} s, built {run.get('built')}, "
              f"timed out {run['timed_out']}", file=sys.stderr, flush=True)
    report["runs"] = runs
    two, one = runs["2 GPUs"], runs["1 GPU"]
    ok_two = not two["timed_out"] and two.get("built") == args.builds
    ok_one = one.get("built") == args.builds and not one["timed_out"]
    if ok_two and ok_one:
        speedup = one["seconds"] / two["seconds"]
        shown = f"**{speedup:.2f}x**"
        verdict = "pass" if speedup >= 1.8 else "FAIL"
    elif ok_two and one["timed_out"]:
        speedup = one["seconds"] / two["seconds"]
        shown = f"> {speedup:.2f}x (1 GPU cut off at {one['seconds']:.0f} s)"
        verdict = "pass" if speedup >= 1.8 else "unknown"
    else:
        speedup = None
        shown = "n/a (a run failed: see the JSON)"
        verdict = "FAIL"
    report["speedup"] = speedup
    report["verdict"] = verdict
    devices = {label: sorted({e["device"] for e in run.get("engines", []) if e["device"]})
               for label, run in runs.items()}
    report["devices"] = devices
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report, indent=2))

    print()
    print("| date | machine | builds | 1 GPU (`--gpus 0`) | 2 GPUs (`--gpus 0,1`) | speed-up | target >= 1.8x |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    print(f"| {report['date']} | {platform.describe()} | {args.builds} x {report['model']} | "
          f"{one['seconds']:.1f} s | {two['seconds']:.1f} s | {shown} | {verdict} |")
    print()
    for label, run in runs.items():
        per = ", ".join(f"{e['id'].split('/')[1]}: {e['seconds'] or 0:.1f} s on {e['device']}"
                        for e in run.get("engines", []))
        print(f"{label}: workers on {devices[label]}; {per}")
    return 0 if verdict == "pass" else 1


if __name__ == "__main__":
    raise SystemExit(main())
