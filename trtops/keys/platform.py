"""What this machine is: TensorRT version, GPUs and driver. Never imports tensorrt.

- TensorRT: the version of the distribution that installs the ``tensorrt`` module
  (``tensorrt``, ``tensorrt-cu12``, ... read through ``importlib.metadata``), else the
  ``__version__`` written in its ``__init__.py``; "not installed" is a valid answer.
- GPUs: NVML (``pynvml`` from nvidia-ml-py when installed, else ``libnvidia-ml`` through
  ctypes): name, compute capability, memory; the driver version. ``CUDA_VISIBLE_DEVICES``
  is honoured so indices are the ones CUDA (and so TensorRT) uses. SM counts come from
  the CUDA driver API and are only asked for by ``trtops info`` (initializing CUDA costs
  more than the rest together).
- A platform can also be described by a file (``trtops info --json -o platform.json``)
  or by flags, so a CPU-only CI job can plan for a GPU target.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from trtops.errors import InputError

PLATFORM_FORMAT = "trtops-platform"
PLATFORM_VERSION = 1
_CC_RE = re.compile(r"^\d{1,2}\.\d$")


@dataclass(frozen=True)
class GpuInfo:
    """One GPU as CUDA numbers it."""

    index: int
    name: str  # product name as NVML reports it, e.g. "NVIDIA H100 80GB HBM3"
    compute_capability: str  # "major.minor"
    memory_bytes: int | None = None
    sm_count: int | None = None
    uuid: str | None = None

    @property
    def cc_tuple(self) -> tuple[int, int]:
        major, minor = self.compute_capability.split(".")
        return int(major), int(minor)

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "name": self.name,
            "compute_capability": self.compute_capability,
            "memory_bytes": self.memory_bytes,
            "sm_count": self.sm_count,
            "uuid": self.uuid,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], index: int) -> GpuInfo:
        if not isinstance(data, Mapping):
            raise InputError(f"GPU {index} of the platform file is not an object")
        name = data.get("name")
        cc = data.get("compute_capability")
        if isinstance(cc, (int, float)) and not isinstance(cc, bool):
            cc = str(cc)
        if not isinstance(name, str) or not name:
            raise InputError(f"GPU {index} of the platform file has no 'name'")
        if not isinstance(cc, str) or not _CC_RE.match(cc):
            raise InputError(
                f"GPU {index} of the platform file has compute_capability {cc!r}",
                hint="write it as 'major.minor', e.g. '8.9'",
            )
        return cls(
            index=int(data.get("index", index)),
            name=name,
            compute_capability=cc,
            memory_bytes=data.get("memory_bytes"),
            sm_count=data.get("sm_count"),
            uuid=data.get("uuid"),
        )


@dataclass(frozen=True)
class Platform:
    """A machine to plan for: detected here, read from a file or given by flags."""

    tensorrt: str | None  # full version, None: not installed
    gpus: tuple[GpuInfo, ...] = ()
    driver: str | None = None  # NVIDIA driver, e.g. "550.54.15"
    cuda_driver: str | None = None  # CUDA version the driver supports, e.g. "12.4"
    tensorrt_distribution: str | None = None  # e.g. "tensorrt-cu12"
    source: str = "detected"  # detected | file | flags
    notes: tuple[str, ...] = field(default=(), compare=False)  # why something is missing

    def to_json(self) -> dict[str, Any]:
        """The platform file format (what ``--platform`` reads)."""
        return {
            "format": PLATFORM_FORMAT,
            "version": PLATFORM_VERSION,
            "tensorrt": self.tensorrt,
            "tensorrt_distribution": self.tensorrt_distribution,
            "gpus": [gpu.to_json() for gpu in self.gpus],
            "driver": self.driver,
            "cuda_driver": self.cuda_driver,
            "source": self.source,
            "notes": list(self.notes),
        }

    @classmethod
    def from_json(cls, data: Any, *, source: str = "file") -> Platform:
        """Read a platform description (the output of ``trtops info --json``).

        Raises:
            InputError: when the data is not a platform description.
        """
        if not isinstance(data, Mapping):
            raise InputError("the platform file must hold a JSON object",
                             hint="write one with `trtops info --json -o platform.json`")
        if data.get("format", PLATFORM_FORMAT) != PLATFORM_FORMAT:
            raise InputError(f"not a platform file (format {data.get('format')!r})",
                             hint="write one with `trtops info --json -o platform.json`")
        tensorrt = data.get("tensorrt")
        if tensorrt is not None:
            tensorrt = check_tensorrt_version(str(tensorrt))
        gpus = data.get("gpus") or []
        if not isinstance(gpus, list):
            raise InputError("'gpus' in the platform file must be a list")
        return cls(
            tensorrt=tensorrt,
            gpus=tuple(GpuInfo.from_json(g, i) for i, g in enumerate(gpus)),
            driver=data.get("driver"),
            cuda_driver=data.get("cuda_driver"),
            tensorrt_distribution=data.get("tensorrt_distribution"),
            source=source,
            notes=tuple(data.get("notes") or ()),
        )

    def digest(self) -> str:
        """What a saved plan depends on: TensorRT version and each GPU's name and compute
        capability (not memory or driver, which do not change engines)."""
        from trtops.keys.canonical import sha256_json

        return sha256_json(
            {"tensorrt": self.tensorrt, "gpus": [[g.name, g.compute_capability] for g in self.gpus]}
        )

    def describe(self) -> str:
        """One line for humans: 'NVIDIA L4 (cc 8.9) x2, TensorRT 10.13.3.9'."""
        parts = []
        if self.gpus:
            kinds: dict[tuple[str, str], int] = {}
            for gpu in self.gpus:
                kinds[(gpu.name, gpu.compute_capability)] = kinds.get((gpu.name, gpu.compute_capability), 0) + 1
            parts.append(", ".join(
                f"{name} (cc {cc})" + (f" x{count}" if count > 1 else "") for (name, cc), count in kinds.items()
            ))
        else:
            parts.append("no GPU")
        parts.append(f"TensorRT {self.tensorrt}" if self.tensorrt else "TensorRT not installed")
        return ", ".join(parts)


def check_tensorrt_version(version: str) -> str:
    """Validate a TensorRT version string ("8.6.0", "10.13.3.9") and return it unchanged."""
    from packaging.version import InvalidVersion, Version

    try:
        Version(version)
    except InvalidVersion:
        raise InputError(f"{version!r} is not a TensorRT version",
                         hint="write the full version, e.g. 10.13.3.9 or 8.6.0") from None
    if not re.match(r"^\d+(\.\d+)*$", version):
        raise InputError(f"{version!r} is not a TensorRT version",
                         hint="write the full version, e.g. 10.13.3.9 or 8.6.0")
    return version


# --------------------------------------------------------------------------- TensorRT


_VERSION_RE = re.compile(r"""^__version__\s*=\s*["']([^"']+)["']""", re.MULTILINE)


def _dist_owning(module_dir: Path, module: str) -> tuple[str, str] | None:
    """(distribution name, version) of the installed distribution whose files include
    ``<module>/__init__.py`` next to ``module_dir``; only TensorRT-named ones are read."""
    from importlib import metadata

    site = str(module_dir.parent)
    wanted = f"{module}/__init__.py"
    for dist in metadata.distributions(path=[site]):
        name = (dist.metadata.get("Name") or "").lower().replace("_", "-")
        if not name.startswith("tensorrt"):
            continue
        files = dist.files or []
        if any(str(f).replace("\\", "/") == wanted for f in files):
            return name, dist.version
        top_level = dist.read_text("top_level.txt") or ""
        if module in top_level.split():
            return name, dist.version
    return None


def _version_in_source(module_dir: Path) -> str | None:
    try:
        text = (module_dir / "__init__.py").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    match = _VERSION_RE.search(text)
    return match.group(1) if match else None


def _package_dir(module: str) -> Path | None:
    """The directory of an installed package, found without importing it."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _package_version(module_dir: Path, module: str) -> tuple[str, str | None] | None:
    """(version, distribution name or None) of a package: its distribution's metadata,
    else the ``__version__`` its ``__init__.py`` assigns."""
    owner = _dist_owning(module_dir, module)
    if owner is not None:
        return owner[1], owner[0]
    version = _version_in_source(module_dir)
    return (version, None) if version else None


