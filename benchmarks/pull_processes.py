"""Can the transfer of a pull (GET, sha256, write) reach s5cmd's pace from Python? One
interpreter's threads against worker processes, on the same byte path.

Every row GETs the 20 x 50 MB engine.plan objects of benchmarks/pull_bandwidth.py from the
same SeaweedFS server into files and hashes them (sha256), except ``s5cmd cp`` (no hash)
and the rows marked ``nosha``. The byte path of the ``raw`` rows is :data:`WORKER`'s
``fetch``: one signed request per object on a fresh socket, then ``recv_into`` with
``MSG_WAITALL`` into a reused buffer (one call, and one GIL release, per buffer), sha256
and ``pwrite`` per buffer. ``threads`` rows run it in this interpreter's threads;
``procs`` rows in P worker processes (stdlib only, each given its objects on stdin),
started before the clock (``warm``) or inside it; ``pipelined`` ones receive the next
buffer while a second thread hashes and writes the last; ``spliced`` ones move the body
socket -> pipe -> file with splice(2) and then hash the file through mmap (the bytes pass
through the process once, read-only). ``plain``/``direct GETs`` discard
the bodies (pull_bandwidth.py's baselines); ``trtops pull`` rows run the pull with copier
processes (trtops/cache/copier.py), ``copiers=0`` without. Each row also prints the whole
machine's busy cores and the SeaweedFS server's CPU seconds (/proc): whether the host has
CPU left. Alternating rows, median of 3 after a warm-up.

Usage (lab, set up as for pull_bandwidth.py):
  PYTHONPATH=$PWD:$PWD/tests:/opt/bench python3 benchmarks/pull_processes.py \
      [--rows "s5cmd,P20 warm 4MiB,pull j"]   (only the rows whose names contain one)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pull_bandwidth as bench  # noqa: E402
import pull_threads  # noqa: E402

MiB = 1 << 20

WORKER = r'''
import hashlib, json, os, socket, sys

def fetch(host, port, host_header, path, headers, dest, buffer_size, sha=True,
          pipelined=False, spliced=False):
    sock = socket.create_connection((host, port))
    try:
        lines = [f"GET {path} HTTP/1.1", f"Host: {host_header}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            got = sock.recv(65536)
            if not got:
                raise ConnectionError("closed in the headers")
            head += got
        head, _, early = head.partition(b"\r\n\r\n")
        status = head.split(b" ", 2)[1]
        if status != b"200":
            raise RuntimeError(head.decode("latin-1"))
        length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        digest = hashlib.sha256()
        fd = os.open(dest, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            if sha:
                digest.update(early)
            os.pwrite(fd, early, 0)
            offset = len(early)
            if spliced:
                return _spliced(sock, fd, digest if sha else None, offset, length,
                                buffer_size), digest.hexdigest()
            if pipelined:
                return _pipelined(sock, fd, digest if sha else None, offset, length,
                                  buffer_size), digest.hexdigest()
            view = memoryview(bytearray(buffer_size))
            while offset < length:
                want = min(buffer_size, length - offset)
                count = sock.recv_into(view, want, socket.MSG_WAITALL)
                if count <= 0:
                    raise ConnectionError("body cut")
                chunk = view[:count]
                if sha:
                    digest.update(chunk)
                os.pwrite(fd, chunk, offset)
                offset += count
        finally:
            os.close(fd)
        return offset, digest.hexdigest()
    finally:
        sock.close()

def _spliced(sock, fd, digest, offset, length, buffer_size):
    """splice(2) the body socket -> pipe -> file (no copy through this process), then hash
    the file from the page cache through mmap: the bytes cross user space once, read-only."""
    import fcntl, mmap
    start = offset
    read_end, write_end = os.pipe()
    try:
        fcntl.fcntl(write_end, 1031, buffer_size)  # F_SETPIPE_SZ
        while offset < length:
            moved = os.splice(sock.fileno(), write_end, min(buffer_size, length - offset))
            if moved <= 0:
                raise ConnectionError("body cut")
            left = moved
            while left:
                left -= os.splice(read_end, fd, left, offset_dst=offset + moved - left)
            offset += moved
    finally:
        os.close(read_end)
        os.close(write_end)
    if digest is not None and length > start:
        with mmap.mmap(fd, length, mmap.MAP_SHARED, mmap.PROT_READ) as mapped:
            digest.update(memoryview(mapped)[start:])
    return offset

def _pipelined(sock, fd, digest, offset, length, buffer_size):
    """Receive in this thread while another hashes and writes the previous buffers: the
    connection keeps draining during the hash (3 buffers in a ring)."""
    import queue, threading
    free, full = queue.Queue(), queue.Queue()
    for _ in range(3):
        free.put(memoryview(bytearray(buffer_size)))

    def consume():
        while True:
            item = full.get()
            if item is None:
                return
            view, count, at = item
            if digest is not None:
                digest.update(view[:count])
            os.pwrite(fd, view[:count], at)
            free.put(view)

    worker = threading.Thread(target=consume)
    worker.start()
    try:
        while offset < length:
            view = free.get()
            count = sock.recv_into(view, min(buffer_size, length - offset), socket.MSG_WAITALL)
            if count <= 0:
                raise ConnectionError("body cut")
            full.put((view, count, offset))
            offset += count
    finally:
        full.put(None)
        worker.join()
    return offset

def main():
    total = 0
    for line in sys.stdin:
        job = json.loads(line)
        if job is None:
            break
        got, _ = fetch(**job)
        total += got
    sys.stdout.write(f"{total}\n")
    sys.stdout.flush()

if __name__ == "__main__":
    main()
'''


def jobs_for(remote, keys: list[str], to_dir: Path, buffer_size: int,
             sha: bool = True, pipelined: bool = False, spliced: bool = False) -> list[dict]:
    """One signed request per engine.plan object (headers signed here, in the parent)."""
    direct = remote.direct
    target = direct.target
    host, _, port = target.netloc.rpartition(":")
    out = []
    for name in bench.engine_names(remote, keys):
        path = direct.path_of(target, name)
        out.append({"host": host, "port": int(port), "host_header": target.host,
                    "path": path, "headers": direct.headers(target, path),
                    "dest": str(to_dir / name.replace("/", "_")),
                    "buffer_size": buffer_size, "sha": sha, "pipelined": pipelined,
                    "spliced": spliced})
    return out


def load_worker():
    namespace: dict = {"__name__": "worker"}
    exec(compile(WORKER, "worker", "exec"), namespace)
    return namespace["fetch"]


def raw_threads(remote, keys, threads: int, to_dir: Path, buffer_size: int,
                sha: bool = True) -> tuple[float, int]:
    fetch = load_worker()
    bench._fresh(to_dir)
    jobs = jobs_for(remote, keys, to_dir, buffer_size, sha)
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        total = sum(got for got, _ in pool.map(lambda job: fetch(**job), jobs))
    return time.perf_counter() - started, total


def start_workers(count: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-I", "-S", "-c", WORKER], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True) for _ in range(count)]


def feed(workers: list[subprocess.Popen], jobs: list[dict]) -> int:
    for index, job in enumerate(jobs):
        workers[index % len(workers)].stdin.write(json.dumps(job) + "\n")
    total = 0
    for worker in workers:
        worker.stdin.write("null\n")
        worker.stdin.flush()
    for worker in workers:
        total += int(worker.stdout.readline())
        worker.wait()
    return total


def procs(remote, keys, count: int, to_dir: Path, buffer_size: int, warm: bool,
          sha: bool = True, pipelined: bool = False,
          spliced: bool = False) -> tuple[float, int, float]:
    bench._fresh(to_dir)
    jobs = jobs_for(remote, keys, to_dir, buffer_size, sha, pipelined, spliced)
    workers = start_workers(count) if warm else None
    if warm:  # let them start (and not count their start in the machine's busy CPU)
        time.sleep(0.5)
    busy = pull_threads.machine_cpu()[0]
    started = time.perf_counter()
    if workers is None:
        workers = start_workers(count)
    total = feed(workers, jobs)
    return time.perf_counter() - started, total, busy


def spawn_only(count: int) -> tuple[float, int]:
    started = time.perf_counter()
    workers = start_workers(count)
    feed(workers, [])
    return time.perf_counter() - started, 0


def main() -> None:
    with pull_threads.seeded(__doc__.split("\n\n")[0], "trtops-pull-procs-") as seed:
        url, remote, keys, total = seed.url, seed.remote, seed.keys, seed.total
        workdir = seed.workdir
        files = workdir / "files"
        from trtops.cache.s3 import open_s3_store

        plain = open_s3_store(url, copiers=0)

        def fresh_pull(jobs: int) -> tuple[float, int]:
            """A pull by a remote opened for it: its copiers start within the pull."""
            store = open_s3_store(url)
            try:
                return bench.trtops_pull(store, workdir / "node", jobs)
            finally:
                store.copiers.close()
        rows = {
            "plain GETs j8 (botocore)": lambda: bench.plain_gets(remote, keys, 8),
            "direct GETs j8": lambda: bench.direct_gets(remote, keys, 8),
            "s5cmd cp j8": lambda: bench.s5cmd_cp(remote, files, 8),
            "raw threads j16 4MiB": lambda: raw_threads(remote, keys, 16, files, 4 * MiB),
            "procs P8 warm 4MiB": lambda: procs(remote, keys, 8, files, 4 * MiB, True),
            "procs P10 warm 4MiB": lambda: procs(remote, keys, 10, files, 4 * MiB, True),
            "procs P16 warm 4MiB": lambda: procs(remote, keys, 16, files, 4 * MiB, True),
            "procs P10 warm 4MiB nosha": lambda: procs(remote, keys, 10, files, 4 * MiB, True,
                                                       sha=False),
            # All 20 objects at once, as s5cmd (32 workers) does: no second wave.
            "procs P20 warm 4MiB": lambda: procs(remote, keys, 20, files, 4 * MiB, True),
            "procs P20 warm 4MiB nosha": lambda: procs(remote, keys, 20, files, 4 * MiB, True,
                                                       sha=False),
            # Receive while the previous buffer is hashed and written (a thread per copier).
            "procs P10 warm pipelined": lambda: procs(remote, keys, 10, files, 4 * MiB, True,
                                                      pipelined=True),
            "procs P20 warm pipelined": lambda: procs(remote, keys, 20, files, 4 * MiB, True,
                                                      pipelined=True),
            # The bytes never copied through the copier: splice to the file, hash from mmap.
            "procs P10 warm spliced": lambda: procs(remote, keys, 10, files, 1 * MiB, True,
                                                    spliced=True),
            "procs P20 warm spliced": lambda: procs(remote, keys, 20, files, 1 * MiB, True,
                                                    spliced=True),
            "procs P10 warm 256KiB": lambda: procs(remote, keys, 10, files, MiB // 4, True),
            "trtops pull j8 copiers=0": lambda: bench.trtops_pull(plain, workdir / "node", 8),
            "trtops pull j8": lambda: bench.trtops_pull(remote, workdir / "node", 8),
            "trtops pull j16": lambda: bench.trtops_pull(remote, workdir / "node", 16),
            "trtops pull j20": lambda: bench.trtops_pull(remote, workdir / "node", 20),
            "trtops pull j32": lambda: bench.trtops_pull(remote, workdir / "node", 32),
            "trtops pull j10 fresh remote": lambda: fresh_pull(10),
        }
        rows.update({f"spawn P{n} (no bytes)": lambda n=n: spawn_only(n) for n in (1, 10)})
        for line in pull_threads.alternate(seed.chosen(rows), total, (files, workdir / "node"),
                                           server_pid=seed.server_pid):
            print(line)


if __name__ == "__main__":
    main()
