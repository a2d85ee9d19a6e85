"""Semantic checks after schema validation, each problem pointing at its exact line.

Cheap checks (names, targets, tolerances, paths staying inside the manifest's directory)
always run. With ``check_models`` the checks that read files run as well: sources and data
files exist, and the ONNX graph (read without its external weights) agrees with the
profiles and precisions. ``onnx`` is imported only here, inside functions.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from trtops.cache.layout import check_segment
from trtops.capabilities import quantization_problem
from trtops.errors import InputError, Problem, SourceLocation
from trtops.manifest.check_keep import check_keep_graph, check_keep_precisions
from trtops.manifest.check_performance import check_performance
from trtops.manifest.check_tensorrt import (
    bound_inputs,
    check_constants,
    check_parser,
    check_shared_dims,
)
from trtops.manifest.expand import build_value
from trtops.manifest.load import LoadedManifest, format_field
from trtops.manifest.models import ModelSpec, PathSource, UrlSource
from trtops.onnx_facts import Dim, GraphError, GraphInfo, read_graph, read_ops
from trtops.suggest import did_you_mean
from trtops.textsafe import name_list

ALLOW_OUTSIDE_ENV = "TRTOPS_ALLOW_OUTSIDE_SOURCES"


# --------------------------------------------------------------------------- helpers


def _problem(lm: LoadedManifest, path: tuple[Any, ...], message: str, hint: str | None = None,
             *, value: bool = False) -> Problem:
    return Problem(lm.location(*path, value=value), format_field(path), message, hint)


def _shown(text: str) -> str:
    shown = repr(text)
    return shown if len(shown) <= 80 else shown[:60] + "...'"


def outside_allowed() -> bool:
    """Whether paths outside the manifest's directory are allowed (env opt-in)."""
    return os.environ.get(ALLOW_OUTSIDE_ENV, "") == "1"


def _within(path: str, base: str) -> bool:
    return path == base or path.startswith(base.rstrip(os.sep) + os.sep)


def check_path(lm: LoadedManifest, relative: str, field_path: tuple[Any, ...],
               what: str) -> tuple[Path, list[Problem]]:
    """Resolve a manifest path against the manifest's directory and refuse escapes.

    Returns:
        (the path, as the manifest directory joined with ``relative``; problems)
    """
    base = lm.path.parent
    candidate = base / relative
    if outside_allowed():
        return candidate, []
    hint = (f"keep {what} inside the manifest's directory ({base or '.'}), or set "
            f"{ALLOW_OUTSIDE_ENV}=1 to allow paths outside it")
    if os.path.isabs(relative) or relative.startswith("~"):
        return candidate, [_problem(lm, field_path, f"absolute path {relative!r} is not allowed",
                                    hint, value=True)]
    normalized = os.path.normpath(os.path.abspath(candidate))
    if not _within(normalized, os.path.abspath(base)):
        return candidate, [_problem(
            lm, field_path, f"path {relative!r} leads outside the manifest's directory", hint,
            value=True)]
    if os.path.lexists(candidate):
        real = os.path.realpath(candidate)
        if not _within(real, os.path.realpath(base)):
            return candidate, [_problem(
                lm, field_path,
                f"{relative!r} is a symlink (or inside one) pointing outside the manifest's "
                f"directory, to {real}", hint, value=True)]
    return candidate, []


# --------------------------------------------------------------------------- ONNX graphs
# (read by trtops.onnx_facts.read_graph: structure only, memoized)


def _show(dims: tuple[Dim, ...] | None) -> str:
    if dims is None:
        return "[unknown rank]"
    return "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"


# --------------------------------------------------------------------------- per model