def detect_tensorrt() -> tuple[str | None, str | None, str | None]:
    """The installed TensorRT without importing it.

    Returns:
        (version or None, distribution name or None, note explaining a None version).
    """
    module_dir = _package_dir("tensorrt")
    if module_dir is None:
        return None, None, "the tensorrt Python module is not installed"
    found = _package_version(module_dir, "tensorrt")
    if found is None:
        # pip's TensorRT 10 wheels: tensorrt/__init__.py re-exports tensorrt_bindings.
        bindings_dir = _package_dir("tensorrt_bindings")
        if bindings_dir is not None:
            found = _package_version(bindings_dir, "tensorrt_bindings")
    if found is None:
        return None, None, f"found the tensorrt module in {module_dir} but not its version"
    return found[0], found[1], None


# --------------------------------------------------------------------------- NVML


class _Unavailable(Exception):
    pass


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class _PynvmlApi:
    """NVML through nvidia-ml-py."""

    def __init__(self, pynvml: Any) -> None:
        self.nvml = pynvml

    def init(self) -> None:
        try:
            self.nvml.nvmlInit()
        except Exception as exc:  # pynvml.NVMLError and OSError subclasses
            raise _Unavailable(f"NVML: {exc}") from None

    def shutdown(self) -> None:
        self.nvml.nvmlShutdown()

    def device_count(self) -> int:
        return int(self.nvml.nvmlDeviceGetCount())

    def handle(self, index: int) -> Any:
        return self.nvml.nvmlDeviceGetHandleByIndex(index)

    def name(self, handle: Any) -> str:
        return _text(self.nvml.nvmlDeviceGetName(handle))

    def compute_capability(self, handle: Any) -> str:
        major, minor = self.nvml.nvmlDeviceGetCudaComputeCapability(handle)
        return f"{int(major)}.{int(minor)}"

    def memory_total(self, handle: Any) -> int:
        return int(self.nvml.nvmlDeviceGetMemoryInfo(handle).total)

    def uuid(self, handle: Any) -> str:
        return _text(self.nvml.nvmlDeviceGetUUID(handle))

    def driver_version(self) -> str:
        return _text(self.nvml.nvmlSystemGetDriverVersion())

    def cuda_driver_version(self) -> int:
        return int(self.nvml.nvmlSystemGetCudaDriverVersion())


