"""Where a pull's transfer time goes in one Python process: N threads GET (direct GETs,
trtops/cache/s3_direct.py) and write every engine.plan to a file, without and with sha256
in the receiving thread, at 8 and 16 threads and three read sizes; then `trtops pull` at 8
and 16 jobs. Same SeaweedFS server and engines as benchmarks/pull_bandwidth.py (20 x 50 MB;
``--engines`` and ``--mb`` change that), alternating, median of 3 after a warm-up.

If files+sha at 16 threads is as slow as at 8 while cores are idle, the limit is the one
interpreter (its GIL: every chunk crosses it to be received, hashed and written), not the
pull's own work per entry; if it is faster than the pull, the pull adds the difference.

Usage (lab, set up as for pull_bandwidth.py):
  PYTHONPATH=$PWD:$PWD/tests:/opt/bench python3 benchmarks/pull_threads.py [--workdir DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pull_bandwidth as bench  # noqa: E402 - the benchmark's server, engines and pull

MiB = 1 << 20


def gets_to_files(store, keys: list[str], jobs: int, to_dir: Path, *, sha256: bool = False,
                  read_size: int = MiB) -> tuple[float, int]:
    """Seconds and bytes for direct GETs of every engine.plan into files, ``jobs`` threads,
    each body read ``read_size`` bytes at a time and, with ``sha256``, hashed by the thread
    that received it (as a pull does)."""
    names = bench.engine_names(store, keys)
    shutil.rmtree(to_dir, ignore_errors=True)
    to_dir.mkdir(parents=True)

    def get(name: str) -> int:
        body, _ = store.direct.open(name)
        view = memoryview(bytearray(read_size))
        digest = hashlib.sha256() if sha256 else None
        fd = os.open(to_dir / name.replace("/", "_"), os.O_WRONLY | os.O_CREAT, 0o644)
        offset = 0
        try:
            while count := body.readinto(view):
                chunk = view[:count]
                if digest is not None:
                    digest.update(chunk)
                os.pwrite(fd, chunk, offset)
                offset += count
        finally:
            os.close(fd)
            body.close()
        return offset

    started = time.perf_counter()
    with ThreadPoolExecutor(jobs) as pool:
        total = sum(pool.map(get, names))
    return time.perf_counter() - started, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engines", type=int, default=20)
    parser.add_argument("--mb", type=int, default=50, help="engine size in MB (10^6 bytes)")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="trtops-pull-threads-"))
    server = bench.start_server(workdir / "seaweedfs")
    try:
        _, remote, keys, _ = bench.seed_remote(server, workdir, args.engines, args.mb, jobs=8)
        list(remote.list("engines/00"))  # direct GETs start after a listing, as in a pull
        total = args.engines * args.mb * 1_000_000
        files = workdir / "files"
        rows = {}
        for jobs in (8, 16):
            rows[f"direct->files j{jobs}"] = \
                lambda j=jobs: gets_to_files(remote, keys, j, files)
            rows[f"direct->files+sha j{jobs}"] = \
                lambda j=jobs: gets_to_files(remote, keys, j, files, sha256=True)
        for label, size in (("4MiB", 4 * MiB), ("256KiB", 256 << 10)):
            rows[f"direct->files+sha j16 {label}"] = \
                lambda n=size: gets_to_files(remote, keys, 16, files, sha256=True, read_size=n)
        for jobs in (8, 16):
            rows[f"trtops pull j{jobs}"] = \
                lambda j=jobs: bench.trtops_pull(remote, workdir / "node", j)

        runs: dict[str, list[tuple[float, float]]] = {name: [] for name in rows}
        for round_ in range(4):  # round 0 warms up, as in pull_bandwidth.py
            for name, measure in rows.items():
                cpu = time.process_time()
                seconds, got = measure()
                cpu = time.process_time() - cpu
                assert got == total, (name, got)
                if round_:
                    runs[name].append((seconds, cpu))
                for leftover in (files, workdir / "node"):
                    shutil.rmtree(leftover, ignore_errors=True)
                os.sync()  # outside the timed region, as in pull_bandwidth.py
        for name, measured in runs.items():
            seconds = statistics.median(s for s, _ in measured)
            cpu = statistics.median(c for _, c in measured)
            listed = ", ".join(f"{s:.3f}" for s, _ in measured)
            print(f"{name:32s} {seconds:5.3f} s {total / seconds / 1e6:6.0f} MB/s  "
                  f"cpu {cpu:.2f} s  runs {listed}")
    finally:
        server.stop()
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