def _check_graph(lm: LoadedManifest, index: int, model: ModelSpec, graph: GraphInfo) -> list[Problem]:
    problems: list[Problem] = []
    at = ("models", index)
    names = sorted(graph.inputs)
    for p_index, profile in enumerate(model.profiles):
        for name, shape_range in profile.items():
            where = at + ("profiles", p_index, name)
            if name not in graph.inputs:
                problems.append(_problem(
                    lm, where, f"the model has no input {name!r}{did_you_mean(name, names)}",
                    f"inputs of the model: {name_list(names)}"))
                continue
            dims = graph.inputs[name]
            if dims is None:
                continue
            if len(shape_range.min) != len(dims):
                problems.append(_problem(
                    lm, where + ("min",),
                    f"rank {len(shape_range.min)} does not match the model's input {name!r} "
                    f"of rank {len(dims)} {_show(dims)}"))
                continue
            for axis, dim in enumerate(dims):
                if not isinstance(dim, int):
                    continue
                for which in ("min", "opt", "max"):
                    given = getattr(shape_range, which)[axis]
                    if given != dim:
                        problems.append(_problem(
                            lm, where + (which, axis),
                            f"axis {axis} of input {name!r} is fixed at {dim} in the model "
                            f"{_show(dims)}, but {which} gives {given}",
                            f"use {dim} on this axis in min, opt and max", value=True))
                        break
    bound = bound_inputs(lm, model)  # bound to constants: not engine inputs
    dynamic = {name: dims for name, dims in graph.dynamic_inputs().items() if name not in bound}
    covered = set(model.profiles[0]) if model.profiles else set()
    missing = [name for name in sorted(dynamic) if name not in covered]
    if missing:
        shapes = name_list(f"{n!r} {_show(dynamic[n])}" for n in missing)
        if model.profiles:
            problems.append(_problem(
                lm, at + ("profiles",),
                f"dynamic input{'s' if len(missing) > 1 else ''} {shapes} "
                f"{'are' if len(missing) > 1 else 'is'} not covered by the profiles",
                "give min/opt/max for every input with a symbolic or unknown dimension"))
        else:
            problems.append(_problem(
                lm, at,
                f"model {model.name!r} has dynamic input{'s' if len(missing) > 1 else ''} "
                f"{shapes} but no profiles",
                f"add profiles: - {{{missing[0]}: {{min: [...], opt: [...], max: [...]}}}}"))
    # What every TensorRT release refuses (the capability table); release- and GPU-specific
    # refusals come from `trtops plan`, which knows the platform.
    strongly_typed = bool(build_value(lm.manifest, model, "strongly_typed"))
    for p_index, precision in enumerate(model.precisions):
        problem = quantization_problem(precision, model_has_qdq=graph.has_qdq,
                                       has_calibration=model.calibration is not None,
                                       strongly_typed=strongly_typed)
        if problem:
            problems.append(_problem(lm, at + ("precisions", p_index), problem, value=True))
    ranges = model.accuracy.inputs.ranges if model.accuracy.inputs is not None else {}
    for name in ranges:
        if name not in graph.inputs:
            problems.append(_problem(
                lm, at + ("accuracy", "inputs", "ranges", name),
                f"the model has no input {name!r}{did_you_mean(name, names)}",
                f"inputs of the model: {name_list(names)}"))
    outputs = list(graph.outputs)
    for precision, tolerance in model.accuracy.tolerances.items():
        for name in tolerance.outputs:
            if name not in outputs:
                problems.append(_problem(
                    lm, at + ("accuracy", "tolerances", precision, "outputs", name),
                    f"the model has no output {name!r}{did_you_mean(name, outputs)}",
                    f"outputs of the model: {name_list(outputs)}"))
    return problems


def _check_external_data(lm: LoadedManifest, where: tuple[Any, ...], model_path: Path,
                         graph: GraphInfo) -> list[Problem]:
    problems: list[Problem] = []
    base = os.path.realpath(model_path.parent)
    for location in graph.external_data:
        target = os.path.realpath(os.path.join(base, location))
        if os.path.isabs(location) or not _within(target, base):
            problems.append(_problem(
                lm, where, f"the model's external weights {location!r} lie outside its directory",
                "re-save the model with onnx.save(..., save_as_external_data=True, "
                "location='<name>.data')", value=True))
        elif not os.path.isfile(target):
            problems.append(_problem(
                lm, where, f"the model's external weights file {location!r} is missing "
                f"(expected next to {model_path.name})",
                "copy the .data file that belongs to the model next to it", value=True))
    return problems


def _npz_names(path: Path) -> set[str] | None:
    try:
        with zipfile.ZipFile(path) as archive:
            return {n[:-4] for n in archive.namelist() if n.endswith(".npy")}
    except (zipfile.BadZipFile, OSError):
        return None


def _data_files(path: Path) -> tuple[list[Path], list[list[Path]]]:
    """(.npz files, groups of .npy files) of data given as a file or a directory: a
    directory holds one set of .npy files, or .npz files and sub-directories of .npy files
    (one set each; see :func:`trtops.gate.inputs.load_user_inputs`)."""
    if not path.is_dir():
        return [path], []
    entries = sorted(path.iterdir())
    npy = [p for p in entries if p.is_file() and p.suffix == ".npy"]
    if npy:
        return [], [npy]
    npz = [p for p in entries if p.is_file() and p.suffix == ".npz"]
    groups = [[q for q in sorted(p.iterdir()) if q.is_file() and q.suffix == ".npy"]
              for p in entries if p.is_dir()]
    return npz, [g for g in groups if g]


