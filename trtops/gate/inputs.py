"""Inputs for the accuracy gate: generated (seeded, per profile min/opt/max) or user files.

Generated values default to [0, 1) for floats, [0, 2) for integers and {0, 1} for booleans
(the manifest's ``accuracy.inputs.ranges`` overrides them per input; ``high`` is exclusive
for integers, so ``input_ids: [0, 30522]`` gives valid token ids 0..30521).

User data is an ``.npz`` file (one input set), a directory of ``.npy`` files (one input set,
file stem = input name), or a directory of ``.npz`` files or of sub-directories of ``.npy``
files (one input set each, in name order). Everything is read with ``allow_pickle=False``:
pickles can run code, and a pickled file is refused with an error naming it.
"""

from __future__ import annotations

import math
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from trtops.engine_io import EngineIO, TensorIO
from trtops.errors import InputError
from trtops.names import format_bytes
from trtops.spec import AccuracySpec
from trtops.textsafe import name_list, terminal_safe

POINTS = ("min", "opt", "max")
_DEFAULT_FLOAT_RANGE = (0.0, 1.0)
_DEFAULT_INT_RANGE = (0, 2)


@dataclass(frozen=True)
class InputSet:
    """One feed for both runners: input name -> array, and the profile it belongs to."""

    label: str  # "profile0/min", "profile1/opt=max", "profile0/max#2", "data/sample_003"
    profile: int  # optimization profile index; -1 until user data is matched to the engine
    feeds: dict[str, np.ndarray] = field(compare=False)
    source: str | None = None  # the file user data came from

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {name: tuple(int(d) for d in array.shape) for name, array in self.feeds.items()}


# --------------------------------------------------------------------------- generated


def generate_input_sets(io: EngineIO, accuracy: AccuracySpec) -> list[InputSet]:
    """Random inputs at the min, opt and max shape of every optimization profile.

    Args:
        io: The engine's inputs (names, dtypes, shapes) and profiles.
        accuracy: Seed, per-input value ranges and iterations (input sets per shape).

    Returns:
        Input sets in profile order; within a profile min, opt, max (shape points that are
        identical are merged into one set, labelled e.g. ``profile0/min=opt=max``), each
        repeated ``accuracy.iterations`` times with different values (``#1``, ``#2`` ...).
        Values depend only on the seed, the profile, the point and the iteration.

    Raises:
        InputError: a range names an unknown input, does not fit the input's dtype, or an
            input has dynamic dimensions but no profile.
    """
    inputs = io.inputs
    names = {t.name for t in inputs}
    ranges: dict[str, tuple[float, float]] = {}
    for name, low, high in accuracy.ranges:
        if name not in names:
            raise InputError(
                f"accuracy.inputs.ranges names '{name}', which is not an input of the engine",
                hint=f"inputs are: {name_list(sorted(names), empty='(none)')}",
            )
        ranges[name] = (float(low), float(high))
    iterations = max(1, int(accuracy.iterations))
    seed = int(accuracy.seed) % 2**63

    profiles = io.profiles or ()
    sets: list[InputSet] = []
    if not profiles:
        shapes = {t.name: _static_shape(t, None) for t in inputs}
        points = [("static", shapes)]
        sets.extend(_sets_for_points(inputs, ranges, seed, 0, points, iterations, label_prefix=""))
        return sets

    for index, profile in enumerate(profiles):
        per_point = []
        for point_index, point in enumerate(POINTS):
            shapes = {}
            for tensor in inputs:
                entry = profile.get(tensor.name)
                shapes[tensor.name] = (
                    tuple(int(d) for d in entry[point_index]) if entry is not None
                    else _static_shape(tensor, index)
                )
            per_point.append((point, shapes))
        sets.extend(_sets_for_points(inputs, ranges, seed, index, _merge_points(per_point),
                                     iterations, label_prefix=f"profile{index}/"))
    return sets


def _merge_points(points: list[tuple[str, dict]]) -> list[tuple[str, dict]]:
    merged: list[tuple[list[str], dict]] = []
    for point, shapes in points:
        for names, existing in merged:
            if existing == shapes:
                names.append(point)
                break
        else:
            merged.append(([point], shapes))
    return [("=".join(names), shapes) for names, shapes in merged]


#: Most bytes one generated input set may take (all inputs of one shape point). Beyond it a
#: model's static shape (or a profile's max) is refused before anything is allocated: the
#: check would need several times that (float64 draws, ONNX Runtime, the engine's outputs).
MAX_GENERATED_BYTES = 4 << 30


