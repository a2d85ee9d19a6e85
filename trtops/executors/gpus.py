"""``trtops apply --gpus all|0,1``: one build worker process per GPU on this machine.

Each worker is a ``spawn`` process (a fresh interpreter: no CUDA state inherited) started
with ``CUDA_VISIBLE_DEVICES`` naming its one GPU, set before anything in it can import
CUDA or TensorRT, so TensorRT's device 0 is that GPU. Workers only build and check
(:func:`trtops.executors.jobs.run_build_job`) in a temporary directory under the cache's
tmp dir that the parent made; the parent publishes, merges timing caches, writes refs and
emits loaders.

Jobs come from one queue in plan order; a worker takes the next engine whose GPU signature
(product and compute capability) is its GPU's, so on a mixed machine each GPU type builds
its own engines. A worker that dies (a segfault in TensorRT, the OOM killer, ``os._exit``)
fails only the engine it was building, with the signal and Python's fault report; a new
worker takes the next engine.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import threading
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from trtops.errors import InputError
from trtops.executors.base import Slot
from trtops.executors.jobs import (
    BuildJob,
    JobError,
    JobOutput,
    merge_pieces,
    run_build_job,
    worker_facts,
)

_ENV_LOCK = threading.Lock()  # os.environ is swapped around Process.start()
FAULT_TAIL = 60  # lines of a dead worker's fault report kept in the outcome's details


def parse_gpus(text: str) -> str | tuple[int, ...]:
    """Read ``--gpus``: ``all`` or comma-separated CUDA indices (``0,1``).

    Raises:
        InputError: for anything else.
    """
    value = text.strip().lower()
    if value == "all":
        return "all"
    try:
        indices = tuple(int(part) for part in value.split(",") if part.strip())
    except ValueError:
        indices = ()
    if not indices or any(i < 0 for i in indices):
        raise InputError(f"--gpus {text!r} is neither 'all' nor a list of GPU indices",
                         hint="e.g. --gpus all or --gpus 0,1 (indices as `trtops info` lists them)")
    return tuple(dict.fromkeys(indices))


def visible_device(gpu: Any, environ: dict | None = None) -> str:
    """The ``CUDA_VISIBLE_DEVICES`` value that makes ``gpu`` (a
    :class:`~trtops.keys.platform.GpuInfo` of this process) the only device of a child.

    Indices are relative to this process's own ``CUDA_VISIBLE_DEVICES`` when it is set (its
    entry is reused); otherwise the GPU's UUID names it, which holds whatever
    ``CUDA_DEVICE_ORDER`` says, and the index is the fallback.
    """
    env = os.environ if environ is None else environ
    index = gpu.index
    current = env.get("CUDA_VISIBLE_DEVICES")
    if current is not None and current.strip():
        entries = [e.strip() for e in current.split(",") if e.strip()]
        if index < len(entries):
            return entries[index]
    uuid_ = getattr(gpu, "uuid", None)
    if isinstance(uuid_, str) and uuid_.startswith("GPU-"):
        return uuid_
    return str(index)


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "it stopped answering"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


# --------------------------------------------------------------------------- the worker process


def _worker_main(visible: str, conn: Any, toolchain_blob: bytes | None, fault_path: str) -> None:
    # Before anything can import CUDA: the parent set it in our environment already, this
    # keeps it true even if the start method changes.
    os.environ["CUDA_VISIBLE_DEVICES"] = visible
    import faulthandler

    fault = open(fault_path, "w", buffering=1)  # noqa: SIM115 - lives as long as the process
    faulthandler.enable(fault)
    if toolchain_blob is not None:
        toolchain = pickle.loads(toolchain_blob)
    else:
        from trtops.ops.toolchain import default_toolchain

        toolchain = default_toolchain()
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        kind = message[0]
        if kind == "stop":
            return
        if kind == "build":
            job: BuildJob = message[1]
            fault.write(f"building {job.id}\n")
            output = run_build_job(job, toolchain, lambda text: conn.send(("progress", text)), isolated=True)
            output.worker = worker_facts(executor="gpus")
            conn.send(("result", output))
        elif kind == "merge":
            try:
                conn.send(("merged", merge_pieces(toolchain, message[1], message[2]), None))
            except Exception as exc:  # noqa: BLE001 - reported to the parent
                conn.send(("merged", None, f"{type(exc).__name__}: {exc}"))


class WorkerCrashed(Exception):
    """The worker process died or its pipe broke."""


class GpuWorker:
    """The parent's handle of one worker process pinned to one GPU; restarts it on demand."""

    def __init__(self, index: int, name: str, visible: str, staging: Path,
                 toolchain_blob: bytes | None) -> None:
        self.index = index
        self.name = name
        self.visible = visible
        self.staging = staging
        self.toolchain_blob = toolchain_blob
        self.label = f"GPU {index} ({name})"
        self.process: Any = None
        self.conn: Any = None
        self.fault_path: Path | None = None
        self.started = 0

    # -- life cycle
    def start(self) -> None:
        mp = multiprocessing.get_context("spawn")
        parent_conn, child_conn = mp.Pipe()
        self.staging.mkdir(parents=True, exist_ok=True)
        self.fault_path = self.staging / f"worker-gpu{self.index}-{uuid.uuid4().hex[:12]}.fault"
        self.fault_path.touch()
        process = mp.Process(target=_worker_main, name=f"trtops-gpu{self.index}",
                             args=(self.visible, child_conn, self.toolchain_blob, str(self.fault_path)),
                             daemon=True)
        with _ENV_LOCK:
            saved = os.environ.get("CUDA_VISIBLE_DEVICES")
            os.environ["CUDA_VISIBLE_DEVICES"] = self.visible
            try:
                process.start()
            finally:
                if saved is None:
                    os.environ.pop("CUDA_VISIBLE_DEVICES", None)
                else:
                    os.environ["CUDA_VISIBLE_DEVICES"] = saved
        child_conn.close()
        self.process, self.conn = process, parent_conn
        self.started += 1

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.is_alive()

    def request_stop(self) -> None:
        """Ask the worker to exit after its current job (see :meth:`close`)."""
        if self.process is not None and self.conn is not None:
            try:
                self.conn.send(("stop",))
            except (OSError, ValueError):
                pass

    def close(self, wait: float = 10.0) -> None:
        """Stop the worker: it exits when asked between jobs; one still busy after
        ``wait`` seconds (an interrupted run) is terminated."""
        process, conn = self.process, self.conn
        self.process = self.conn = None
        if process is not None:
            try:
                conn.send(("stop",))
            except (OSError, ValueError):
                pass
            process.join(timeout=max(wait, 0.1))
            if process.is_alive():
                process.terminate()
                process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join(timeout=5)
        if conn is not None:
            conn.close()
        self._drop_fault_log()

    def _drop_fault_log(self) -> None:
        if self.fault_path is not None:
            try:
                self.fault_path.unlink()
            except OSError:
                pass
            self.fault_path = None

    def _fault_report(self) -> str:
        if self.fault_path is None:
            return ""
        try:
            lines = self.fault_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-FAULT_TAIL:])

    # -- requests
    def _request(self, message: tuple, progress: Any = None) -> tuple:
        if not self.alive:
            if self.process is not None:
                self._reap()
            self.start()
        try:
            self.conn.send(message)
        except (OSError, ValueError) as exc:
            raise WorkerCrashed(f"cannot reach the worker ({exc})") from None
        while True:
            ready = multiprocessing.connection.wait([self.conn, self.process.sentinel])
            if self.conn in ready or self.conn.poll():
                try:
                    reply = self.conn.recv()
                except (EOFError, OSError):
                    raise WorkerCrashed("its pipe closed") from None
                if reply[0] == "progress":
                    if progress is not None:
                        progress(reply[1])
                    continue
                return reply
            raise WorkerCrashed("it exited")

    def _reap(self) -> tuple[int | None, str]:
        """Forget a dead worker: its exit code and fault report."""
        process = self.process
        code = None
        if process is not None:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join(timeout=5)
            code = process.exitcode
        report = self._fault_report()
        if self.conn is not None:
            self.conn.close()
        self.process = self.conn = None
        self._drop_fault_log()
        return code, report

    def run(self, job: BuildJob, progress: Any = None) -> JobOutput:
        """Build and check ``job`` in the worker (started or restarted as needed)."""
        try:
            reply = self._request(("build", job), progress)
        except WorkerCrashed:
            code, report = self._reap()
            how = _describe_exit(code)
            message = (f"the build worker for {self.label} crashed ({how}) while building "
                       f"{job.id}; the other engines go on in a new worker")
            details = f"worker process on CUDA_VISIBLE_DEVICES={self.visible}, {how}"
            if report.strip():
                details += "\nits fault report (faulthandler):\n" + report
            return JobOutput(error=JobError(
                "build_failed", message,
                hint="TensorRT or the driver crashed in the worker: run again to retry, or build "
                "this engine alone (without --gpus) to see TensorRT's output",
                details=details), worker={"executor": "gpus", "cuda_visible_devices": self.visible})
        return reply[1]

    def merge(self, base: bytes | None, pieces: Sequence[bytes]) -> bytes | None:
        """Merge timing caches with TensorRT in the worker (None when that failed)."""
        try:
            reply = self._request(("merge", base, tuple(pieces)))
        except WorkerCrashed:
            self._reap()
            return None
        return reply[1]