def _array_names(path: Path) -> set[str] | None:
    """Input names every set of an .npz file or a data directory holds; None if unreadable."""
    npz, groups = _data_files(path)
    sets = [{p.stem for p in group} for group in groups]
    for file in npz:
        names = _npz_names(file)
        if names is None:
            return None
        sets.append(names)
    return set.intersection(*sets) if sets else set()


def _holds_objects(handle: Any) -> bool:
    """Whether an open .npy stream declares an object dtype (its data would be a pickle).
    Reads only the header; an unreadable header counts as objects (refused)."""
    import ast

    import numpy as np

    head = handle.read(8)
    if len(head) < 8 or head[:6] != b"\x93NUMPY":
        return True
    size_bytes = 2 if head[6] == 1 else 4
    length = int.from_bytes(handle.read(size_bytes), "little")
    if length > 1 << 16:
        return True
    try:
        header = ast.literal_eval(handle.read(length).decode("latin1" if head[6] < 3 else "utf-8"))
        return bool(np.lib.format.descr_to_dtype(header["descr"]).hasobject)
    except Exception:  # noqa: BLE001 - any malformed header is refused, never unpickled
        return True


def _pickled_arrays(path: Path) -> list[str]:
    """Names of the arrays of an .npz file or .npy directory that hold pickled objects
    (numpy would need allow_pickle=True, i.e. run code from the file, to read them)."""
    found: list[str] = []
    npz, groups = _data_files(path)
    for group in groups:
        for file in group:
            with open(file, "rb") as handle:
                if _holds_objects(handle):
                    found.append(file.stem)
    for file in npz:
        try:
            with zipfile.ZipFile(file) as archive:
                for name in archive.namelist():
                    if name.endswith(".npy"):
                        with archive.open(name) as handle:
                            if _holds_objects(handle):
                                found.append(name[:-4])
        except (zipfile.BadZipFile, OSError):
            pass  # reported as unreadable by the caller
    return found


def _check_data(lm: LoadedManifest, where: tuple[Any, ...], relative: str, what: str,
                graph: GraphInfo | None, check_files: bool) -> list[Problem]:
    path, problems = check_path(lm, relative, where, what)
    if problems or not check_files:
        return problems
    if not path.exists():
        return [_problem(lm, where, f"{what} {str(path)!r} not found",
                         "the path is relative to the manifest file", value=True)]
    if path.is_file() and path.suffix != ".npz":
        return [_problem(lm, where, f"{what} must be an .npz file or a directory of .npy files",
                         value=True)]
    names = _array_names(path)
    if names is None:
        return [_problem(lm, where, f"{what} {relative!r} is not a readable .npz file", value=True)]
    if not names:
        return [_problem(lm, where, f"{what} {relative!r} holds no arrays", value=True)]
    pickled = _pickled_arrays(path)
    if pickled:
        return [_problem(
            lm, where, f"{what} {relative!r} holds pickled (object) arrays "
            f"({', '.join(pickled[:5])}), which trtops refuses to load",
            "save plain numeric arrays (numpy.savez with numeric dtypes)", value=True)]
    if graph is not None:
        missing = sorted(set(graph.inputs) - names)
        if missing:
            return [_problem(
                lm, where, f"{what} {relative!r} has no array for input(s) {name_list(missing)}",
                f"name one array per model input: {name_list(sorted(graph.inputs))}", value=True)]
    return []