class _NvmlMemory(ctypes.Structure):
    _fields_ = [("total", ctypes.c_ulonglong), ("free", ctypes.c_ulonglong), ("used", ctypes.c_ulonglong)]


def _load_library(names: Sequence[str]) -> ctypes.CDLL:
    errors = []
    for name in names:
        try:
            return ctypes.CDLL(name)
        except OSError as exc:
            errors.append(str(exc))
    raise _Unavailable(f"cannot load {names[0]} ({errors[0] if errors else 'not found'})")


class _CtypesNvml:
    """NVML through ctypes: the same C API pynvml wraps, for machines without nvidia-ml-py."""

    _BUFFER = 96  # NVML_DEVICE_NAME_V2_BUFFER_SIZE / NVML_DEVICE_UUID_V2_BUFFER_SIZE

    def __init__(self) -> None:
        names = ["nvml.dll"] if sys.platform == "win32" else ["libnvidia-ml.so.1", "libnvidia-ml.so"]
        self.lib = _load_library(names)

    def _call(self, name: str, *args: Any) -> None:
        function = getattr(self.lib, name, None)
        if function is None:
            raise _Unavailable(f"NVML has no {name}")
        code = function(*args)
        if code != 0:
            raise _Unavailable(f"NVML {name} returned error {code}")

    def init(self) -> None:
        self._call("nvmlInit_v2")

    def shutdown(self) -> None:
        self._call("nvmlShutdown")

    def device_count(self) -> int:
        count = ctypes.c_uint()
        self._call("nvmlDeviceGetCount_v2", ctypes.byref(count))
        return count.value

    def handle(self, index: int) -> Any:
        handle = ctypes.c_void_p()
        self._call("nvmlDeviceGetHandleByIndex_v2", ctypes.c_uint(index), ctypes.byref(handle))
        return handle

    def _string(self, name: str, handle: Any) -> str:
        buffer = ctypes.create_string_buffer(self._BUFFER)
        self._call(name, handle, buffer, ctypes.c_uint(self._BUFFER))
        return buffer.value.decode("utf-8", "replace")

    def name(self, handle: Any) -> str:
        return self._string("nvmlDeviceGetName", handle)

    def compute_capability(self, handle: Any) -> str:
        major, minor = ctypes.c_int(), ctypes.c_int()
        self._call("nvmlDeviceGetCudaComputeCapability", handle, ctypes.byref(major), ctypes.byref(minor))
        return f"{major.value}.{minor.value}"

    def memory_total(self, handle: Any) -> int:
        memory = _NvmlMemory()
        self._call("nvmlDeviceGetMemoryInfo", handle, ctypes.byref(memory))
        return int(memory.total)

    def uuid(self, handle: Any) -> str:
        return self._string("nvmlDeviceGetUUID", handle)

    def driver_version(self) -> str:
        buffer = ctypes.create_string_buffer(80)
        self._call("nvmlSystemGetDriverVersion", buffer, ctypes.c_uint(80))
        return buffer.value.decode("utf-8", "replace")

    def cuda_driver_version(self) -> int:
        version = ctypes.c_int()
        try:
            self._call("nvmlSystemGetCudaDriverVersion_v2", ctypes.byref(version))
        except _Unavailable:
            self._call("nvmlSystemGetCudaDriverVersion", ctypes.byref(version))
        return version.value


