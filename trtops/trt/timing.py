"""Timing caches: load serialized bytes into a builder config, serialize after the build,
merge two caches.

The cache store (another module) keeps one cache per (TensorRT version, GPU signature) and
serializes concurrent writers; it calls :func:`merge_timing_caches` under its lock so that
entries another build wrote in the meantime are kept.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from trtops.errors import EnvironmentMissing
from trtops.trt.logger import LogCapture, get_logger
from trtops.trt.trt_compat import import_tensorrt

if TYPE_CHECKING:
    import tensorrt


def _host_bytes(memory: Any) -> bytes:
    return bytes(memoryview(memory))


def attach_timing_cache(
    config: tensorrt.IBuilderConfig, data: bytes | None, warn: Callable[[str], None]
) -> tuple[tensorrt.ITimingCache, bool]:
    """Create a timing cache from ``data`` (or empty) and attach it to ``config``.

    A cache TensorRT rejects (corrupt, other version, other GPU) is replaced by an empty one
    with a warning: a stale cache must never fail a build.

    Args:
        config: ``IBuilderConfig``.
        data: serialized timing cache, or ``None``.
        warn: called with a message when ``data`` was not usable.

    Returns:
        ``(ITimingCache, loaded)`` where ``loaded`` says whether ``data`` was used.
    """
    if data:
        try:
            cache = config.create_timing_cache(bytes(data))
            if cache is None:
                warn("timing cache could not be read; starting with an empty one")
            # ignore_mismatch=False: TensorRT refuses caches made on another device model.
            elif config.set_timing_cache(cache, False):
                return cache, True
            else:
                warn("timing cache rejected by TensorRT (other GPU or TensorRT version); starting with an empty one")
        except Exception as exc:
            warn(f"timing cache not usable ({exc}); starting with an empty one")
    cache = config.create_timing_cache(b"")
    config.set_timing_cache(cache, False)
    return cache, False


def serialize_timing_cache(config: tensorrt.IBuilderConfig) -> bytes | None:
    """The config's timing cache (the loaded one plus what the build timed), serialized."""
    try:
        cache = config.get_timing_cache()
    except Exception:
        return None
    if cache is None:
        return None
    try:
        return _host_bytes(cache.serialize())
    except Exception:
        return None


def merge_timing_caches(base: bytes | None, new: bytes) -> bytes:
    """Merge two serialized timing caches of one TensorRT version and GPU.

    Args:
        base: the cache currently stored (``None`` or empty: none yet).
        new: the cache a build returned.

    Returns:
        The merged cache, serialized. When ``base`` cannot be read or was made on another
        device, ``new`` is returned unchanged.

    Raises:
        EnvironmentMissing: TensorRT or a GPU is missing.
    """
    if not base:
        return bytes(new)
    trt = import_tensorrt()
    with LogCapture(min_severity=1) as capture:
        try:
            builder = trt.Builder(get_logger(trt))
        except Exception as exc:
            raise EnvironmentMissing(
                f"TensorRT could not create a builder: {exc} {capture.tail(5)}".strip(),
                hint="check that an NVIDIA GPU and driver are available",
            ) from exc
        config = builder.create_builder_config()
        merged = config.create_timing_cache(bytes(new))
        if merged is None:
            return bytes(base)
        other = config.create_timing_cache(bytes(base))
        if other is not None:
            try:
                merged.combine(other, False)
            except Exception:
                pass
        return _host_bytes(merged.serialize())