# --------------------------------------------------------------------------- the executor


class GpuExecutor:
    """One worker process per selected GPU of this machine.

    Args:
        gpus: ``"all"`` or CUDA indices (as :func:`parse_gpus` returns).
        toolchain: Passed to workers when it pickles (test doubles); else each worker uses
            :func:`trtops.ops.apply.default_toolchain`.
    """

    name = "gpus"
    parallel = True

    def __init__(self, gpus: str | Sequence[int] = "all", toolchain: Any = None) -> None:
        self.gpus = gpus
        self.toolchain = toolchain
        self.workers: list[GpuWorker] = []
        self._selected: list[Any] = []

    def describe(self) -> str:
        if self._selected:
            return f"{len(self._selected)} GPU worker(s): " + ", ".join(
                f"GPU {g.index}" for g in self._selected)
        return "one worker per GPU" if self.gpus == "all" else \
            "GPU workers on " + ",".join(str(i) for i in self.gpus)

    def platform(self, toolchain: Any) -> Any:
        """None: plan for the platform detected here (the workers' GPUs are its GPUs)."""
        return None

    def check_platform(self, platform: Any) -> None:
        """Refuse ``--gpus`` indices the platform does not have.

        Raises:
            InputError: naming the GPUs there are.
        """
        self._select(platform)

    def _select(self, platform: Any) -> list[Any]:
        gpus = list(getattr(platform, "gpus", ()) or ())
        if self.gpus == "all":
            return gpus
        by_index = {g.index: g for g in gpus}
        missing = [i for i in self.gpus if i not in by_index]
        if missing:
            have = ", ".join(str(g.index) for g in gpus) or "none"
            raise InputError(f"--gpus {missing[0]}: there is no GPU {missing[0]} here",
                             hint=f"GPUs here: {have} (see `trtops info`)")
        return [by_index[i] for i in self.gpus]

    def prepare(self, plan: Any, actions: Sequence[Any], *, toolchain: Any,
                staging: Path) -> tuple[list[Slot], dict[str, str]]:
        """Make one slot per selected GPU (workers start on their first job).

        Args:
            plan: The plan (its platform numbers the GPUs).
            actions: The builds to run.
            toolchain: The parent's toolchain (sent to workers when it pickles).
            staging: Where workers' fault reports go (the cache's tmp dir).

        Returns:
            (slots, {action id: why it cannot run on the selected GPUs}).
        """
        from trtops.keys.engine_key import gpu_signature

        self._selected = self._select(plan.platform)
        blob = _pickled(self.toolchain or toolchain)
        slots = []
        for gpu in self._selected:
            worker = GpuWorker(gpu.index, gpu.name, visible_device(gpu), staging, blob)
            self.workers.append(worker)
            slots.append(Slot(worker.label, gpu_signature(gpu.name, gpu.compute_capability), worker))
        offered = {s.signature for s in slots}
        chosen = ", ".join(str(g.index) for g in self._selected) or "none"
        unschedulable = {}
        for action in actions:
            if action.timing_signature not in offered:
                gpu = _plan_gpu(plan, action)
                unschedulable[action.id] = (
                    f"needs GPU {action.gpu_index}" + (f" ({gpu.name})" if gpu else "")
                    + f", which --gpus {chosen} leaves out")
        return slots, unschedulable

    def merge_timing(self, tensorrt: str, signature: str, base: bytes | None,
                     pieces: Sequence[bytes]) -> bytes | None:
        """Merge timing caches in a worker whose GPU has ``signature`` (None: none can)."""
        from trtops.keys.engine_key import gpu_signature

        for worker, gpu in zip(self.workers, self._selected):
            if gpu_signature(gpu.name, gpu.compute_capability) == signature:
                return worker.merge(base, pieces)
        return None

    def close(self) -> None:
        """Stop every worker (all asked first, so they wind down together)."""
        import time

        for worker in self.workers:
            worker.request_stop()
        deadline = time.monotonic() + 10.0
        for worker in self.workers:
            worker.close(wait=deadline - time.monotonic())


def _plan_gpu(plan: Any, action: Any) -> Any:
    for gpu in getattr(plan.platform, "gpus", ()) or ():
        if gpu.index == action.gpu_index:
            return gpu
    return None


def _pickled(toolchain: Any) -> bytes | None:
    if toolchain is None:
        return None
    try:
        blob = pickle.dumps(toolchain)
        pickle.loads(blob)
    except Exception:  # noqa: BLE001 - workers fall back to default_toolchain()
        return None
    return blob
