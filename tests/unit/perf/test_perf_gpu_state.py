"""trtops.perf.gpu_state: nvidia-smi's rows parsed, the CUDA device's row picked, and None
for what cannot be read. A stand-in ``nvidia-smi`` script on PATH plays the tool."""

from __future__ import annotations

import os
import stat

import pytest

from trtops.perf.gpu_state import (
    QUERY_FIELDS,
    gpu_state,
    parse_query,
    pick_row,
    unknown_state,
)

SMI = """\
0, GPU-aaaa1111-0000, NVIDIA H100 80GB HBM3, 550.54.15, 1980, 2619, 41
1, GPU-bbbb2222-0000, NVIDIA H100 80GB HBM3, 550.54.15, 345, 2619, 30
2, GPU-cccc3333-0000, NVIDIA L4, 550.54.15, [N/A], [Not Supported], [N/A]
"""


def test_parse_query_reads_numbers_and_not_available():
    rows = parse_query(SMI + "Unable to determine the device handle for GPU 0000:41:00.0\n")
    assert [row["index"] for row in rows] == [0, 1, 2]
    assert rows[0] == {"index": 0, "uuid": "GPU-aaaa1111-0000", "name": "NVIDIA H100 80GB HBM3",
                       "driver": "550.54.15", "sm_clock_mhz": 1980, "mem_clock_mhz": 2619,
                       "temperature_c": 41}
    assert rows[2]["sm_clock_mhz"] is None and rows[2]["mem_clock_mhz"] is None
    assert rows[2]["temperature_c"] is None and rows[2]["name"] == "NVIDIA L4"


def test_parse_query_accepts_decimal_clocks():
    assert parse_query("0, GPU-x, T4, 535.1, 1590.00, 5000.5, 55\n")[0]["sm_clock_mhz"] == 1590


@pytest.mark.parametrize("env, device, index", [
    (None, 0, 0), (None, 2, 2), ("1", 0, 1), ("2,0", 0, 2), ("2,0", 1, 0),
    ("GPU-bbbb", 0, 1), ("1", 1, None), ("7", 0, None),
])
def test_pick_row_follows_cuda_visible_devices(env, device, index):
    row = pick_row(parse_query(SMI), device, env)
    assert (row["index"] if row else None) == index


@pytest.fixture
def fake_smi(tmp_path, monkeypatch):
    """Put an ``nvidia-smi`` on PATH that prints ``text`` (and records its arguments)."""

    def install(text: str, code: int = 0):
        script = tmp_path / "nvidia-smi"
        script.write_text("#!/bin/sh\n"
                          f"echo \"$@\" > '{tmp_path / 'args'}'\n"
                          f"cat <<'EOF'\n{text}EOF\nexit {code}\n")
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
        monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}")
        return tmp_path / "args"

    return install


def test_gpu_state_runs_nvidia_smi(fake_smi):
    args = fake_smi(SMI)
    state = gpu_state(1, environ={})
    assert state == {"name": "NVIDIA H100 80GB HBM3", "driver": "550.54.15", "sm_clock_mhz": 345,
                     "mem_clock_mhz": 2619, "temperature_c": 30}
    assert args.read_text().split() == [f"--query-gpu={','.join(QUERY_FIELDS)}",
                                        "--format=csv,noheader,nounits"]
    assert gpu_state(0, environ={"CUDA_VISIBLE_DEVICES": "2"})["name"] == "NVIDIA L4"


def test_gpu_state_without_a_usable_nvidia_smi(fake_smi, monkeypatch, tmp_path):
    fake_smi("NVIDIA-SMI has failed\n", code=9)
    assert gpu_state(0, name="NVIDIA H100", environ={}) == unknown_state("NVIDIA H100")
    fake_smi(SMI)
    assert gpu_state(5, name="from CUDA", environ={})["name"] == "from CUDA"
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert gpu_state(0, environ={}) == {"name": "unknown GPU", "driver": None, "sm_clock_mhz": None,
                                        "mem_clock_mhz": None, "temperature_c": None}