def check_input_sizes(inputs: Sequence[TensorIO], shapes: dict[str, tuple[int, ...]],
                      where: str, limit: int = MAX_GENERATED_BYTES) -> None:
    """Refuse, before allocating, input shapes too large to generate and check.

    Raises:
        InputError: naming the largest input, its shape and size.
    """
    sizes = {t.name: math.prod(shapes[t.name]) * _numpy_dtype(t).itemsize for t in inputs}
    total = sum(sizes.values())
    if total <= limit:
        return
    name = max(sizes, key=lambda n: sizes[n])
    raise InputError(
        f"the accuracy check's inputs at {where} would take {format_bytes(total)} "
        f"(input {terminal_safe(repr(name))} of shape {list(shapes[name])} alone is "
        f"{format_bytes(sizes[name])}; at most {format_bytes(limit)} are generated)",
        hint="give the model a profile with smaller shapes, check it with your own inputs "
        "(accuracy.data), or turn the check off for it (accuracy: {enabled: false})")


def _sets_for_points(inputs, ranges, seed, profile, points, iterations, label_prefix):
    sets = []
    for point_label, shapes in points:
        check_input_sizes(inputs, shapes, f"{label_prefix}{point_label}")
        point_index = POINTS.index(point_label.split("=")[0]) if point_label != "static" else 0
        for iteration in range(iterations):
            rng = np.random.default_rng(np.random.SeedSequence([seed, profile, point_index, iteration]))
            feeds = {}
            # Sorted so that values do not depend on the order the engine lists its inputs.
            for tensor in sorted(inputs, key=lambda t: t.name):
                feeds[tensor.name] = _generate(rng, tensor, shapes[tensor.name], ranges.get(tensor.name))
            ordered = {t.name: feeds[t.name] for t in inputs}
            label = f"{label_prefix}{point_label}"
            if iterations > 1:
                label += f"#{iteration + 1}"
            sets.append(InputSet(label, profile, ordered))
    return sets


def _static_shape(tensor: TensorIO, profile: int | None) -> tuple[int, ...]:
    if any(d < 0 for d in tensor.shape):
        where = f"profile {profile}" if profile is not None else "any profile"
        raise InputError(
            f"input '{tensor.name}' has dynamic shape {list(tensor.shape)} but {where} gives "
            "no min/opt/max for it",
            hint="add the input to the model's profiles in the manifest",
        )
    return tuple(int(d) for d in tensor.shape)


def _generate(rng: np.random.Generator, tensor: TensorIO, shape: tuple[int, ...],
              value_range: tuple[float, float] | None) -> np.ndarray:
    dtype = _numpy_dtype(tensor)
    if dtype == np.bool_:
        # A range on a boolean input can only narrow {0, 1}.
        low, high = (0, 2) if value_range is None else (max(0, math.ceil(value_range[0])),
                                                         min(2, math.ceil(value_range[1])))
        if low >= high:
            raise _empty_range(tensor, value_range)
        return rng.integers(low, high, size=shape).astype(np.bool_)
    if np.issubdtype(dtype, np.integer):
        if value_range is None:
            low, high = _DEFAULT_INT_RANGE
        else:
            # high is exclusive for integers (schema), so [0, 30522] gives 0..30521.
            low, high = math.ceil(value_range[0]), math.ceil(value_range[1])
        if low >= high:
            raise _empty_range(tensor, value_range)
        info = np.iinfo(dtype)
        if low < info.min or high - 1 > info.max:
            raise InputError(
                f"range [{low}, {high}) for input '{tensor.name}' does not fit its dtype "
                f"{tensor.dtype} ([{info.min}, {info.max}])",
                hint="narrow accuracy.inputs.ranges for this input",
            )
        return rng.integers(low, high, size=shape, dtype=np.int64).astype(dtype)
    low, high = _DEFAULT_FLOAT_RANGE if value_range is None else value_range
    values = rng.uniform(low, high, size=shape)
    if dtype == np.float16 and max(abs(low), abs(high)) > float(np.finfo(np.float16).max):
        raise InputError(
            f"range [{low}, {high}) for input '{tensor.name}' overflows float16",
            hint="narrow accuracy.inputs.ranges for this input",
        )
    return values.astype(dtype)


def _empty_range(tensor: TensorIO, value_range) -> InputError:
    return InputError(
        f"range {list(value_range)} for {tensor.dtype} input '{tensor.name}' contains no "
        "value (high is exclusive for integers)",
        hint="widen accuracy.inputs.ranges for this input",
    )


def _numpy_dtype(tensor: TensorIO) -> np.dtype:
    if tensor.dtype == "bfloat16":
        raise InputError(
            f"input '{tensor.name}' is bfloat16, which NumPy (and so the accuracy check) "
            "cannot feed",
            hint="keep the model's inputs in fp32/fp16 (bf16 precision does not need bf16 "
            "inputs) or set accuracy.enabled: false for this model",
        )
    try:
        return np.dtype(tensor.dtype)
    except TypeError as exc:
        raise InputError(f"input '{tensor.name}' has unsupported dtype {tensor.dtype!r}") from exc


