#!/usr/bin/env python3
"""Type-check trtops/trt against the typed TensorRT 10.13 API, on a machine without TensorRT.

    python scripts/typecheck_trt.py [PATH ...]

With no PATH it checks what pyproject.toml's ``[tool.mypy]`` names (trtops/trt). The first run
sets up ``.typecheck/`` (git-ignored): a pinned mypy in ``.typecheck/mypy`` and the
``tensorrt-stubs`` package in ``.typecheck/stubs``, repaired where the generated stubs are not
valid Python. Neither directory is ever put on ``sys.path`` of the project's Python: a
``tensorrt/`` directory there would make ``import tensorrt`` succeed as a namespace package
and break every "TensorRT is not installed" path and skip. mypy reads the stubs through
``MYPYPATH`` only.

The exit status is mypy's (0: every TensorRT attribute and call checked exists in 10.13 with a
compatible signature).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

MYPY = "mypy==2.4.1"
STUBS = "tensorrt-stubs==10.13.0.35.1"

ROOT = Path(__file__).resolve().parent.parent
TYPECHECK_DIR = ROOT / ".typecheck"

# (file under the stubs dir, pattern, replacement, how many times it must match). The counts
# are those of the pinned stubs: a new stubs version that no longer needs a repair fails here
# instead of silently drifting.
_REPAIRS: tuple[tuple[str, str, str, int], ...] = (
    # `in` is a keyword: plugin methods name a parameter `in`, a syntax error.
    ("tensorrt_bindings/tensorrt.pyi", r"(\(self(?:: \w+)?, )in: ", r"\1in_: ", 4),
    # A parameter without a default after ones with defaults, another syntax error.
    ("tensorrt_bindings/tensorrt.pyi", r"channel_axis: int\) -> IScaleLayer", "channel_axis: int = ...) -> IScaleLayer", 1),
    # `capsule` is not a defined name; the function takes the ILogger object.
    ("tensorrt_bindings/tensorrt.pyi", r"logger: capsule", "logger: ILogger", 1),
    # The module-level DataType alias `bool` shadows the builtin in every `-> bool` of the stubs.
    ("tensorrt_bindings/tensorrt.pyi", r"(?m)^bool: DataType.*\n", "", 1),
    ("tensorrt/__init__.pyi", r"(?m)^bool: tensorrt_bindings\.tensorrt\.DataType.*\n", "", 1),
    # The bindings convert any sequence of ints to Dims (pybind11 implicit conversion).
    ("tensorrt_bindings/tensorrt.pyi", r"(\w+): Dims(?=[,)])", r"\1: Dims | typing.Sequence[int]", 18),
)


def repair_stubs(stubs_dir: Path) -> None:
    """Make the pinned generated stubs valid Python and faithful to the bindings' conversions.

    Raises:
        RuntimeError: a repair no longer matches as expected (the stubs changed).
    """
    for relative, pattern, replacement, expected in _REPAIRS:
        path = stubs_dir / relative
        text, count = re.subn(pattern, replacement, path.read_text(encoding="utf-8"))
        if count != expected:
            raise RuntimeError(f"{relative}: {pattern!r} matched {count} times, expected {expected}; update _REPAIRS")
        path.write_text(text, encoding="utf-8")


def _pip_install(target: Path, *requirements: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--target", str(target),
         *requirements],
        check=True,
    )


def ensure_tools(typecheck_dir: Path = TYPECHECK_DIR) -> None:
    """Install the pinned mypy and the repaired stubs into ``typecheck_dir`` unless already there."""
    ready = typecheck_dir / "READY"
    wanted = f"{MYPY} {STUBS}\n"
    if ready.is_file() and ready.read_text() == wanted:
        return
    shutil.rmtree(typecheck_dir, ignore_errors=True)
    _pip_install(typecheck_dir / "mypy", MYPY)
    # The stubs package requires tensorrt itself, which cannot be installed without a GPU
    # toolchain (and must not be): the stubs alone are what the check needs.
    _pip_install(typecheck_dir / "stubs", "--no-deps", STUBS)
    repair_stubs(typecheck_dir / "stubs")
    ready.write_text(wanted)


def run_mypy(paths: list[str], typecheck_dir: Path = TYPECHECK_DIR) -> int:
    """Run the pinned mypy with pyproject.toml's configuration; returns its exit status."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(typecheck_dir / "mypy")
    env["MYPYPATH"] = str(typecheck_dir / "stubs")
    command = [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"), *paths]
    return subprocess.run(command, cwd=ROOT, env=env).returncode


def main(argv: list[str]) -> int:
    ensure_tools()
    return run_mypy(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
