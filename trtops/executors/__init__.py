"""Where apply's builds run.

- :mod:`.local`: in this process, one after the other (the default).
- :mod:`.gpus`: one worker process per GPU of this machine (``--gpus all|0,1``).
- :mod:`.ray_executor`: Ray tasks on a cluster of GPU nodes (``--executor ray``; Ray is
  the optional extra ``trtops[ray]``).

Every executor runs the same worker-side function (:func:`.jobs.run_build_job`: build and
accuracy check, the steps that need TensorRT and a GPU); the parent does the rest of
apply (timing caches, publish, refs, push, loaders). Nothing here imports TensorRT, CUDA
or Ray at module level.
"""

from __future__ import annotations

from typing import Any

from trtops.errors import InputError

EXECUTORS = ("local", "gpus", "ray")


def make_executor(name: str | None = None, *, gpus: str | None = None, address: str | None = None,
                  ray_timeout: float | None = None, toolchain: Any = None) -> Any:
    """The executor the apply flags ask for.

    Args:
        name: ``local``, ``gpus`` or ``ray``; None: ``gpus`` when ``gpus`` is given, else
            ``local``.
        gpus: ``--gpus`` (``all`` or ``0,1``).
        address: ``--address`` of the Ray cluster.
        ray_timeout: ``--ray-timeout`` seconds per build task.
        toolchain: The parent's toolchain (sent to GPU workers when it pickles).

    Returns:
        An executor (``parallel`` False for the in-process one).

    Raises:
        InputError: for flags that do not go together.
    """
    if name is None:
        name = "gpus" if gpus is not None else "local"
    if name not in EXECUTORS:
        raise InputError(f"unknown executor {name!r}", hint=f"choose one of {', '.join(EXECUTORS)}")
    if gpus is not None and name != "gpus":
        raise InputError(f"--gpus goes with --executor gpus, not {name}",
                         hint="drop --executor, or drop --gpus" if name == "local" else
                         "Ray chooses GPUs by resources: see docs/scale-out.md")
    if name != "ray" and (address is not None or ray_timeout is not None):
        flag = "--address" if address is not None else "--ray-timeout"
        raise InputError(f"{flag} needs --executor ray")
    if ray_timeout is not None and ray_timeout <= 0:
        raise InputError(f"--ray-timeout {ray_timeout:g} must be positive")
    if name == "local":
        from trtops.executors.local import LocalExecutor

        return LocalExecutor(toolchain)
    if name == "gpus":
        from trtops.executors.gpus import GpuExecutor, parse_gpus

        return GpuExecutor(parse_gpus(gpus or "all"), toolchain)
    from trtops.executors.ray_executor import RayExecutor

    return RayExecutor(address, ray_timeout)
