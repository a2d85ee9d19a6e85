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
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
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


def machine_cpu() -> tuple[float, float]:
    """(busy, all) CPU seconds of the whole machine so far, from /proc/stat (iowait and
    idle are not busy); (0, 0) where there is none."""
    try:
        fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return 0.0, 0.0
    tick = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / tick, sum(fields[:8]) / tick


def alternate(rows: dict, total: int, leftovers: tuple[Path, ...], rounds: int = 3,
              server_pid: int | None = None) -> list[str]:
    """Run every row's measure (seconds and bytes) in turn, ``rounds`` times after a
    warm-up round, removing what it wrote and flushing dirty pages between measures
    (outside the timed region, as in pull_bandwidth.py); one line per row: median seconds,
    MB/s for ``total`` bytes (none for a row that moves no bytes), this process's CPU,
    the whole machine's busy cores on average, and the server's CPU seconds."""
    runs: dict[str, list[tuple[float, float, int, float, float]]] = {name: [] for name in rows}
    for round_ in range(rounds + 1):
        for name, measure in rows.items():
            cpu, (busy, _), server = time.process_time(), machine_cpu(), bench.process_cpu(server_pid)
            seconds, got, *started = measure()  # a third value: busy CPU when timing began
            cpu = time.process_time() - cpu
            busy = (machine_cpu()[0] - (started[0] if started else busy)) / seconds
            server = bench.process_cpu(server_pid) - server
            assert got in (total, 0), (name, got)
            if round_:
                runs[name].append((seconds, cpu, got, busy, server))
            for leftover in leftovers:
                shutil.rmtree(leftover, ignore_errors=True)
            os.sync()
    lines = []
    for name, measured in runs.items():
        seconds = statistics.median(m[0] for m in measured)
        cpu = statistics.median(m[1] for m in measured)
        busy = statistics.median(m[3] for m in measured)
        server = statistics.median(m[4] for m in measured)
        rate = f"{total / seconds / 1e6:6.0f} MB/s" if measured[0][2] else " " * 11
        listed = ", ".join(f"{m[0]:.3f}" for m in measured)
        lines.append(f"{name:32s} {seconds:5.3f} s {rate}  cpu {cpu:.2f} s  machine busy "
                     f"{busy:4.1f} cores  server cpu {server:.2f} s  runs {listed}")
    return lines


@dataclass
class Seeded:
    """The benchmark's server with its engines, as pull_bandwidth.py seeds them."""

    url: str
    remote: object
    keys: list[str]
    total: int  # engine bytes
    workdir: Path
    server_pid: int | None
    only: tuple[str, ...] = ()  # --rows: run the rows whose names contain one of these

    def chosen(self, rows: dict) -> dict:
        return {name: measure for name, measure in rows.items()
                if not self.only or any(word in name for word in self.only)}


@contextmanager
def seeded(description: str, prefix: str) -> Iterator[Seeded]:
    """Parse --engines/--mb/--workdir, start SeaweedFS and push the engines; stop it after."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--engines", type=int, default=20)
    parser.add_argument("--mb", type=int, default=50, help="engine size in MB (10^6 bytes)")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--rows", default="",
                        help="comma-separated words: only the rows whose names contain one")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix=prefix))
    server = bench.start_server(workdir / "seaweedfs")
    try:
        url, remote, keys, _ = bench.seed_remote(server, workdir, args.engines, args.mb, jobs=8)
        list(remote.list("engines/00"))  # direct GETs start after a listing, as in a pull
        yield Seeded(url, remote, keys, args.engines * args.mb * 1_000_000, workdir,
                     server.process.pid if server.process else None,
                     tuple(word for word in args.rows.split(",") if word))
    finally:
        server.stop()
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    with seeded(__doc__.split("\n\n")[0], "trtops-pull-threads-") as seed:
        remote, keys, workdir = seed.remote, seed.keys, seed.workdir
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
        for line in alternate(seed.chosen(rows), seed.total, (files, workdir / "node"),
                              server_pid=seed.server_pid):
            print(line)


if __name__ == "__main__":
    main()
