"""Tensor and profile descriptions, and the checks of input names, dtypes and shapes
against them (pure Python and numpy: no TensorRT, no GPU)."""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from typing import Any

from .dtypes import _ML_DTYPES, _numpy_dtype
from .errors import (
    InputDTypeError,
    InputShapeError,
    MissingInputError,
    NoProfileError,
    UnknownInputError,
)


def _fmt_shape(shape: Any) -> str:
    return "[" + ", ".join(str(int(d)) for d in shape) + "]"


class TensorSpec:
    """One input or output of the engine: name, ``"input"``/``"output"``, numpy dtype
    name and shape (``-1`` for dynamic dimensions)."""

    __slots__ = ("dtype", "mode", "name", "np_dtype", "shape")

    def __init__(
        self, name: str, mode: str, dtype: str, shape: tuple[int, ...]
    ) -> None:
        self.name = name
        self.mode = mode
        self.dtype = dtype
        self.shape = tuple(int(d) for d in shape)
        self.np_dtype = _numpy_dtype(dtype)

    def describe(self) -> str:
        return f"{self.name!r} {self.dtype} {_fmt_shape(self.shape)}"

    def __repr__(self) -> str:
        return (
            f"TensorSpec({self.name!r}, {self.mode!r}, {self.dtype!r}, {self.shape!r})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TensorSpec):
            return NotImplemented
        return (self.name, self.mode, self.dtype, self.shape) == (
            other.name,
            other.mode,
            other.dtype,
            other.shape,
        )

    __hash__ = None  # type: ignore[assignment]


class IOSpec:
    """The engine's tensors and optimization profiles, and the input checks.

    Pure Python and numpy: usable without TensorRT or a GPU (see :func:`check_inputs`).
    ``profiles[i]`` maps input names to ``(min, opt, max)`` shape tuples.
    """

    def __init__(
        self,
        tensors: list[TensorSpec],
        profiles: list[dict[str, tuple[tuple[int, ...], ...]]],
    ) -> None:
        self.tensors = list(tensors)
        self.inputs = [t for t in self.tensors if t.mode == "input"]
        self.outputs = [t for t in self.tensors if t.mode == "output"]
        self.by_name = {t.name: t for t in self.tensors}
        self.profiles = profiles

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> IOSpec:
        """From the ``io`` form of trtops' metadata (``EngineIO.to_json``)."""
        tensors = [
            TensorSpec(
                str(t["name"]),
                str(t["mode"]),
                str(t["dtype"]),
                tuple(int(d) for d in t["shape"]),
            )
            for t in data.get("tensors", ())
        ]
        profiles = []
        for profile in data.get("profiles", ()):
            profiles.append(
                {
                    str(name): (
                        tuple(int(d) for d in r["min"]),
                        tuple(int(d) for d in r["opt"]),
                        tuple(int(d) for d in r["max"]),
                    )
                    for name, r in profile.items()
                }
            )
        return cls(tensors, profiles)

    def to_json(self) -> dict[str, Any]:
        return {
            "tensors": [
                {
                    "name": t.name,
                    "mode": t.mode,
                    "dtype": t.dtype,
                    "shape": list(t.shape),
                }
                for t in self.tensors
            ],
            "profiles": [
                {
                    name: {"min": list(r[0]), "opt": list(r[1]), "max": list(r[2])}
                    for name, r in profile.items()
                }
                for profile in self.profiles
            ],
        }

    def differences(self, other: IOSpec) -> list[str]:
        """What differs between two descriptions of an engine (empty: the same)."""
        problems = []
        mine = {t.name: t for t in self.tensors}
        theirs = {t.name: t for t in other.tensors}
        for name in sorted(set(mine) | set(theirs)):
            a, b = mine.get(name), theirs.get(name)
            if a is None or b is None:
                problems.append(f"tensor {name!r} is only in one of them")
            elif a != b:
                problems.append(
                    f"{a.describe()} ({a.mode}) vs {b.describe()} ({b.mode})"
                )
        if self.profiles and other.profiles:
            # One side may list fixed-shape inputs too; compare the inputs both list.
            same = len(self.profiles) == len(other.profiles) and all(
                a[name] == b[name]
                for a, b in zip(self.profiles, other.profiles)
                for name in set(a) & set(b)
            )
            if not same:
                problems.append("the optimization profiles differ")
        return problems

    # ----------------------------------------------------------------- checks

    def check_names(self, names: Any) -> None:
        """Raise UnknownInputError / MissingInputError for wrong or missing names."""
        given = list(names)
        expected = [t.name for t in self.inputs]
        unknown = [
            n for n in given if n not in self.by_name or self.by_name[n].mode != "input"
        ]
        if unknown:
            listing = ", ".join(t.describe() for t in self.inputs) or "(none)"
            parts = []
            for name in unknown:
                text = repr(name)
                if name in self.by_name:
                    text += " (an output)"
                else:
                    close = difflib.get_close_matches(str(name), expected, n=1)
                    if close:
                        text += f" (did you mean {close[0]!r}?)"
                parts.append(text)
            noun = "input" if len(unknown) == 1 else "inputs"
            raise UnknownInputError(
                f"unknown {noun} {', '.join(parts)}; the engine's inputs are: {listing}",
                name=unknown[0],
            )
        missing = [t for t in self.inputs if t.name not in given]
        if missing:
            noun = "input" if len(missing) == 1 else "inputs"
            raise MissingInputError(
                f"missing {noun} {', '.join(t.describe() for t in missing)}",
                name=missing[0].name,
            )

    def check_tensor(
        self, spec: TensorSpec, dtype: str, shape: tuple[int, ...]
    ) -> None:
        """Raise InputDTypeError / InputShapeError when one input does not fit ``spec``."""
        if dtype != spec.dtype:
            hint = (
                f"; convert it with .astype(numpy.{spec.dtype})"
                if spec.np_dtype is not None and spec.dtype not in _ML_DTYPES
                else ""
            )
            raise InputDTypeError(
                f"input {spec.name!r} has dtype {dtype}, the engine expects {spec.dtype}{hint}",
                name=spec.name,
            )
        if len(shape) != len(spec.shape):
            raise InputShapeError(
                f"input {spec.name!r} has rank {len(shape)} (shape {_fmt_shape(shape)}), the "
                f"engine expects rank {len(spec.shape)}: {_fmt_shape(spec.shape)} "
                "(-1 = any size within the profiles)",
                name=spec.name,
            )
        for axis, (got, want) in enumerate(zip(shape, spec.shape)):
            if want >= 0 and got != want:
                raise InputShapeError(
                    f"input {spec.name!r} has shape {_fmt_shape(shape)}: axis {axis} must be "
                    f"{want} (engine shape {_fmt_shape(spec.shape)})",
                    name=spec.name,
                )

    def select_profile(self, shapes: Mapping[str, tuple[int, ...]]) -> int:
        """The optimization profile for these input shapes: among the profiles whose
        min/max hold every shape, the one closest to its opt shapes (lowest index on ties).
        Raises NoProfileError when none fits."""
        if not self.profiles:
            return 0
        fitting = []
        reasons = []
        for index, profile in enumerate(self.profiles):
            problems = []
            cost = 0.0
            for name, shape in shapes.items():
                ranges = profile.get(name)
                if ranges is None:
                    continue
                lo, opt, hi = ranges
                if len(lo) != len(shape):
                    problems.append(f"{name!r} needs rank {len(lo)}")
                    continue
                for axis in range(len(shape)):
                    size = shape[axis]
                    if not lo[axis] <= size <= hi[axis]:
                        problems.append(
                            f"{name!r} axis {axis} is {size}, the profile allows "
                            f"{lo[axis]}..{hi[axis]}"
                        )
                    else:
                        cost += abs(math.log((size + 1.0) / (opt[axis] + 1.0)))
            if problems:
                reasons.append(f"profile {index}: " + "; ".join(problems))
            else:
                fitting.append((cost, index))
        if not fitting:
            given = ", ".join(f"{n!r} {_fmt_shape(s)}" for n, s in shapes.items())
            raise NoProfileError(
                f"no optimization profile of the engine accepts the input shapes {given}: "
                + " | ".join(reasons),
                name=next(iter(shapes), None),
            )
        return min(fitting)[1]

    def check(self, described: Mapping[str, tuple[str, tuple[int, ...]]]) -> int:
        """Check inputs given as ``{name: (dtype name, shape)}``; return the profile index."""
        self.check_names(described)
        for spec in self.inputs:
            dtype, shape = described[spec.name]
            self.check_tensor(spec, dtype, tuple(shape))
        return self.select_profile(
            {n: tuple(described[n][1]) for n in (t.name for t in self.inputs)}
        )

    def describe(self) -> str:
        lines = [f"  input  {t.describe()}" for t in self.inputs]
        lines += [f"  output {t.describe()}" for t in self.outputs]
        for index, profile in enumerate(self.profiles):
            for name, (lo, opt, hi) in profile.items():
                lines.append(
                    f"  profile {index}: {name!r} min {_fmt_shape(lo)} "
                    f"opt {_fmt_shape(opt)} max {_fmt_shape(hi)}"
                )
        return "\n".join(lines)
