"""Helpers of the fault-injection tests: run `trtops` killed with SIGKILL at a chosen point
(see faultrun.py), and check what a cache looks like afterwards."""

from __future__ import annotations

import ast
import hashlib
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RELIABILITY = Path(__file__).resolve().parent
TESTS = RELIABILITY.parent
FAULTRUN = RELIABILITY / "faultrun.py"


def base_env(**extra: str) -> dict[str, str]:
    """The environment of a trtops subprocess: the toolchain double, plain output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRTOPS_", "GITHUB_"))}
    env.update({
        "TRTOPS_TEST_TOOLCHAIN": "doubles:FakeToolchain",
        "PYTHONPATH": os.pathsep.join([str(TESTS), str(RELIABILITY), os.environ.get("PYTHONPATH", "")]),
        "CI": "true",
    })
    env.update(extra)
    return env


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def killed(self) -> bool:
        return self.returncode == -signal.SIGKILL


def run_trtops(args: list[str], cwd: Path, env: dict[str, str], *, kill_at: int = 0,
               kill_after: float | None = None, scope: list[Path] = (), count_file: Path | None = None,
               timeout: float = 120, max_file_bytes: int | None = None) -> Run:
    """Run ``trtops ARGS`` through faultrun.py.

    Args:
        kill_at: SIGKILL itself just before its kill_at-th write or HTTP send (0: never).
        kill_after: SIGKILL it from here after this many seconds (a timer, not an event).
        scope: Directories whose writes count as events.
        count_file: Where a run without kill_at writes how many events it had.
        max_file_bytes: RLIMIT_FSIZE of the process: a write past it fails with EFBIG, the
            same failure path as a full disk (ENOSPC), on any filesystem and without root.
    """
    env = dict(env)
    env["TRTOPS_KILL_SCOPE"] = os.pathsep.join(str(p) for p in scope)
    env["TRTOPS_KILL_AT"] = str(kill_at)
    if count_file is not None:
        env["TRTOPS_KILL_COUNT"] = str(count_file)
    started = time.monotonic()
    preexec = None
    if max_file_bytes is not None:
        def preexec() -> None:  # runs in the child between fork and exec: no imports here
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a core dump
            resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_bytes, max_file_bytes))
    proc = subprocess.Popen([sys.executable, str(FAULTRUN), *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=preexec)
    try:
        if kill_after is not None:
            try:
                out, err = proc.communicate(timeout=kill_after)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                out, err = proc.communicate(timeout=timeout)
        else:
            out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return Run(proc.returncode, out, err, time.monotonic() - started)


def measure(args: list[str], cwd: Path, env: dict[str, str], scope: list[Path],
            count_file: Path) -> tuple[float, int]:
    """(seconds, events) of one complete run: what kill points are drawn from."""
    result = run_trtops(args, cwd, env, scope=scope, count_file=count_file)
    assert result.returncode == 0, result.stderr
    return result.seconds, int(count_file.read_text())


def kill_plan(rng: Any, trials: int, events: int, seconds: float) -> list[tuple[int, float | None]]:
    """(kill_at, kill_after) per trial: even trials just before a write or send drawn
    uniformly over the events of a complete run, odd ones after a delay drawn uniformly
    over 15-100 % of its duration (all timed when the run had no events to count, e.g. on
    an interpreter without the http.client audit events)."""
    plan: list[tuple[int, float | None]] = []
    for index in range(trials):
        if index % 2 == 0 and events > 0:
            plan.append((rng.randint(1, events), None))
        else:
            plan.append((0, rng.uniform(0.15, 1.0) * seconds))
    return plan


# --------------------------------------------------------------------------- checks


@dataclass
class CacheReport:
    complete: list[str] = field(default_factory=list)
    corrupt: list[tuple[str, str]] = field(default_factory=list)
    partial: list[str] = field(default_factory=list)
    dangling_refs: list[str] = field(default_factory=list)
    bad_states: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.corrupt or self.partial or self.dangling_refs or self.bad_states)


def check_cache(store: Any) -> CacheReport:
    """What `trtops cache verify` checks (every file against meta.json, partial entries),
    plus: every ref points at a complete entry, every entry has a valid state."""
    from trtops.cache.entries import check_entry, entry_state
    from trtops.errors import CacheError

    report = CacheReport()
    report.complete = list(store.list_keys())
    for key in report.complete:
        problem = check_entry(store, key)
        if problem:
            report.corrupt.append((key, problem))
        try:
            entry_state(store, key)
        except CacheError as exc:
            report.bad_states.append(f"{key[:12]}: {exc.message}")
    if hasattr(store, "list_entry_dirs"):
        complete = set(report.complete)
        report.partial = [k for k in store.list_entry_dirs() if k not in complete]
    if hasattr(store, "list_refs"):
        complete = set(report.complete)
        for ref, record in store.list_refs():
            if record.get("key") not in complete:
                report.dangling_refs.append(ref)
    return report


_REDIRECT_LOCK = threading.Lock()


def cli_verify(cache: Path) -> tuple[int, str]:
    """`trtops cache verify` on a cache, in this process (fast); (exit code, output)."""
    import contextlib
    import io

    from trtops.cli import main

    out, err = io.StringIO(), io.StringIO()
    # redirect_stdout swaps the process-wide sys.stdout: trials run in threads, so one at a
    # time, or one trial's report lands in another's buffer.
    with _REDIRECT_LOCK, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["cache", "verify", "--cache", str(cache)])
    return code, out.getvalue() + err.getvalue()


def check_emitted(out: Path, engine_digests: set[str]) -> list[str]:
    """Problems of emitted loaders: a .plan that is not a complete engine of the cache, a
    module that does not parse. Hidden temporary files of an interrupted write are fine
    (never imported, replaced by the next emit)."""
    problems = []
    if not out.exists():
        return problems
    for path in out.rglob("*"):
        if not path.is_file() or path.name.startswith("."):
            continue
        if path.suffix == ".plan":
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if digest not in engine_digests:
                problems.append(f"{path}: not a complete engine")
        elif path.suffix == ".py":
            try:
                ast.parse(path.read_text())
            except SyntaxError as exc:
                problems.append(f"{path}: {exc}")
    return problems


def engine_digests(store: Any) -> set[str]:
    return {(store.read_meta(k) or {}).get("engine_sha256") for k in store.list_keys()}


def check_after_kill(killed: subprocess.CompletedProcess, cache: Path, out: Path, index: int) -> Any:
    """What every kill trial asserts once the killed run is gone: it ended normally or by
    SIGKILL, the cache holds only complete, verified entries (also through `trtops cache
    verify`), and every emitted loader points at an engine in it. Returns the LocalStore."""
    from trtops.cache.local import LocalStore

    assert killed.returncode in (0, -9), killed.stderr
    store = LocalStore(cache)
    report = check_cache(store)
    assert report.ok, (index, report)
    code, text = cli_verify(cache)
    assert code == 0 and "0 corrupt, 0 partial" in text, (index, text)
    assert check_emitted(out, engine_digests(store)) == [], index
    return store
