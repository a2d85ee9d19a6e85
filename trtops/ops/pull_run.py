"""One ``trtops pull`` run from plain values: pick the platform, read the manifests, open
both caches, then pull what runs here (:func:`trtops.ops.pull.pull`) or exactly what the
lock names (:func:`trtops.ops.lock.pull_locked`). Its own module because ops.lock already
imports ops.pull."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class PullRequest:
    """What ``trtops pull`` was asked (the command converts its flags to this)."""

    remote_url: str
    cache_url: str
    paths: list[str] = field(default_factory=list)  # manifests: only their engines
    lock_paths: list[str] = field(default_factory=list)  # where --locked looks for the lock
    platform_file: str | None = None
    gpu: str | None = None
    compute_capability: str | None = None
    tensorrt: str | None = None
    every: bool = False
    locked: bool = False
    lockfile: str | None = None
    jobs: int = 8
    fsync: bool = False
    dry_run: bool = False
    dest: str | None = None
    loaders: str | None = None
    with_logs: bool = False  # also fetch build.log (`pull --with-logs`)


@dataclass
class PullRun:
    """A pull's result with what its report names: the platform and both caches."""

    result: Any  # trtops.ops.pull.PullResult
    platform: Any
    remote: Any
    local: Any


def run_pull(request: PullRequest, *, announce: Callable[[str], None] | None = None) -> PullRun:
    """Pull for the requested platform; ``announce`` gets one line saying what and from where.

    Raises:
        InputError: manifests given that define no engines; ``locked`` with ``every``.
        CacheError: see :func:`trtops.ops.pull.pull` and :func:`trtops.ops.lock.pull_locked`.
    """
    from trtops.cache import open_store
    from trtops.errors import InputError
    from trtops.ops.pull import pull, target_platform
    from trtops.plan import load_specs

    platform = target_platform(platform_file=request.platform_file, gpu=request.gpu,
                               compute_capability=request.compute_capability,
                               tensorrt=request.tensorrt)
    # A fleet node needs the manifests, not the models: skip checks that read ONNX files.
    specs = (load_specs(request.paths, check_models=False, cache_dir=request.cache_url)
             if request.paths else [])
    if request.paths and not specs:
        raise InputError("the manifests define no engines", hint="check the paths given")
    local = open_store(request.cache_url, write_for=None if request.dry_run else "pull")
    remote = open_store(request.remote_url)
    say = announce or (lambda line: None)
    if request.locked:
        from trtops.lockfile import lock_path_for, read_lock
        from trtops.ops.lock import pull_locked

        if request.every:
            raise InputError("--locked and --all exclude each other",
                             hint="the lock names one engine per engine id and platform")
        lock = read_lock(lock_path_for(request.lock_paths, request.lockfile))
        say(f"pulling the engines of {lock.path} for {platform.describe()} from {remote.url}")
        result = pull_locked(remote, local, platform, lock, specs=specs, jobs=request.jobs,
                             fsync=request.fsync, dry_run=request.dry_run, dest=request.dest,
                             loaders=request.loaders, with_logs=request.with_logs)
    else:
        say(f"pulling for {platform.describe()} from {remote.url}")
        result = pull(remote, local, platform, specs=specs, every=request.every,
                      jobs=request.jobs, fsync=request.fsync, dry_run=request.dry_run,
                      dest=request.dest, loaders=request.loaders,
                      with_logs=request.with_logs)
    return PullRun(result, platform, remote, local)
