"""Where a pull's transfer time goes in one Python process: N threads GET (direct GETs,
trtops/cache/s3_direct.py) and write every engine.plan to a file, without and with sha256
in the receiving thread, at 8 and 16 threads and three read sizes; then `trtops pull` at 8
and 16 jobs. Same SeaweedFS server and engines as benchmarks/pull_bandwidth.py (20 x 50 MB;
``N`` and ``MB`` in the environment change that), alternating, median of 3 after a warm-up.

If files+sha at 16 threads is as slow as at 8 while cores are idle, the limit is the one
interpreter (its GIL: every chunk crosses it to be received, hashed and written), not the
pull's own work per entry; if it is faster than the pull, the pull adds the difference.

Usage (lab, as pull_bandwidth.py): PYTHONPATH=$PWD:$PWD/tests:/opt/bench python3 benchmarks/pull_threads.py
"""
import hashlib
import os
import shutil
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path[:0] = [os.path.dirname(os.path.abspath(__file__))]
import pull_bandwidth as pb


def files(store, keys, jobs, to_dir, hash_=False, read=1 << 20):
    names = pb.engine_names(store, keys)
    shutil.rmtree(to_dir, ignore_errors=True); to_dir.mkdir(parents=True)
    def get(name):
        body, _ = store.direct.open(name)
        view = memoryview(bytearray(read)); digest = hashlib.sha256() if hash_ else None
        fd = os.open(to_dir / name.replace("/", "_"), os.O_WRONLY | os.O_CREAT, 0o644)
        off = 0
        try:
            while count := body.readinto(view):
                chunk = view[:count]
                if digest is not None: digest.update(chunk)
                os.pwrite(fd, chunk, off); off += count
        finally:
            os.close(fd); body.close()
        return off
    t = time.perf_counter()
    with ThreadPoolExecutor(jobs) as pool: total = sum(pool.map(get, names))
    return time.perf_counter() - t, total

def main():
    os.environ.update({"AWS_ACCESS_KEY_ID": pb.CREDENTIALS[0], "AWS_SECRET_ACCESS_KEY": pb.CREDENTIALS[1],
                       "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull})
    from trtops.cache.local import LocalStore
    from trtops.cache.s3 import open_s3_store
    from trtops.ops.push import push_entries
    mb = int(os.environ.get("MB", "50")); n = int(os.environ.get("N", "20"))
    work = Path("/tmp/probe"); shutil.rmtree(work, ignore_errors=True)
    server = pb.start_server(work / "seaweedfs")
    try:
        url = f"s3://{pb.BUCKET}/engines?endpoint_url={server.endpoint}"
        remote = open_s3_store(url); remote.client.create_bucket(Bucket=pb.BUCKET)
        src = LocalStore(work / "builder"); keys = pb.publish(src, n, mb * 1_000_000)
        push_entries(src, remote, keys, jobs=8, progress=False)
        list(remote.list("engines/00"))
        total = n * mb * 1_000_000
        rows = {}
        def add(name, f):
            rows[name] = f
        for j in (8, 16):
            add(f"direct->files j{j}", lambda j=j: files(remote, keys, j, work / "f"))
            add(f"direct->files+sha j{j}", lambda j=j: files(remote, keys, j, work / "f", True))
        add("direct->files+sha j16 4MiB", lambda: files(remote, keys, 16, work / "f", True, 4 << 20))
        add("direct->files+sha j16 256KiB", lambda: files(remote, keys, 16, work / "f", True, 256 << 10))
        for j in (8, 16):
            add(f"trtops pull j{j}", lambda j=j: pb.trtops_pull(remote, work / "node", j))
        got = {k: [] for k in rows}
        for r in range(4):
            for k, f in rows.items():
                c = time.process_time(); s, b = f(); c = time.process_time() - c
                assert b == total, (k, b)
                if r: got[k].append((s, c))
                shutil.rmtree(work / "f", ignore_errors=True); shutil.rmtree(work / "node", ignore_errors=True); os.sync()
        for k, v in got.items():
            s = statistics.median(x for x, _ in v); c = statistics.median(y for _, y in v)
            print(f"{k:32s} {s:5.3f} s {total / s / 1e6:6.0f} MB/s  cpu {c:.2f} s  runs {', '.join(f'{x:.3f}' for x, _ in v)}")
    finally:
        server.stop()

if __name__ == "__main__":
    main()