def _nvml_api() -> Any:
    try:
        import pynvml  # nvidia-ml-py
    except ImportError:
        return _CtypesNvml()
    return _PynvmlApi(pynvml)


def visible_indices(physical: Sequence[tuple[int, str]], env: str | None) -> list[int]:
    """Which physical GPUs CUDA exposes, in CUDA's order, for a CUDA_VISIBLE_DEVICES value.

    Args:
        physical: (NVML index, UUID) of every GPU.
        env: The value of CUDA_VISIBLE_DEVICES (None: unset).

    Returns:
        NVML indices in the order CUDA numbers them (like CUDA, parsing stops at the first
        entry that names no device).
    """
    if env is None:
        return [index for index, _ in physical]
    chosen: list[int] = []
    for item in env.split(","):
        item = item.strip()
        if not item:
            break
        if item.isdigit():
            position = int(item)
            if position >= len(physical):
                break
            index = physical[position][0]
        elif item.startswith("GPU-"):
            matches = [index for index, uuid in physical if uuid and uuid.startswith(item)]
            if len(matches) != 1:
                break
            index = matches[0]
        else:  # negative numbers, MIG-... and anything else end the list for CUDA too
            break
        if index in chosen:
            break
        chosen.append(index)
    return chosen


def _cuda_version_text(value: int | None) -> str | None:
    if not value:
        return None
    return f"{value // 1000}.{(value % 1000) // 10}"


def gpus_from_nvml(api: Any, env: str | None = None) -> tuple[list[GpuInfo], str | None, str | None]:
    """Read GPUs and driver versions through an NVML adapter.

    Args:
        api: Object with init/shutdown/device_count/handle/name/compute_capability/
            memory_total/uuid/driver_version/cuda_driver_version.
        env: CUDA_VISIBLE_DEVICES.

    Returns:
        (GPUs in CUDA order, driver version, CUDA driver version).
    """
    api.init()
    try:
        physical = []
        for index in range(api.device_count()):
            handle = api.handle(index)
            try:
                uuid = api.uuid(handle)
            except Exception:  # noqa: BLE001 - an optional field
                uuid = None
            physical.append((index, handle, uuid))
        order = visible_indices([(i, u) for i, _, u in physical], env)
        gpus = []
        for cuda_index, nvml_index in enumerate(order):
            _, handle, uuid = physical[nvml_index]
            try:
                memory = api.memory_total(handle)
            except Exception:  # noqa: BLE001 - an optional field
                memory = None
            gpus.append(GpuInfo(
                index=cuda_index,
                name=api.name(handle),
                compute_capability=api.compute_capability(handle),
                memory_bytes=memory,
                uuid=uuid,
            ))
        try:
            driver = api.driver_version()
        except Exception:  # noqa: BLE001
            driver = None
        try:
            cuda = _cuda_version_text(api.cuda_driver_version())
        except Exception:  # noqa: BLE001
            cuda = None
        return gpus, driver, cuda
    finally:
        try:
            api.shutdown()
        except Exception:  # noqa: BLE001 - nothing to do about it
            pass


def cuda_sm_counts() -> list[tuple[str, int]]:
    """(name, SM count) of every GPU CUDA sees, through the CUDA driver API (ctypes).

    Raises:
        _Unavailable: when the CUDA driver cannot be loaded or initialized.
    """
    lib = _load_library(["nvcuda.dll"] if sys.platform == "win32" else ["libcuda.so.1", "libcuda.so"])

    def call(name: str, *args: Any) -> None:
        code = getattr(lib, name)(*args)
        if code != 0:
            raise _Unavailable(f"CUDA {name} returned error {code}")

    call("cuInit", ctypes.c_uint(0))
    count = ctypes.c_int()
    call("cuDeviceGetCount", ctypes.byref(count))
    result = []
    for index in range(count.value):
        device = ctypes.c_int()
        call("cuDeviceGet", ctypes.byref(device), ctypes.c_int(index))
        name = ctypes.create_string_buffer(256)
        call("cuDeviceGetName", name, ctypes.c_int(256), device)
        sms = ctypes.c_int()
        call("cuDeviceGetAttribute", ctypes.byref(sms), ctypes.c_int(16), device)  # MULTIPROCESSOR_COUNT
        result.append((name.value.decode("utf-8", "replace"), sms.value))
    return result


