"""Planner at scale: 1,000 engine specs over 50 ONNX models (generated).

Measures
  cold hashing   model digests with an empty memo (every ONNX and external-data file read
                 and hashed; files are in the page cache, so this is hashing speed, not disk)
  cold plan      `make_plan` with an empty memo and an empty cache (everything to build)
  warm no-op     `make_plan` with the memo warm and every engine cached: all 'reuse'
  CLI no-op      `python -m trtops plan` wall time for the same (includes interpreter start)

Targets (issue 3): warm no-op plan <= 0.3 s; cold hashing >= 1.5 GB/s.

Usage:
  python benchmarks/plan_scale.py [--models 50] [--mb-per-model 32] [--workdir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import platform as host
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PRECISIONS = ["fp32", "tf32", "fp16", "bf16", "int8"]
TARGETS = """\
targets:
  h100: {gpu: "NVIDIA H100*", tensorrt: ">=10.13,<10.14"}
  portable: {gpu: any, hardware_compatibility: ampere_plus}
  same_cc: {compute_capability: "9.0", hardware_compatibility: same_compute_capability}
  forward: {gpu: "NVIDIA H100*", version_compatible: true}
"""
PLATFORM = {"format": "trtops-platform", "version": 1, "tensorrt": "10.13.3.9",
            "gpus": [{"index": 0, "name": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0"}]}
FEATURES = 4096  # input width; the weight is [FEATURES, rows]


def make_model(path: Path, index: int, size_bytes: int, external: bool) -> None:
    """A MatMul whose weight is ``size_bytes`` of random float32 data, written directly
    (external data: the .data file is written by us and referenced from the TensorProto)."""
    from onnx import TensorProto, helper

    columns = max(1, size_bytes // (FEATURES * 4))
    raw = np.random.default_rng(index).bytes(FEATURES * columns * 4)
    weight = TensorProto()
    weight.name = "weight"
    weight.data_type = TensorProto.FLOAT
    weight.dims.extend([FEATURES, columns])
    if external:
        data_name = path.name + ".data"
        (path.parent / data_name).write_bytes(raw)
        weight.data_location = TensorProto.EXTERNAL
        for key, value in (("location", data_name), ("offset", "0"), ("length", str(len(raw)))):
            entry = weight.external_data.add()
            entry.key, entry.value = key, value
    else:
        weight.raw_data = raw
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["input", "weight"], ["output"])],
        f"model{index}",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", FEATURES])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", columns])],
        initializer=[weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())


def generate(root: Path, models: int, mb_per_model: float, per_manifest: int = 5) -> list[Path]:
    """Write models, calibration data and manifests; returns the manifest paths."""
    (root / "models").mkdir(parents=True)
    (root / "data").mkdir()
    np.savez(root / "data" / "calib.npz", input=np.random.default_rng(0).random((16, FEATURES), dtype=np.float32))
    size = int(mb_per_model * (1 << 20))
    for index in range(models):
        # Every fifth model keeps its weights inside the .onnx file.
        make_model(root / "models" / f"model{index:03d}.onnx", index, size, external=index % 5 != 0)
    manifests = []
    for first in range(0, models, per_manifest):
        lines = ["version: 1", TARGETS.rstrip(), "models:"]
        for index in range(first, min(first + per_manifest, models)):
            lines += [
                f"  - name: model{index:03d}",
                f"    source: models/model{index:03d}.onnx",
                f"    precisions: [{', '.join(PRECISIONS)}]",
                "    workspace: 256MiB",
                "    profiles:",
                f"      - input: {{min: [1, {FEATURES}], opt: [4, {FEATURES}], max: [16, {FEATURES}]}}",
                "    calibration: {data: data/calib.npz, batch_size: 8}",
            ]
        path = root / f"bench{first // per_manifest:02d}.yaml"
        path.write_text("\n".join(lines) + "\n")
        manifests.append(path)
    return manifests


def data_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in (root / "models").iterdir())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=50)
    parser.add_argument("--mb-per-model", type=float, default=32.0)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    from trtops.cache.entries import publish_entry
    from trtops.cache.local import LocalStore
    from trtops.cache.store import ENGINE_FILE
    from trtops.keys.memo import RACY_NS, DigestMemo, default_workers
    from trtops.keys.model_digest import digest_models
    from trtops.keys.platform import Platform
    from trtops.plan import load_specs, make_plan

    work = args.workdir or Path(tempfile.mkdtemp(prefix="trtops-plan-scale-"))
    root = work / "project"
    if root.exists():
        shutil.rmtree(root)
    started = time.perf_counter()
    manifests = generate(root, args.models, args.mb_per_model)
    total = data_bytes(root)
    print(f"generated {args.models} models ({total / 1e9:.2f} GB) and {len(manifests)} manifests "
          f"in {time.perf_counter() - started:.1f}s")
    # Files at rest: the digest memo does not trust files modified within RACY_NS of hashing.
    time.sleep(RACY_NS / 1e9 + 0.2)
    platform = Platform.from_json(PLATFORM)
    (root / "platform.json").write_text(json.dumps(PLATFORM))
    specs = load_specs(manifests, cache_dir=root / "cache")
    assert len(specs) == args.models * len(PRECISIONS) * 4, len(specs)
    model_paths = sorted({s.source.path for s in specs})

    cold = []
    for _ in range(3):
        memo = DigestMemo(None)
        t0 = time.perf_counter()
        digest_models(model_paths, memo)
        cold.append(time.perf_counter() - t0)
    cold_gbps = [total / s / 1e9 for s in cold]
    print(f"cold hashing: {total / 1e9:.2f} GB in {min(cold):.2f}s best / {statistics.median(cold):.2f}s median "
          f"-> {max(cold_gbps):.2f} GB/s best, {statistics.median(cold_gbps):.2f} GB/s median "
          f"({default_workers()} threads)")

    store = LocalStore(root / "cache")
    t0 = time.perf_counter()
    first = make_plan(manifests, store, platform)
    cold_plan = time.perf_counter() - t0
    counts = first.counts()
    print(f"cold plan: {len(first.actions)} specs, {counts} in {cold_plan:.2f}s "
          "(hashing, key computation, manifest model checks)")

    for action in first.unique_builds():
        publish_entry(store, action.key, action.id, {ENGINE_FILE: action.key.key.encode()},
                      accuracy={"state": "accepted"})

    warm = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        again = make_plan(manifests, store, platform)
        warm.append(time.perf_counter() - t0)
    assert again.counts()["reuse"] == len(specs), again.counts()
    print(f"warm no-op plan (in process): median {statistics.median(warm):.3f}s, "
          f"min {min(warm):.3f}s, max {max(warm):.3f}s over {args.repeat} runs; all {len(specs)} reuse")

    # Where the time goes in one warm run.
    from trtops.plan import CacheView, compute_digests, match_target, memo_for, spec_key
    from trtops.plan import plan as pure_plan

    t0 = time.perf_counter()
    specs = load_specs(manifests, cache_dir=store.root)
    t1 = time.perf_counter()
    memo = memo_for(store)
    digests, data = compute_digests(specs, platform, memo)
    t2 = time.perf_counter()
    keys = {s.id: spec_key(s, match_target(s, platform), digests, data) for s in specs}
    t3 = time.perf_counter()
    view = CacheView.load(store, [k.key for k in keys.values()])
    t4 = time.perf_counter()
    pure_plan(specs, view, platform, digests, data_digests=data)
    t5 = time.perf_counter()
    print(f"  load+expand manifests {t1 - t0:.3f}s, digests (memo) {t2 - t1:.3f}s, keys {t3 - t2:.3f}s, "
          f"cache view {t4 - t3:.3f}s, pure plan {t5 - t4:.3f}s")

    cli = []
    command = [sys.executable, "-m", "trtops", "plan", *map(str, manifests), "--cache", str(store.root),
               "--platform", str(root / "platform.json"), "--detailed-exitcode"]
    for _ in range(3):
        t0 = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ, CI="true"))
        cli.append(time.perf_counter() - t0)
        assert result.returncode == 0, result.stderr
    print(f"CLI no-op `trtops plan` wall time: median {statistics.median(cli):.3f}s "
          f"(includes Python start-up and imports)")

    ok_warm = statistics.median(warm) <= 0.3
    ok_cold = max(cold_gbps) >= 1.5
    print(f"target warm no-op <= 0.3s: {'PASS' if ok_warm else 'FAIL'}; "
          f"target cold hashing >= 1.5 GB/s: {'PASS' if ok_cold else 'FAIL'}")
    results = {
        "machine": f"{host.node()} {host.machine()} {os.cpu_count()} CPUs, Python {host.python_version()}",
        "specs": len(specs), "models": args.models, "bytes": total,
        "cold_hashing_seconds": cold, "cold_hashing_gbps": cold_gbps,
        "cold_plan_seconds": cold_plan, "warm_plan_seconds": warm, "cli_seconds": cli,
    }
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    if not args.keep and args.workdir is None:
        shutil.rmtree(work)
    return 0 if ok_warm and ok_cold else 1


if __name__ == "__main__":
    raise SystemExit(main())
