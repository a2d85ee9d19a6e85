"""What an engine's inputs and outputs look like: the contract between the builder (which
reads it from the built engine), the cache (meta.json ``io``), the verifier and the emitters.

dtype names are numpy's (``float32``, ``float16``, ``int32``, ``int64``, ``bool``, ``int8``,
``uint8``, ``bfloat16`` where the runtime supports it). Dynamic dimensions are ``-1``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TensorIO:
    name: str
    mode: str  # "input" | "output"
    dtype: str
    shape: tuple[int, ...]  # -1 for dynamic dims


@dataclass(frozen=True)
class ProfileShapes:
    """min/opt/max of each input in one optimization profile (index = profile index)."""

    inputs: tuple[tuple[str, tuple[int, ...], tuple[int, ...], tuple[int, ...]], ...]

    def get(self, name: str) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]] | None:
        for input_name, lo, opt, hi in self.inputs:
            if input_name == name:
                return lo, opt, hi
        return None


@dataclass(frozen=True)
class EngineIO:
    tensors: tuple[TensorIO, ...]
    profiles: tuple[ProfileShapes, ...]

    @property
    def inputs(self) -> tuple[TensorIO, ...]:
        return tuple(t for t in self.tensors if t.mode == "input")

    @property
    def outputs(self) -> tuple[TensorIO, ...]:
        return tuple(t for t in self.tensors if t.mode == "output")

    def to_json(self) -> dict[str, Any]:
        return {
            "tensors": [
                {"name": t.name, "mode": t.mode, "dtype": t.dtype, "shape": list(t.shape)}
                for t in self.tensors
            ],
            "profiles": [
                {name: {"min": list(lo), "opt": list(opt), "max": list(hi)}
                 for name, lo, opt, hi in p.inputs}
                for p in self.profiles
            ],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "EngineIO":
        tensors = tuple(
            TensorIO(t["name"], t["mode"], t["dtype"], tuple(int(d) for d in t["shape"]))
            for t in data["tensors"]
        )
        profiles = tuple(
            ProfileShapes(tuple(
                (name, tuple(r["min"]), tuple(r["opt"]), tuple(r["max"]))
                for name, r in sorted(profile.items())
            ))
            for profile in data.get("profiles", [])
        )
        return cls(tensors, profiles)