def _with_sm_counts(gpus: list[GpuInfo], notes: list[str]) -> list[GpuInfo]:
    try:
        counts = cuda_sm_counts()
    except (_Unavailable, OSError, AttributeError) as exc:
        notes.append(f"SM count unavailable: {exc}")
        return gpus
    by_name = {name: sms for name, sms in counts}
    out = []
    for gpu in gpus:
        sms = None
        if gpu.index < len(counts) and counts[gpu.index][0] == gpu.name:
            sms = counts[gpu.index][1]
        else:
            sms = by_name.get(gpu.name)
        out.append(replace(gpu, sm_count=sms))
    return out


_DETECTED: dict[bool, Platform] = {}


def detect_platform(*, sm_count: bool = False, refresh: bool = False) -> Platform:
    """Describe this machine (memoized per process).

    Args:
        sm_count: Also ask the CUDA driver for SM counts (slower: initializes CUDA).
        refresh: Detect again instead of using the memo.

    Returns:
        The platform; ``tensorrt`` is None when TensorRT is not installed and ``gpus`` is
        empty when no GPU (or no NVML) is found, with ``notes`` saying why.
    """
    if not refresh and sm_count in _DETECTED:
        return _DETECTED[sm_count]
    notes: list[str] = []
    version, distribution, note = detect_tensorrt()
    if note:
        notes.append(note)
    gpus: list[GpuInfo] = []
    driver = cuda = None
    try:
        gpus, driver, cuda = gpus_from_nvml(_nvml_api(), os.environ.get("CUDA_VISIBLE_DEVICES"))
    except _Unavailable as exc:
        notes.append(f"no GPU found: {exc}")
    except Exception as exc:  # noqa: BLE001 - a broken driver must not break planning
        notes.append(f"no GPU found: NVML failed ({type(exc).__name__}: {exc})")
    if gpus and sm_count:
        gpus = _with_sm_counts(gpus, notes)
    elif not gpus and not any(n.startswith("no GPU") for n in notes):
        notes.append("no GPU found: NVML reports no visible device")
    platform = Platform(
        tensorrt=version,
        gpus=tuple(gpus),
        driver=driver,
        cuda_driver=cuda,
        tensorrt_distribution=distribution,
        source="detected",
        notes=tuple(notes),
    )
    _DETECTED[sm_count] = platform
    return platform


def load_platform_file(path: str | os.PathLike[str]) -> Platform:
    """Read a platform file written by ``trtops info --json -o FILE``.

    Raises:
        InputError: when the file is missing or not a platform description.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"platform file {path} not found",
                         hint="write one with `trtops info --json -o platform.json`") from None
    except ValueError as exc:
        raise InputError(f"platform file {path} is not valid JSON ({exc})") from None
    return Platform.from_json(data, source="file")


# --------------------------------------------------------------------------- CLI helpers


def platform_from_args(args: argparse.Namespace, *, sm_count: bool = False) -> Platform:
    """The platform a command works for: --platform FILE or this machine, with --tensorrt
    and --gpu/--compute-capability overriding parts of it.

    Raises:
        InputError: for inconsistent or invalid flags.
    """
    gpu = getattr(args, "gpu", None)
    cc = getattr(args, "compute_capability", None)
    tensorrt = getattr(args, "tensorrt", None)
    path = getattr(args, "platform", None)
    if (gpu is None) != (cc is None):
        raise InputError("--gpu and --compute-capability go together",
                         hint="e.g. --gpu 'NVIDIA L4' --compute-capability 8.9")
    if cc is not None and not _CC_RE.match(cc):
        raise InputError(f"--compute-capability {cc!r} is not 'major.minor'", hint="e.g. 8.9 or 9.0")
    if path:
        platform = load_platform_file(path)
    elif gpu is not None and tensorrt is not None:
        # Fully described by flags: nothing to detect (a CPU-only CI job).
        platform = Platform(tensorrt=None, source="flags")
    else:
        platform = detect_platform(sm_count=sm_count)
    if tensorrt is not None:
        platform = replace(platform, tensorrt=check_tensorrt_version(tensorrt), tensorrt_distribution=None,
                           source="flags" if platform.source == "detected" else platform.source)
    if gpu is not None:
        platform = replace(platform, gpus=(GpuInfo(index=0, name=gpu, compute_capability=cc),),
                           driver=None if platform.source == "flags" else platform.driver,
                           source="flags" if platform.source == "detected" else platform.source)
    return platform
