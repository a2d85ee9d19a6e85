"""The state of the GPU a measurement ran on: name, driver, SM and memory clocks,
temperature, read with ``nvidia-smi`` (None for what it cannot tell).

Clocks and temperature explain numbers that moved without the engine changing (a GPU
throttled by heat or held at a low clock), so perf.json keeps them beside the timings.
``nvidia-smi`` numbers GPUs by PCI order; CUDA, and so the device a measurement uses,
follows ``CUDA_VISIBLE_DEVICES``: the row is picked through the one mapping of
:func:`trtops.keys.platform.visible_indices` (UUIDs).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from typing import Any

from trtops.keys.platform import visible_indices

QUERY_FIELDS = ("index", "uuid", "name", "driver_version", "clocks.sm", "clocks.mem", "temperature.gpu")
_TIMEOUT_S = 10


def unknown_state(name: str | None = None) -> dict[str, Any]:
    """The state with nothing known (no nvidia-smi): ``name`` as given, the rest None."""
    return {"name": name or "unknown GPU", "driver": None, "sm_clock_mhz": None,
            "mem_clock_mhz": None, "temperature_c": None}


def _number(text: str) -> int | None:
    """An integer field of nvidia-smi (``1980``, ``1980.00``); None for ``[N/A]``,
    ``[Not Supported]`` and other words."""
    try:
        return int(float(text))
    except ValueError:
        return None


def _text(text: str) -> str | None:
    return None if not text or text.startswith("[") or text in ("N/A", "Not Supported") else text


def parse_query(output: str) -> list[dict[str, Any]]:
    """The rows of ``nvidia-smi --query-gpu=<QUERY_FIELDS> --format=csv,noheader,nounits``.

    Lines that do not have every field are skipped (nvidia-smi prints warnings there when a
    GPU is lost)."""
    rows = []
    for line in output.splitlines():
        fields = [field.strip() for field in line.split(",")]
        if len(fields) != len(QUERY_FIELDS):
            continue
        index = _number(fields[0])
        if index is None:
            continue
        rows.append({
            "index": index,
            "uuid": _text(fields[1]),
            "name": _text(fields[2]),
            "driver": _text(fields[3]),
            "sm_clock_mhz": _number(fields[4]),
            "mem_clock_mhz": _number(fields[5]),
            "temperature_c": _number(fields[6]),
        })
    return rows


def pick_row(rows: list[dict[str, Any]], device: int, env: str | None) -> dict[str, Any] | None:
    """The row of CUDA device ``device`` given ``CUDA_VISIBLE_DEVICES`` (None: unset)."""
    order = visible_indices([(row["index"], row["uuid"] or "") for row in rows], env)
    if not 0 <= device < len(order):
        return None
    by_index = {row["index"]: row for row in rows}
    return by_index.get(order[device])


def gpu_state(device: int = 0, *, name: str | None = None,
              environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``{"name", "driver", "sm_clock_mhz", "mem_clock_mhz", "temperature_c"}`` of CUDA
    device ``device``, now. ``name`` stands in when nvidia-smi cannot tell it. Never
    raises: a machine without nvidia-smi gets None fields."""
    env = os.environ if environ is None else environ
    state = unknown_state(name)
    binary = shutil.which("nvidia-smi")
    if binary is None:
        return state
    try:
        done = subprocess.run(
            [binary, f"--query-gpu={','.join(QUERY_FIELDS)}", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=_TIMEOUT_S, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return state
    if done.returncode != 0:
        return state
    row = pick_row(parse_query(done.stdout), device, env.get("CUDA_VISIBLE_DEVICES"))
    if row is None:
        return state
    for key in ("driver", "sm_clock_mhz", "mem_clock_mhz", "temperature_c"):
        state[key] = row[key]
    state["name"] = row["name"] or state["name"]
    return state


__all__ = ["QUERY_FIELDS", "gpu_state", "parse_query", "pick_row", "unknown_state"]
