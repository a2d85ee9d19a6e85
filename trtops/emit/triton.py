"""Emit a Triton Inference Server model repository entry for TensorRT engines.

Layout (Triton's)::

    <repo>/<model>/config.pbtxt
    <repo>/<model>/<version>/model.plan                    one engine
    <repo>/<model>/<version>/model_sm89.plan, ...          one engine per compute
                                                           capability (cc_model_filenames)

``config.pbtxt`` is protobuf text format for Triton's ``inference.ModelConfig``: platform
``tensorrt_plan``, inputs and outputs with Triton data types and dims, ``max_batch_size``
derived from the optimization profiles (0 when dimension 0 is not a batch dimension every
profile can serve from 1 upwards), one GPU instance group (listing every profile when there
are several) and dynamic batching when batches are possible. Names are validated
identifiers or are written as escaped string literals (octal escapes for every byte
outside printable ASCII), so no name can change the structure of the file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from trtops.dtypes import TRITON_TYPES
from trtops.emit.entries import Entry, file_sha256, name_part
from trtops.emit.registry import EmitOptions, LoaderOutput, Refused, Written
from trtops.engine_io import EngineIO
from trtops.errors import InputError, TrtopsError
from trtops.fsutil import atomic_copy, atomic_write
from trtops.names import is_identifier

PLATFORM = "tensorrt_plan"
CONFIG_FILE = "config.pbtxt"
DEFAULT_FILENAME = "model.plan"
_CC_RE = re.compile(r"[0-9]{1,2}\.[0-9]")


@dataclass(frozen=True)
class TritonVariant:
    """One engine of a Triton model: its file, I/O and the compute capability it runs on
    (``hardware_compatible``: built for Ampere and later, it runs on any of them)."""

    engine_file: Path
    io: EngineIO
    compute_capability: str | None = None
    hardware_compatible: bool = False
    label: str = ""  # for messages, e.g. the target name


@dataclass(frozen=True)
class TritonOptions:
    """Settings of the emitted config (defaults suit most deployments)."""

    version: int = 1
    instance_count: int = 1
    max_batch_size: int | None = None  # None: derived from the profiles; 0: no batching
    max_queue_delay_microseconds: int = 100
    dynamic_batching: bool = True


@dataclass(frozen=True)
class TritonModel:
    """What :func:`write_model` wrote."""

    directory: Path
    config_path: Path
    engine_files: dict[str, Path] = field(default_factory=dict)  # file name -> source
    max_batch_size: int = 0


def pb_str(text: str) -> str:
    """A protobuf text-format string literal: printable ASCII as is, quotes and
    backslashes escaped, every other byte of the UTF-8 encoding as a 3-digit octal escape."""
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(f"name {text!r} is not valid Unicode text",
                         hint="Triton needs UTF-8 tensor names") from exc
    out = ['"']
    for byte in data:
        if byte in (0x22, 0x5C):
            out.append("\\" + chr(byte))
        elif 0x20 <= byte < 0x7F:
            out.append(chr(byte))
        else:
            out.append(f"\\{byte:03o}")
    out.append('"')
    return "".join(out)


def max_batch_size(io: EngineIO) -> int:
    """The largest batch Triton can send: every input and output must have a dynamic
    dimension 0, and the profiles together must serve every batch size from 1 up to it
    (a batch size is served by a profile whose min/max of dimension 0 hold it for all
    inputs). 0 when that is not the case (no batching)."""
    if not io.inputs or any(len(t.shape) == 0 or t.shape[0] != -1 for t in io.tensors):
        return 0
    intervals = []
    for profile in io.profiles:
        low, high = 1, None
        for spec in io.inputs:
            ranges = profile.get(spec.name)
            if ranges is None:
                return 0
            lo, _, hi = ranges
            low = max(low, lo[0])
            high = hi[0] if high is None else min(high, hi[0])
        if high is not None and low <= high:
            intervals.append((low, high))
    reach = 0
    for low, high in sorted(intervals):
        if low > reach + 1:
            break
        reach = max(reach, high)
    return reach


def _dims(shape: tuple[int, ...], batching: bool) -> tuple[list[int], bool]:
    """Config dims and whether a reshape to a scalar is needed (dims may not be empty)."""
    dims = list(shape[1:] if batching else shape)
    if not dims:
        return [1], True
    return dims, False


def _list(values: list[int]) -> str:
    return "[ " + ", ".join(str(v) for v in values) + " ]"


def render_config(name: str, io: EngineIO, *, batch_size: int, options: TritonOptions,
                  cc_filenames: dict[str, str] | None = None,
                  default_filename: str | None = None) -> str:
    """``config.pbtxt`` text for one model.

    Args:
        name: Triton model name (a validated identifier: the directory name).
        io: the engine's tensors and profiles.
        batch_size: ``max_batch_size`` (0: dims are full shapes, no batching).
        options: instance count, dynamic batching settings.
        cc_filenames: compute capability -> plan file name, when there are several.
        default_filename: plan file for other GPUs (``default_model_filename``).

    Returns:
        The file's text.
    """
    if not is_identifier(name):
        raise InputError(f"Triton model name {name!r} is not a safe identifier",
                         hint="use letters, digits and '_', at most 64 characters")
    batching = batch_size > 0
    lines = [f"name: {pb_str(name)}", f"platform: {pb_str(PLATFORM)}",
             f"max_batch_size: {int(batch_size)}"]
    for kind, tensors in (("input", io.inputs), ("output", io.outputs)):
        lines.append(f"{kind} [")
        for index, spec in enumerate(tensors):
            dtype = TRITON_TYPES.get(spec.dtype)
            if dtype is None:
                raise InputError(
                    f"{kind} {spec.name!r} has dtype {spec.dtype}, which Triton's TensorRT "
                    "backend does not support",
                    hint=f"supported: {', '.join(TRITON_TYPES)}")
            dims, scalar = _dims(spec.shape, batching)
            lines.append("  {")
            lines.append(f"    name: {pb_str(spec.name)}")
            lines.append(f"    data_type: {dtype}")
            lines.append(f"    dims: {_list(dims)}")
            if scalar:
                lines.append("    reshape: { shape: [ ] }")
            lines.append("  }," if index < len(tensors) - 1 else "  }")
        lines.append("]")
    lines.append("instance_group [")
    lines.append("  {")
    lines.append(f"    count: {int(options.instance_count)}")
    lines.append("    kind: KIND_GPU")
    if len(io.profiles) > 1:
        profiles = ", ".join(pb_str(str(i)) for i in range(len(io.profiles)))
        lines.append(f"    profile: [ {profiles} ]")
    lines.append("  }")
    lines.append("]")
    if batch_size > 1 and options.dynamic_batching:
        lines.append("dynamic_batching {")
        lines.append(f"  max_queue_delay_microseconds: "
                     f"{int(options.max_queue_delay_microseconds)}")
        lines.append("}")
    if default_filename:
        lines.append(f"default_model_filename: {pb_str(default_filename)}")
    if cc_filenames:
        lines.append("cc_model_filenames [")
        items = sorted(cc_filenames.items(), key=lambda kv: tuple(map(int, kv[0].split("."))))
        for index, (cc, filename) in enumerate(items):
            close = "  }," if index < len(items) - 1 else "  }"
            lines += ["  {", f"    key: {pb_str(cc)}", f"    value: {pb_str(filename)}", close]
        lines.append("]")
    return "\n".join(lines) + "\n"


def _signature(io: EngineIO, batching: bool) -> list[tuple]:
    return [(t.name, t.mode, t.dtype, tuple(_dims(t.shape, batching)[0])) for t in io.tensors]


def _plan_name(cc: str) -> str:
    return f"model_sm{cc.replace('.', '')}.plan"


def _copy_if_changed(src: Path, dest: Path) -> None:
    if dest.is_file() and dest.stat().st_size == src.stat().st_size and \
            file_sha256(dest) == file_sha256(src):
        return
    atomic_copy(src, dest)


def _write_text(path: Path, text: str) -> None:
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return
    atomic_write(path, text.encode("utf-8"))


def write_model(repo: str | os.PathLike[str], name: str, variants: list[TritonVariant],
                options: TritonOptions | None = None) -> TritonModel:
    """Write (or update) ``<repo>/<name>/`` for one model from one or more engines.

    Args:
        repo: model repository root.
        name: Triton model name (an identifier).
        variants: engines of this model, one per compute capability (several need
            ``compute_capability`` each; a ``hardware_compatible`` one also serves as the
            default for GPUs not listed).
        options: config settings.

    Returns:
        The model directory, config path, engine files written and the max batch size.
    """
    options = options or TritonOptions()
    if not variants:
        raise InputError(f"no engine to write for Triton model {name!r}")
    if options.version < 1:
        raise InputError(f"Triton model version must be >= 1, got {options.version}")
    derived = min(max_batch_size(v.io) for v in variants)
    batch = derived if options.max_batch_size is None else options.max_batch_size
    if batch > derived:
        raise InputError(
            f"max_batch_size {batch} for Triton model {name!r} exceeds what the engines' "
            f"profiles serve ({derived})")
    reference = _signature(variants[0].io, batch > 0)
    for variant in variants[1:]:
        if _signature(variant.io, batch > 0) != reference:
            raise InputError(
                f"the engines of Triton model {name!r} have different inputs or outputs "
                f"({variants[0].label or 'first'} vs {variant.label or 'another'})",
                hint="emit them as separate models")
    files: dict[str, Path] = {}
    cc_filenames: dict[str, str] | None = None
    default = None
    if len(variants) == 1:
        files[DEFAULT_FILENAME] = Path(variants[0].engine_file)
    else:
        cc_filenames = {}
        for variant in variants:
            cc = variant.compute_capability
            if cc is None or not _CC_RE.fullmatch(cc):
                raise InputError(
                    f"engine {variant.label or variant.engine_file} of Triton model {name!r} "
                    "has no compute capability; several engines for one model are told "
                    "apart by it", hint="emit one target at a time (--target)")
            if cc in cc_filenames:
                raise InputError(
                    f"two engines of Triton model {name!r} are for compute capability {cc}",
                    hint="Triton picks engines by compute capability only: emit one of those "
                         "targets at a time (--target)")
            cc_filenames[cc] = _plan_name(cc)
            files[_plan_name(cc)] = Path(variant.engine_file)
            if variant.hardware_compatible and default is None:
                default = _plan_name(cc)
    directory = Path(repo) / name
    version_dir = directory / str(int(options.version))
    for filename, source in files.items():
        _copy_if_changed(source, version_dir / filename)
    # Plans left from an earlier emit with other GPUs would be served by mistake.
    for stale in version_dir.glob("model*.plan"):
        if stale.name not in files:
            stale.unlink()
    config = render_config(name, variants[0].io, batch_size=batch, options=options,
                           cc_filenames=cc_filenames, default_filename=default)
    config_path = directory / CONFIG_FILE
    _write_text(config_path, config)
    return TritonModel(directory, config_path, files, batch)


class TritonLoader:
    """The ``triton`` loader: one Triton model per model and precision,
    ``<dest>/<model>_<precision>/`` (with one plan per compute capability when several
    targets were built)."""

    name = "triton"

    def emit(self, entries: Sequence[Entry], dest: Path,
             options: EmitOptions) -> LoaderOutput:
        """Write one model per (manifest, model, precision); a model name two manifests
        share gets the manifest's name in front."""
        settings = options.settings.get(self.name)
        output = LoaderOutput()
        groups: dict[tuple[str, str, str], list[Entry]] = {}
        for entry in entries:
            manifest, model, precision, _ = entry.engine
            groups.setdefault((manifest, model, precision), []).append(entry)
        names: dict[str, tuple[str, str, str]] = {}
        for group, members in groups.items():
            manifest, model, precision = group
            name = f"{model}_{precision}"
            if name in names and names[name] != group:
                name = f"{name_part(manifest)}_{name}"
            names[name] = group
            _write_members(dest, name, members, settings, output, "triton")
        self._defaults(entries, dest, settings, set(names), output)
        return output

    @staticmethod
    def _defaults(entries: Sequence[Entry], dest: Path, settings: object, taken: set[str],
                  output: LoaderOutput) -> None:
        """``<dest>/<model>/``: the model's default, the engines ``select: fastest`` chose
        (one per target; their compute capabilities tell Triton which to load)."""
        groups: dict[tuple[str, str], list[Entry]] = {}
        for entry in entries:
            if entry.default:
                groups.setdefault((entry.engine.manifest, entry.engine.model), []).append(entry)
        for (manifest, model), members in groups.items():
            name = model if model not in taken else f"{name_part(manifest)}_{model}"
            _write_members(dest, name, members, settings, output, f"triton default model {name}")


def _write_members(dest: Path, name: str, members: Sequence[Entry], settings: object,
                   output: LoaderOutput, what: str) -> None:
    """Write one Triton model ``name`` from ``members`` (one plan per target) and record
    each member as written, or as refused with ``what`` in front of the reason."""
    from trtops.cache.compat import hardware_compatibility

    variants = [TritonVariant(entry.engine_file, entry.io,
                              entry.gpu.get("compute_capability"),
                              hardware_compatibility(entry.meta) == "ampere_plus",
                              label=entry.engine.target)
                for entry in members]
    try:
        written = write_model(dest, name, variants, settings)
    except TrtopsError as exc:
        for entry in members:
            output.refused.append(Refused(
                entry.spec_id, entry.key,
                f"{what}: {exc.message}" + (f" ({exc.hint})" if exc.hint else ""),
                exc.exit_code))
        return
    for entry in members:
        output.written.append(Written(entry.spec_id, entry.key, written.directory))


LOADER = TritonLoader()
