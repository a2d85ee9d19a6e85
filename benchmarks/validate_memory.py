"""`trtops validate` on a 1 GB model: wall time and peak memory of the CLI process.

Measures, for one model of about 1 GB of weights in two layouts (inside the .onnx file,
and in an external-data file beside it), each in a manifest of its own:

  wall      `python -m trtops validate <manifest>` wall time, interpreter start included
  peak RSS  the validate process's peak resident set (``os.wait4`` rusage of that child)
  reader    ``read_graph`` alone in a fresh process (the part of validate that reads the model)

`validate` reads the graph's structure with the protobuf wire walk of
``trtops.onnx_facts`` (initializer data is jumped over), so neither layout should cost more
than the interpreter and its imports. ``--compare-onnx-load`` also measures what
``onnx.load(path, load_external_data=False)`` costs on the same files (the reader before
issue 17), for contrast.

Targets (issue 17): wall <= 0.5 s and peak RSS <= 100 MB for both layouts.

Usage:
  python benchmarks/validate_memory.py [--gb 1.0] [--repeat 5] [--workdir DIR] [--keep]
                                       [--compare-onnx-load]
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

FEATURES = 4096  # input width; the weight is [FEATURES, columns] float32
CHUNK = 64 << 20


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _write_random(handle, size: int, seed: int) -> None:
    import numpy as np

    rng = np.random.default_rng(seed)
    left = size
    while left:
        step = min(CHUNK, left)
        handle.write(rng.bytes(step))
        left -= step


def make_model(path: Path, weight_bytes: int, external: bool) -> None:
    """A MatMul with a ``weight_bytes`` float32 weight of random data, streamed to disk
    (never held in memory): inside the .onnx as raw_data, or in ``<name>.data``."""
    from onnx import TensorProto, helper

    columns = max(1, weight_bytes // (FEATURES * 4))
    weight_bytes = FEATURES * columns * 4
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["input", "weight"], ["output"], name="matmul")],
        "big",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", FEATURES])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", columns])],
    )
    if external:
        weight = TensorProto(name="weight", data_type=TensorProto.FLOAT, dims=[FEATURES, columns],
                             data_location=TensorProto.EXTERNAL)
        for key, value in (("location", path.name + ".data"), ("offset", "0"), ("length", str(weight_bytes))):
            entry = weight.external_data.add()
            entry.key, entry.value = key, value
        graph.initializer.append(weight)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        path.write_bytes(model.SerializeToString())
        with open(path.parent / (path.name + ".data"), "wb") as handle:
            _write_random(handle, weight_bytes, 1)
        return
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    # The initializer goes into a second ModelProto.graph field, which protobuf merges into
    # the first: the header is written, then the raw bytes streamed after it.
    dims = b"".join(b"\x08" + _varint(d) for d in (FEATURES, columns))
    tensor_head = dims + b"\x10\x01" + b"\x42\x06weight" + b"\x4a" + _varint(weight_bytes)
    tensor_len = len(tensor_head) + weight_bytes
    graph_head = b"\x2a" + _varint(tensor_len)
    with open(path, "wb") as handle:
        handle.write(model.SerializeToString())
        handle.write(b"\x3a" + _varint(len(graph_head) + tensor_len) + graph_head + tensor_head)
        _write_random(handle, weight_bytes, 2)


def make_manifest(path: Path, model: str) -> None:
    path.write_text(
        "version: 1\n"
        "targets:\n  lab: {gpu: any}\n"
        "models:\n"
        f"  - name: {path.stem}\n"
        f"    source: {model}\n"
        "    precisions: [fp32, fp16]\n"
        "    profiles:\n"
        f"      - input: {{min: [1, {FEATURES}], opt: [8, {FEATURES}], max: [32, {FEATURES}]}}\n"
    )


def run_child(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, float, int]:
    """(exit code, wall seconds, peak RSS in bytes) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode:
        print(err, file=sys.stderr)
    return proc.returncode, wall, usage.ru_maxrss * 1024  # Linux: KiB


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gb", type=float, default=1.0, help="weight size per model, GB (1e9 bytes)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    parser.add_argument("--compare-onnx-load", action="store_true",
                        help="also measure onnx.load(load_external_data=False) on the same files")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--make", nargs=3, metavar=("LAYOUT", "PATH", "BYTES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.make:
        # In a child process: a child's peak RSS counts from the fork, so the measuring
        # parent must stay small (it never imports numpy or onnx, never holds weights).
        layout, path, size_text = args.make
        make_model(Path(path), int(size_text), layout == "external")
        return 0

    work = args.workdir or Path(tempfile.mkdtemp(prefix="trtops-validate-memory-"))
    work.mkdir(parents=True, exist_ok=True)
    size = int(args.gb * 1e9)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[1]), env.get("PYTHONPATH", "")])
    env["TRTOPS_PLAIN"] = "1"
    # Measure an installed trtops: byte code compiled once (a warm-up run, not counted),
    # into a prefix of the work directory so the checkout stays clean.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    results: dict[str, dict] = {}
    try:
        for layout in ("embedded", "external"):
            model = work / f"{layout}.onnx"
            started = time.perf_counter()
            subprocess.run([sys.executable, __file__, "--make", layout, str(model), str(size)], check=True, env=env)
            on_disk = sum(p.stat().st_size for p in work.glob(f"{layout}.onnx*"))
            print(f"{layout}: wrote {on_disk / 1e9:.2f} GB in {time.perf_counter() - started:.1f}s")
            manifest = work / f"{layout}.yaml"
            make_manifest(manifest, model.name)
            run_child([sys.executable, "-m", "trtops", "validate", manifest.name], work, env)  # warm-up
            walls, peaks = [], []
            for _ in range(args.repeat):
                code, wall, peak = run_child([sys.executable, "-m", "trtops", "validate", manifest.name], work, env)
                if code != 0:
                    print(f"validate exited {code}", file=sys.stderr)
                    return 1
                walls.append(wall)
                peaks.append(peak)
            reader = subprocess.run(
                [sys.executable, "-c", "import sys, time; from trtops.onnx_facts import read_graph; "
                 "t = time.perf_counter(); read_graph(sys.argv[1]); print(time.perf_counter() - t)", model.name],
                cwd=work, env=env, capture_output=True, text=True, check=True)
            row = {"read_graph_s": float(reader.stdout), "bytes": on_disk, "wall_median_s": statistics.median(walls), "wall_max_s": max(walls),
                   "peak_rss_max_mb": max(peaks) / 1e6}
            if args.compare_onnx_load:
                code, wall, peak = run_child(
                    [sys.executable, "-c", "import onnx, sys; onnx.load(sys.argv[1], load_external_data=False)",
                     model.name], work, env)
                row["onnx_load"] = {"exit": code, "wall_s": wall, "peak_rss_mb": peak / 1e6}
            results[layout] = row
            ok = row["wall_median_s"] <= 0.5 and row["peak_rss_max_mb"] <= 100
            print(f"{layout}: validate wall median {row['wall_median_s']:.3f}s (max {row['wall_max_s']:.3f}s), "
                  f"peak RSS {row['peak_rss_max_mb']:.1f} MB  [{'pass' if ok else 'FAIL'}: <= 0.5 s, <= 100 MB]; "
                  f"of which reading the model (read_graph, cold process): {row['read_graph_s'] * 1000:.1f} ms")
            if "onnx_load" in row:
                o = row["onnx_load"]
                print(f"{layout}: onnx.load(load_external_data=False): {o['wall_s']:.2f}s, "
                      f"peak RSS {o['peak_rss_mb']:.0f} MB (exit {o['exit']})")
            for path in work.glob(f"{layout}.onnx*"):
                if not args.keep:
                    path.unlink()
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    summary = {"python": sys.version.split()[0], "machine": host.machine(), "cpus": os.cpu_count(),
               "gb": args.gb, "repeat": args.repeat, "results": results}
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
