"""``trtops apply --executor ray [--address ADDR]``: builds as Ray tasks on a GPU cluster.

A TensorRT engine only runs on the GPU model it was built on, so every build must land on a
node with exactly that GPU. Ray's own ``GPU`` resource does not say which GPU, and its
``accelerator_type:*`` resources are coarser than TensorRT's portability (``H100`` covers
PCIe and SXM parts, which are different targets), so trtops uses one custom resource per GPU
*signature* (compute capability and product name, as in the engine key)::

    trtops_gpu:cc9.0-nvidia-h100-80gb-hbm3

Start each node with as many units of it as it has GPUs of that model (print them with
``python -m trtops.executors.ray_executor resources``)::

    ray start --address HEAD:6379 --num-gpus 8 \\
        --resources '{"trtops_gpu:cc9.0-nvidia-h100-80gb-hbm3": 8}'

One GPU model per Ray node: Ray hands out GPU ids without knowing their model, so a host
with two models runs one Ray node per model, each with its own ``CUDA_VISIBLE_DEVICES``.

What happens:

1. ``platform``: one probe task per node offering a ``trtops_gpu:*`` resource (pinned to
   the node, no GPU needed) reports its GPUs and TensorRT; the plan is made for the
   cluster's GPU models (one TensorRT version).
2. ``prepare``: builds whose GPU signature no live node offers (with a GPU) are reported
   at once as skipped, with the ``ray start`` line that would fix it, instead of pending
   forever.
3. Each build is a task with ``num_gpus=1`` and one unit of its signature's resource.
   The model (and its external data, calibration and accuracy data) travels through the
   object store, so nodes need no shared filesystem; the engine, its metadata, timing
   cache and accuracy report come back the same way and the parent publishes them to its
   cache (local or remote).
4. ``--ray-timeout``: a task not finished in time is cancelled and its engine fails.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tempfile
import threading
from collections import Counter
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from trtops.errors import EnvironmentMissing
from trtops.executors.base import Slot
from trtops.executors.jobs import (
    BuildJob,
    JobError,
    JobOutput,
    merge_pieces,
    run_build_job,
    worker_facts,
)
from trtops.process_exit import skip_teardown

RESOURCE_PREFIX = "trtops_gpu:"
MAX_SLOTS_PER_SIGNATURE = 64  # parent threads waiting on tasks of one GPU model
PROBE_TIMEOUT = 120.0  # seconds for node probes and timing-cache merges


def resource_name(signature: str) -> str:
    """The Ray custom resource for GPUs of one signature (``trtops_gpu:<signature>``)."""
    return RESOURCE_PREFIX + signature


def node_resources(platform: Any = None) -> dict[str, int]:
    """The custom resources this machine's GPUs give a Ray node: ``{resource: count}``.

    Args:
        platform: Default: :func:`trtops.keys.platform.detect_platform`.

    Returns:
        One entry per GPU model (for ``ray start --resources``).
    """
    from trtops.keys.engine_key import gpu_signature

    if platform is None:
        from trtops.keys.platform import detect_platform

        platform = detect_platform()
    counts: Counter[str] = Counter()
    for gpu in platform.gpus:
        counts[resource_name(gpu_signature(gpu.name, gpu.compute_capability))] += 1
    return dict(counts)


def import_ray() -> Any:
    """The ray module, or a clear error saying how to install it."""
    try:
        import ray
    except ImportError:
        raise EnvironmentMissing("--executor ray needs Ray, which is not installed",
                                 hint="pip install 'trtops[ray]' (ray[default]>=2.9)") from None
    return ray


def _errors_to_stderr() -> None:
    """Ray's driver prints cluster error messages ("A worker died...") to *stdout* from a
    background thread; ``--json`` owns stdout, and trtops reports those failures itself,
    so they go to stderr."""
    try:
        from ray._private import worker
    except ImportError:
        return
    original = getattr(worker, "print_to_stdstream", None)
    if original is None or getattr(original, "_trtops", False):
        return

    def to_stderr(data: dict, *args: Any, **kwargs: Any) -> Any:
        return original(dict(data, is_err=True), *args, **kwargs)

    to_stderr._trtops = True  # type: ignore[attr-defined]
    worker.print_to_stdstream = to_stderr


def _start_hint(signature: str, count: int = 1) -> str:
    resources = json.dumps({resource_name(signature): count})
    return (f"start a node with that GPU: ray start --address <head>:6379 --num-gpus {count} "
            f"--resources '{resources}'")


# --------------------------------------------------------------------------- tasks (run on nodes)


def _probe_task() -> dict:
    """This node's GPUs and TensorRT (runs pinned to one node, without a GPU of Ray's)."""
    # Older Ray empties CUDA_VISIBLE_DEVICES for tasks without GPUs: NVML must see them all.
    if os.environ.get("CUDA_VISIBLE_DEVICES") == "":
        os.environ.pop("CUDA_VISIBLE_DEVICES")
    from trtops.keys.platform import detect_platform
    from trtops.ops.toolchain import default_toolchain

    toolchain = default_toolchain()
    describe = getattr(toolchain, "platform", None)
    platform = describe() if callable(describe) else detect_platform()
    return {"platform": platform.to_json(), **worker_facts(executor="ray")}


def _pin_gpu(signature: str) -> None:
    """Make a GPU of ``signature`` CUDA's device 0 in this (fresh) worker, for TensorRT
    calls outside a build task (timing-cache merges)."""
    if os.environ.get("CUDA_VISIBLE_DEVICES") == "":
        os.environ.pop("CUDA_VISIBLE_DEVICES")
    from trtops.executors.gpus import visible_device
    from trtops.keys.engine_key import gpu_signature
    from trtops.keys.platform import detect_platform

    for gpu in detect_platform(refresh=True).gpus:
        if gpu_signature(gpu.name, gpu.compute_capability) == signature:
            os.environ["CUDA_VISIBLE_DEVICES"] = visible_device(gpu)
            return


def _merge_task(signature: str, base: bytes | None, pieces: Sequence[bytes]) -> bytes | None:
    _pin_gpu(signature)
    from trtops.ops.toolchain import default_toolchain

    return merge_pieces(default_toolchain(), base, pieces)


def _safe_join(root: Path, relative: str) -> Path:
    parts = PurePosixPath(relative.replace("\\", "/")).parts
    if not parts or relative.startswith(("/", "\\")) or ".." in parts:
        raise ValueError(f"refusing to write {relative!r} outside the build directory")
    return root.joinpath(*parts)


def _materialize(bundle: dict, root: Path) -> dict[str, str]:
    """Write shipped files under ``root``; returns {role: local path}."""
    paths = {}
    for role, (name, files) in bundle.items():
        base = root / role
        for relative, data in files.items():
            target = _safe_join(base, relative)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        paths[role] = str(_safe_join(base, name)) if name else str(base)
    return paths


def _relocate(spec: Any, paths: dict[str, str]) -> Any:
    """The spec with its model, calibration and accuracy data at their shipped copies."""
    from dataclasses import replace

    if "model" in paths:
        spec = replace(spec, source=replace(spec.source, path=paths["model"]))
    if "calibration" in paths and spec.build.calibration is not None:
        spec = replace(spec, build=replace(spec.build, calibration=replace(
            spec.build.calibration, data=paths["calibration"])))
    if "accuracy" in paths and spec.accuracy.data:
        spec = replace(spec, accuracy=replace(spec.accuracy, data=paths["accuracy"]))
    return spec


def _build_task(job: BuildJob, bundle: dict | None) -> JobOutput:
    """Build and check one engine on this node; the engine comes back as bytes."""
    import ray

    root = Path(tempfile.mkdtemp(prefix="trtops-ray-build-"))
    try:
        if bundle:
            paths = _materialize(bundle, root / "inputs")
            job.spec = _relocate(job.spec, paths)
            if job.model_path is not None and "parse" in paths:
                job.model_path = paths["parse"]
        job.workdir = str(root / "build")
        os.makedirs(job.workdir)
        from trtops.ops.toolchain import default_toolchain

        output = run_build_job(job, default_toolchain(), isolated=True)  # a crash ends this Ray worker only
        if output.engine_path and os.path.isfile(output.engine_path):
            output.engine_data = Path(output.engine_path).read_bytes()
        output.engine_path = None
        context = ray.get_runtime_context()
        output.worker = worker_facts(executor="ray", node_id=context.get_node_id(),
                                     resources=dict(context.get_assigned_resources()))
        return output
    finally:
        shutil.rmtree(root, ignore_errors=True)


# --------------------------------------------------------------------------- shipping inputs


def _file_set(path: Path) -> tuple[str, dict[str, bytes]]:
    if path.is_dir():
        files = {p.relative_to(path).as_posix(): p.read_bytes()
                 for p in sorted(path.rglob("*")) if p.is_file()}
        return "", files
    return path.name, {path.name: path.read_bytes()}


def _model_files(model: Path) -> tuple[str, dict[str, bytes]]:
    """An ONNX file and its external data, as shipped (raises ValueError for a location
    outside the model's folder)."""
    from trtops.onnx_facts import external_data_locations

    files = {model.name: model.read_bytes()}
    for location in external_data_locations(model):
        _safe_join(Path("."), location)
        files[PurePosixPath(location.replace("\\", "/")).as_posix()] = (model.parent / location).read_bytes()
    return model.name, files


def make_bundle(spec: Any, parse_model: str | None = None) -> dict | None:
    """The files a build of ``spec`` reads, as bytes keyed by role and relative path
    (None when a file is missing or an external-data location leaves the model's folder:
    the node must then see the same paths, e.g. on a shared filesystem).

    Args:
        spec: The engine spec.
        parse_model: The model TensorRT parses when it is not the spec's source (the cast
            model of a strongly typed build, :attr:`BuildJob.model_path`), shipped as "parse".

    Returns:
        ``{"model": (name, {relative: bytes}), "parse": ..., "calibration": ..., "accuracy": ...}``.
    """
    try:
        bundle: dict[str, Any] = {"model": _model_files(Path(spec.source.path))}
        if parse_model is not None:
            bundle["parse"] = _model_files(Path(parse_model))
        if spec.build.calibration is not None:
            bundle["calibration"] = _file_set(Path(spec.build.calibration.data))
        if spec.accuracy.enabled and spec.accuracy.data:
            bundle["accuracy"] = _file_set(Path(spec.accuracy.data))
    except (OSError, ValueError):
        return None
    return bundle


# --------------------------------------------------------------------------- parent side


class RayRunner:
    """Runs a job as a Ray task on a node offering its GPU signature."""

    def __init__(self, executor: RayExecutor, signature: str, number: int) -> None:
        self.executor = executor
        self.signature = signature
        self.label = f"Ray {resource_name(signature)} #{number}"

    def run(self, job: BuildJob, progress: Any = None) -> JobOutput:
        """Submit the build, wait for it (``--ray-timeout``) and return its output."""
        ray = self.executor.ray
        timeout = self.executor.timeout
        bundle = self.executor.shipment(job.spec, job.model_path)
        task = self.executor.remote("build").options(
            num_gpus=1, resources={resource_name(self.signature): 1}, max_retries=0,
            name=f"trtops-build:{job.id}")
        ref = task.remote(BuildJob(job.spec, job.key, None, job.timing_cache, job.timing_pieces,
                                   job.gpu_index, job.signature, job.model_path, job.model_cast), bundle)
        ready, _ = ray.wait([ref], timeout=timeout)
        if not ready:
            try:
                ray.cancel(ref, force=True)
            except Exception:  # noqa: BLE001 - it may have just finished
                pass
            return _failed(f"the Ray task building {job.id} did not finish within {timeout:g}s "
                           "(--ray-timeout); it was cancelled",
                           "raise --ray-timeout, or check that nodes with "
                           f"{resource_name(self.signature)} have free GPUs (`ray status`)")
        try:
            return ray.get(ref)
        except Exception as exc:  # noqa: BLE001 - RayError subclasses: worker/node died, cancelled
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            return _failed(f"the Ray task building {job.id} failed: {type(exc).__name__}: {first}",
                           "a Ray worker or node died (TensorRT crash, out of memory, node lost): "
                           "run again to retry", details=str(exc))


def _failed(message: str, hint: str, details: str = "") -> JobOutput:
    return JobOutput(error=JobError("build_failed", message, hint, details), worker={"executor": "ray"})


class RayExecutor:
    """Builds as Ray tasks, routed by GPU signature.

    Args:
        address: Ray cluster address (``HOST:6379``, ``ray://HOST:10001`` or ``auto``);
            None: ``ray.init()``'s default (``RAY_ADDRESS``, a local cluster started with
            ``ray start --head``, else a new local one).
        timeout: Seconds a build task may take from submission (None: no limit).
        ship_files: Send models and data through the object store (False: nodes read the
            same paths, e.g. a shared filesystem).
        init_kwargs: More arguments for ``ray.init``.
    """

    name = "ray"
    parallel = True

    def __init__(self, address: str | None = None, timeout: float | None = None, *,
                 ship_files: bool = True, init_kwargs: dict | None = None) -> None:
        self.address = address
        self.timeout = timeout
        self.ship_files = ship_files
        self.init_kwargs = dict(init_kwargs or {})
        self.ray: Any = None
        self._connected_here = False
        self._remotes: dict[str, Any] = {}
        self._bundles: dict[tuple, Any] = {}
        self._lock = threading.Lock()
        self._probed: dict[str, Any] = {}  # signature -> node id that offers it

    # -- connection
    def connect(self) -> Any:
        """Connect to the cluster (once); returns the ray module."""
        if self.ray is not None:
            return self.ray
        ray = import_ray()
        if not ray.is_initialized():
            kwargs = {"ignore_reinit_error": True, "logging_level": logging.WARNING,
                      "log_to_driver": False, **self.init_kwargs}
            try:
                ray.init(address=self.address, **kwargs)
            except Exception as exc:  # noqa: BLE001 - ConnectionError, RuntimeError, ValueError...
                where = f"at {self.address}" if self.address else "(no --address: local)"
                raise EnvironmentMissing(f"cannot connect to the Ray cluster {where}: {exc}",
                                         hint="start it with `ray start --head` on the head node and "
                                         "pass --address HEAD:6379") from None
            self._connected_here = True
            # Ray's driver teardown can hang after a worker died (trtops.process_exit).
            skip_teardown("ray")
        _errors_to_stderr()
        self.ray = ray
        return ray

    def describe(self) -> str:
        return f"Ray cluster at {self.address}" if self.address else "Ray"

    def remote(self, which: str) -> Any:
        """The Ray remote function for a task kind (made once per connection)."""
        with self._lock:
            if which not in self._remotes:
                ray = self.ray
                if which == "build":
                    self._remotes[which] = ray.remote(num_gpus=1, max_retries=0)(_build_task)
                elif which == "probe":
                    self._remotes[which] = ray.remote(num_cpus=0, num_gpus=0, max_calls=1,
                                                      max_retries=0)(_probe_task)
                else:
                    self._remotes[which] = ray.remote(num_cpus=0, num_gpus=0, max_calls=1,
                                                      max_retries=0)(_merge_task)
            return self._remotes[which]

    def _nodes(self) -> list[dict]:
        return [n for n in self.ray.nodes() if n.get("Alive") or n.get("alive")]

    def _on_node(self, node_id: str) -> Any:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        return NodeAffinitySchedulingStrategy(node_id=node_id, soft=False)

    def capacity(self) -> dict[str, int]:
        """Builds that can run at once per GPU signature: on every live node,
        min(units of its ``trtops_gpu:*`` resource, its GPUs)."""
        capacity: Counter[str] = Counter()
        for node in self._nodes():
            resources = node.get("Resources") or {}
            gpus = int(resources.get("GPU", 0))
            for name, amount in resources.items():
                if name.startswith(RESOURCE_PREFIX):
                    capacity[name[len(RESOURCE_PREFIX):]] += min(int(amount), gpus)
        return dict(capacity)

    # -- planning
    def platform(self, toolchain: Any = None) -> Any:
        """The cluster as one platform: a GPU per signature that live nodes offer, and
        the TensorRT version they share (nodes with another version are left out, noted).

        Raises:
            EnvironmentMissing: no node offers a ``trtops_gpu:*`` resource, or probes fail.
        """
        from trtops.keys.engine_key import gpu_signature
        from trtops.keys.platform import GpuInfo, Platform

        ray = self.connect()
        nodes: dict[str, list[str]] = {}  # node id -> signatures it offers
        for node in self._nodes():
            offered = [name[len(RESOURCE_PREFIX):] for name in (node.get("Resources") or {})
                       if name.startswith(RESOURCE_PREFIX)]
            if offered:
                nodes[node["NodeID"]] = offered
        if not nodes:
            raise EnvironmentMissing(
                f"no node of the {self.describe()} offers a {RESOURCE_PREFIX}* resource, so trtops "
                "cannot tell which GPUs it has",
                hint="start GPU nodes with: ray start --address <head>:6379 --resources "
                "\"$(python -m trtops.executors.ray_executor resources)\"")
        # One probe per signature, on the first node offering it (nodes of one signature
        # are alike by definition: same GPU model; same TensorRT is the operator's job).
        todo: dict[str, str] = {}
        for node_id, offered in nodes.items():
            for signature in offered:
                todo.setdefault(signature, node_id)
        probes = {node_id: self.remote("probe").options(scheduling_strategy=self._on_node(node_id)).remote()
                  for node_id in dict.fromkeys(todo.values())}
        ready, _ = ray.wait(list(probes.values()), num_returns=len(probes), timeout=PROBE_TIMEOUT)
        results: dict[str, dict] = {}
        notes: list[str] = []
        for node_id, ref in probes.items():
            if ref not in ready:
                notes.append(f"node {node_id[:12]} did not answer the trtops probe in {PROBE_TIMEOUT:g}s")
                continue
            try:
                results[node_id] = ray.get(ref)
            except Exception as exc:  # noqa: BLE001 - a broken node must not hide the others
                notes.append(f"node {node_id[:12]} failed the trtops probe: {type(exc).__name__}: {exc}")
        found: dict[str, tuple[Any, str | None]] = {}
        for signature, node_id in sorted(todo.items()):
            probe = results.get(node_id)
            if probe is None:
                continue
            node_platform = Platform.from_json(probe["platform"], source="ray")
            gpus = [g for g in node_platform.gpus
                    if gpu_signature(g.name, g.compute_capability) == signature]
            if not gpus:
                have = ", ".join(f"{g.name} (cc {g.compute_capability})" for g in node_platform.gpus) or "none"
                notes.append(f"node {probe.get('host')} offers {resource_name(signature)} but has no such "
                             f"GPU (it has {have}); left out")
                continue
            found[signature] = (gpus[0], node_platform.tensorrt)
            self._probed[signature] = node_id
        versions = Counter(v for _, v in found.values() if v)
        if not versions:
            raise EnvironmentMissing(
                f"no node of the {self.describe()} with a {RESOURCE_PREFIX}* resource has TensorRT and "
                "a matching GPU" + (f" ({'; '.join(notes)})" if notes else ""),
                hint="install trtops with TensorRT on the GPU nodes (pip install 'trtops[trt]') and "
                "start them with the resources `python -m trtops.executors.ray_executor resources` prints")
        tensorrt = versions.most_common(1)[0][0]
        gpus = []
        for signature, (gpu, version) in sorted(found.items()):
            if version != tensorrt:
                notes.append(f"GPUs {signature} have TensorRT {version}, not {tensorrt}: left out")
                continue
            gpus.append(GpuInfo(index=len(gpus), name=gpu.name, compute_capability=gpu.compute_capability,
                                memory_bytes=gpu.memory_bytes))
        for note in notes:
            print(f"trtops: ray: {note}", file=sys.stderr)
        return Platform(tensorrt=tensorrt, gpus=tuple(gpus), source="ray", notes=tuple(notes))

    def prepare(self, plan: Any, actions: Sequence[Any], *, toolchain: Any = None,
                staging: Path | None = None) -> tuple[list[Slot], dict[str, str]]:
        """Slots per GPU signature (as many as the cluster can run at once) and the builds
        no live node can run, checked against the cluster's resources before submitting.

        Returns:
            (slots, {action id: why no node can run it}).
        """
        self.connect()
        capacity = self.capacity()
        wanted = Counter(a.timing_signature for a in actions)
        unschedulable = {}
        for action in actions:
            signature = action.timing_signature
            if not signature or capacity.get(signature, 0) < 1:
                unschedulable[action.id] = (
                    f"no live node of the {self.describe()} offers {resource_name(signature or '?')} "
                    "with a GPU; " + _start_hint(signature or "<signature>"))
        slots = []
        for signature, count in sorted(wanted.items()):
            if capacity.get(signature, 0) < 1:
                continue
            for number in range(min(capacity[signature], count, MAX_SLOTS_PER_SIGNATURE)):
                slots.append(Slot(f"ray-{signature}-{number + 1}", signature,
                                  RayRunner(self, signature, number + 1)))
        return slots, unschedulable

    def shipment(self, spec: Any, parse_model: str | None = None) -> Any:
        """An object ref of the spec's input files (put once per set of files), or None."""
        if not self.ship_files:
            return None
        calibration = spec.build.calibration.data if spec.build.calibration is not None else None
        accuracy = spec.accuracy.data if spec.accuracy.enabled else None
        key = (spec.source.path, parse_model, calibration, accuracy)
        with self._lock:
            if key not in self._bundles:
                bundle = make_bundle(spec, parse_model)
                self._bundles[key] = self.ray.put(bundle) if bundle is not None else None
            return self._bundles[key]

    def merge_timing(self, tensorrt: str, signature: str, base: bytes | None,
                     pieces: Sequence[bytes]) -> bytes | None:
        """Merge timing caches with TensorRT on a node with a GPU of ``signature``
        (a small task pinned to the node; None when it cannot)."""
        if self.ray is None:
            return None
        node_id = self._probed.get(signature)
        if node_id is None:
            for node in self._nodes():
                if resource_name(signature) in (node.get("Resources") or {}):
                    node_id = node["NodeID"]
                    break
        if node_id is None:
            return None
        ref = self.remote("merge").options(scheduling_strategy=self._on_node(node_id)).remote(
            signature, base, tuple(pieces))
        ready, _ = self.ray.wait([ref], timeout=PROBE_TIMEOUT)
        if not ready:
            return None
        try:
            return self.ray.get(ref)
        except Exception:  # noqa: BLE001 - timing caches only save time
            return None

    def close(self) -> None:
        if self.ray is not None and self._connected_here:
            try:
                self.ray.shutdown()
            except Exception:  # noqa: BLE001 - nothing left to do
                pass
        self.ray = None
        self._remotes.clear()
        self._bundles.clear()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m trtops.executors.ray_executor resources``: this machine's resources for
    ``ray start --resources`` (JSON)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] != ["resources"]:
        print("usage: python -m trtops.executors.ray_executor resources", file=sys.stderr)
        return 2
    print(json.dumps(node_resources()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