# --------------------------------------------------------------------------- user data


def load_user_inputs(path: str | Path) -> list[InputSet]:
    """Load user inputs without unpickling anything.

    Args:
        path: An ``.npz`` file (one input set), a directory of ``.npy`` files (one set; the
            file stem is the input name), or a directory of ``.npz`` files or of
            sub-directories of ``.npy`` files (one set each, sorted by name).

    Returns:
        Input sets labelled ``data/<name>``, with ``profile=-1``; match them to an engine
        with :func:`match_inputs`.

    Raises:
        InputError: the path is missing or empty, or a file is pickled or not a NumPy file.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"accuracy data {path} does not exist",
                         hint="accuracy.data is relative to the manifest file")
    if path.is_file():
        return [InputSet(f"data/{path.stem}", -1, _load_npz(path), source=str(path))]

    npy = sorted(p for p in path.iterdir() if p.is_file() and p.suffix == ".npy")
    npz = sorted(p for p in path.iterdir() if p.is_file() and p.suffix == ".npz")
    subdirs = sorted(p for p in path.iterdir() if p.is_dir())
    if npy and (npz or subdirs):
        raise InputError(
            f"accuracy data directory {path} mixes .npy files with .npz files or directories",
            hint="use either one set of .npy files, or one .npz file / sub-directory per set",
        )
    if npy:
        return [InputSet(f"data/{path.name}", -1, _load_npy_dir(path, npy), source=str(path))]
    sets = [InputSet(f"data/{p.stem}", -1, _load_npz(p), source=str(p)) for p in npz]
    for sub in subdirs:
        files = sorted(p for p in sub.iterdir() if p.is_file() and p.suffix == ".npy")
        if files:
            sets.append(InputSet(f"data/{sub.name}", -1, _load_npy_dir(sub, files), source=str(sub)))
    if not sets:
        raise InputError(f"accuracy data directory {path} holds no .npy or .npz files",
                         hint="save inputs with numpy.save / numpy.savez")
    return sets


def _pickled(file: Path, detail: str = "") -> InputError:
    return InputError(
        f"{file}{detail} holds pickled (object) data, which trtops refuses to load",
        hint="save plain numeric arrays (numpy.save / numpy.savez with numeric dtypes, "
        "not lists of objects)",
    )


def _check_magic(file: Path, kind: str) -> None:
    # np.load treats anything that is neither .npy nor zip as a pickle; say what it really is.
    try:
        with open(file, "rb") as handle:
            head = handle.read(6)
    except OSError as exc:
        raise InputError(f"{file} cannot be read: {exc}") from exc
    if kind == "npy" and head.startswith(b"\x93NUMPY"):
        return
    if kind == "npz" and head.startswith(b"PK"):
        return
    if head[:1] == b"\x80":  # pickle protocol 2+ opcode PROTO
        raise _pickled(file)
    raise InputError(f"{file} is not a readable .{kind} file",
                     hint="save inputs with numpy.save (.npy) or numpy.savez (.npz)")


def _load_npy(file: Path) -> np.ndarray:
    _check_magic(file, "npy")
    try:
        array = np.load(file, allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc).lower() or "object" in str(exc).lower():
            raise _pickled(file) from exc
        raise InputError(f"{file} is not a readable .npy file: {exc}") from exc
    except OSError as exc:
        raise InputError(f"{file} is not a readable .npy file: {exc}") from exc
    if not isinstance(array, np.ndarray):
        raise InputError(f"{file} is not a single .npy array",
                         hint="use .npz for several arrays")
    return array


def _load_npy_dir(directory: Path, files: list[Path]) -> dict[str, np.ndarray]:
    return {f.stem: _load_npy(f) for f in files}


def _load_npz(file: Path) -> dict[str, np.ndarray]:
    if file.suffix == ".npy":
        raise InputError(f"{file} is a single .npy file",
                         hint="give a directory of .npy files (one per input) or an .npz file")
    _check_magic(file, "npz")
    try:
        archive = np.load(file, allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise _pickled(file) from exc
        raise InputError(f"{file} is not a readable .npz file: {exc}") from exc
    except (OSError, zipfile.BadZipFile) as exc:
        raise InputError(f"{file} is not a readable .npz file: {exc}") from exc
    if isinstance(archive, np.ndarray):
        raise InputError(f"{file} holds a single array, not named inputs",
                         hint="save with numpy.savez(path, input_name=array, ...)")
    feeds = {}
    with archive:
        for name in archive.files:
            try:
                feeds[name] = archive[name]
            except ValueError as exc:
                if "pickle" in str(exc).lower() or "object" in str(exc).lower():
                    raise _pickled(file, f" (array '{name}')") from exc
                raise InputError(f"{file}: array '{name}' cannot be read: {exc}") from exc
    if not feeds:
        raise InputError(f"{file} holds no arrays")
    return feeds


def match_inputs(io: EngineIO, sets: list[InputSet]) -> list[InputSet]:
    """Check user input sets against the engine and pick each one's profile.

    Args:
        io: The engine's inputs and profiles.
        sets: Sets from :func:`load_user_inputs`.

    Returns:
        The sets with ``profile`` set to the first profile whose min/max contain every
        input's shape, arrays ordered like the engine's inputs and cast to its dtypes.

    Raises:
        InputError: names differ from the engine's inputs, a shape fits no profile, or the
            data cannot be cast to the input's dtype without changing its meaning.
    """
    inputs = io.inputs
    names = [t.name for t in inputs]
    matched = []
    for input_set in sets:
        where = input_set.source or input_set.label
        missing = [n for n in names if n not in input_set.feeds]
        extra = [n for n in input_set.feeds if n not in names]
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"missing {name_list(missing)}")
            if extra:
                parts.append(f"unknown {name_list(extra)}")
            raise InputError(f"{where}: inputs do not match the engine ({'; '.join(parts)})",
                             hint=f"the engine's inputs are: {name_list(names)}")
        feeds = {t.name: _cast(where, t, np.asarray(input_set.feeds[t.name])) for t in inputs}
        shapes = {name: tuple(array.shape) for name, array in feeds.items()}
        profile = _profile_for(io, shapes)
        if profile is None:
            raise InputError(
                f"{where}: input shapes {_fmt_shapes(shapes)} fit none of the engine's profiles",
                hint=_describe_profiles(io),
            )
        matched.append(InputSet(input_set.label, profile, feeds, source=input_set.source))
    return matched


def _cast(where: str, tensor: TensorIO, array: np.ndarray) -> np.ndarray:
    dtype = _numpy_dtype(tensor)
    if array.dtype == dtype:
        return array
    if array.dtype == np.object_ or not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise InputError(f"{where}: input '{tensor.name}' has dtype {array.dtype}, expected {tensor.dtype}")
    if np.issubdtype(dtype, np.integer) or dtype == np.bool_:
        if np.issubdtype(array.dtype, np.floating):
            raise InputError(
                f"{where}: input '{tensor.name}' holds {array.dtype} values but the engine "
                f"expects {tensor.dtype}",
                hint="save integer inputs (token ids, indices) with an integer dtype",
            )
        if dtype != np.bool_ and array.size:
            info = np.iinfo(dtype)
            if array.min() < info.min or array.max() > info.max:
                raise InputError(
                    f"{where}: input '{tensor.name}' has values outside {tensor.dtype}",
                )
    return array.astype(dtype)


def _profile_for(io: EngineIO, shapes: dict[str, tuple[int, ...]]) -> int | None:
    static_ok = all(
        _fits_static(t.shape, shapes[t.name]) for t in io.inputs
    )
    if not io.profiles:
        return 0 if static_ok else None
    for index, profile in enumerate(io.profiles):
        ok = True
        for tensor in io.inputs:
            shape = shapes[tensor.name]
            entry = profile.get(tensor.name)
            if entry is None:
                ok = _fits_static(tensor.shape, shape)
            else:
                lo, _opt, hi = entry
                ok = len(shape) == len(lo) and all(
                    a <= d <= b for a, d, b in zip(lo, shape, hi, strict=False))
            if not ok:
                break
        if ok:
            return index
    return None


def _fits_static(expected: tuple[int, ...], shape: tuple[int, ...]) -> bool:
    return len(expected) == len(shape) and all(e < 0 or e == d for e, d in zip(expected, shape, strict=False))


def _fmt_shapes(shapes: dict[str, tuple[int, ...]]) -> str:
    return ", ".join(f"{name}={list(shape)}" for name, shape in shapes.items())


def _describe_profiles(io: EngineIO) -> str:
    if not io.profiles:
        return "the engine is static: " + ", ".join(f"{t.name}={list(t.shape)}" for t in io.inputs)
    parts = []
    for index, profile in enumerate(io.profiles):
        ranges = ", ".join(f"{name} {list(lo)}..{list(hi)}" for name, lo, _opt, hi in profile.inputs)
        parts.append(f"profile {index}: {ranges}")
    return "; ".join(parts)