def _check_model(lm: LoadedManifest, index: int, model: ModelSpec, *, check_models: bool,
                 cache_dir: Path) -> list[Problem]:
    problems: list[Problem] = []
    at = ("models", index)
    targets = sorted(lm.manifest.targets)
    for t_index, target in enumerate(model.targets or ()):
        if target not in lm.manifest.targets:
            problems.append(_problem(
                lm, at + ("targets", t_index),
                f"unknown target {target!r}{did_you_mean(target, targets)}",
                f"targets defined in this file: {', '.join(targets)}", value=True))
    for precision in model.accuracy.tolerances:
        if precision not in model.precisions:
            problems.append(_problem(
                lm, at + ("accuracy", "tolerances", precision),
                f"tolerances for {precision!r}, which is not built (precisions: "
                f"{', '.join(model.precisions)})",
                f"add {precision} to precisions or remove these tolerances"))
    problems.extend(check_performance(lm, index, model))
    problems.extend(check_keep_precisions(lm, index, model))

    graph: GraphInfo | None = None
    source = model.source
    model_path: Path | None = None
    if isinstance(source, PathSource):
        where = at + ("source", "path") if lm.written(*at, "source", "path") else at + ("source",)
        model_path, found = check_path(lm, source.path, where, "model sources")
        problems.extend(found)
        if found:
            model_path = None
        elif check_models and not model_path.is_file():
            problems.append(_problem(
                lm, where,
                f"model file {str(model_path)!r} " + ("is not a file" if model_path.exists() else "not found"),
                "the path is relative to the manifest file", value=True))
            model_path = None
    elif isinstance(source, UrlSource):
        from trtops.sources import cached_source

        where = at + ("source", "url")
        # Not downloaded yet, or a file there that is not the declared one (apply replaces
        # it): nothing to check, and validation must not touch the network.
        model_path = cached_source(source, cache_dir) if check_models else None
    if check_models and model_path is not None:
        try:
            graph = read_graph(model_path)
        except (GraphError, OSError) as exc:
            problems.append(_problem(lm, where, f"{model_path}: {exc}", value=True))
        else:
            problems.extend(_check_external_data(lm, where, model_path, graph))
            problems.extend(_check_graph(lm, index, model, graph))
            problems.extend(check_shared_dims(lm, index, model, graph))
            problems.extend(check_constants(lm, index, model, graph))
            problems.extend(check_keep_graph(lm, index, model, graph))
            try:
                ops = read_ops(model_path)
            except (GraphError, OSError):
                pass  # reported above
            else:
                problems.extend(check_parser(lm, index, model, ops))

    if model.calibration is not None:
        problems.extend(_check_data(lm, at + ("calibration", "data"), model.calibration.data,
                                    "calibration data", graph, check_models))
    if model.accuracy.data is not None:
        problems.extend(_check_data(lm, at + ("accuracy", "data"), model.accuracy.data,
                                    "accuracy data", graph, check_models))
    return problems


# --------------------------------------------------------------------------- entry points


def check_manifest(lm: LoadedManifest, *, check_models: bool = True,
                   cache_dir: str | os.PathLike[str] | None = None) -> list[Problem]:
    """Semantic checks of one schema-valid manifest.

    Args:
        lm: the loaded manifest.
        check_models: also run checks that read model and data files.
        cache_dir: where url sources are cached (default ``cache``).

    Returns:
        Problems, in file order.
    """
    cache = Path(cache_dir) if cache_dir is not None else Path("cache")
    problems: list[Problem] = []
    first: dict[str, int] = {}
    for index, model in enumerate(lm.manifest.models):
        if model.name in first:
            line = lm.location("models", first[model.name], "name").line
            problems.append(_problem(
                lm, ("models", index, "name"),
                f"model name {model.name!r} is already used on line {line}",
                "model names must be unique across all manifests", value=True))
        else:
            first[model.name] = index
        problems.extend(_check_model(lm, index, model, check_models=check_models, cache_dir=cache))
    return problems


def check_across(loaded: Sequence[LoadedManifest]) -> list[Problem]:
    """Checks between manifest files: model names and manifest names are unique.

    Returns:
        One problem per later duplicate, naming the first place.
    """
    problems: list[Problem] = []
    models: dict[str, tuple[LoadedManifest, SourceLocation]] = {}
    stems: dict[str, LoadedManifest] = {}
    for lm in loaded:
        try:
            check_segment(lm.name, "manifest name")
        except InputError:
            problems.append(Problem(
                SourceLocation(str(lm.path), 1, 1), "",
                f"the file name gives the manifest name {_shown(lm.name)}, which cannot name "
                "engines in the cache (refs/<manifest>/...)",
                "rename the file: letters, digits and '_', '.', '-', '+', starting with a "
                "letter or digit, e.g. vision.yaml"))
            continue
        if lm.name in stems:
            problems.append(Problem(
                SourceLocation(str(lm.path), 1, 1), "",
                f"manifest name {lm.name!r} is also the name of {stems[lm.name].path}; "
                "their engines would share refs in the cache",
                "rename one of the files (the file stem names the manifest)"))
        else:
            stems[lm.name] = lm
        seen_here: set[str] = set()
        for index, model in enumerate(lm.manifest.models):
            if model.name in seen_here:
                continue  # reported by check_manifest
            seen_here.add(model.name)
            location = lm.location("models", index, "name", value=True)
            if model.name in models and models[model.name][0] is not lm:
                other = models[model.name][1]
                problems.append(Problem(
                    location, format_field(("models", index, "name")),
                    f"model name {model.name!r} is already used in {other}",
                    "model names must be unique across all manifests"))
            else:
                models.setdefault(model.name, (lm, location))
    return problems
