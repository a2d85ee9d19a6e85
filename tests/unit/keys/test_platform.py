"""Platform description: detection without importing TensorRT, files, flags."""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from trtops.commands.args import add_platform_arguments
from trtops.errors import InputError
from trtops.keys import platform as platform_module
from trtops.keys.platform import (
    GpuInfo,
    Platform,
    detect_platform,
    detect_tensorrt,
    gpus_from_nvml,
    load_platform_file,
    platform_from_args,
    visible_indices,
)

H100 = GpuInfo(0, "NVIDIA H100 80GB HBM3", "9.0", 85 << 30, 132, "GPU-1111")


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_platform_arguments(parser)
    return parser.parse_args(list(argv))


# --------------------------------------------------------------------------- JSON


def test_json_round_trip():
    platform = Platform("10.13.3.9", (H100, GpuInfo(1, "NVIDIA L4", "8.9")), "550.54.15", "12.4", "tensorrt-cu12")
    again = Platform.from_json(json.loads(json.dumps(platform.to_json())), source="detected")
    assert again == platform


def test_digest_depends_only_on_what_changes_engines():
    base = Platform("10.13.3.9", (H100,), "550.54.15", "12.4")
    same = Platform("10.13.3.9", (GpuInfo(0, H100.name, "9.0", 1, 2, "GPU-2222"),), "560.1", "12.6",
                    source="file")
    assert base.digest() == same.digest()
    assert base.digest() != Platform("10.14.1.48", (H100,)).digest()
    assert base.digest() != Platform("10.13.3.9", (GpuInfo(0, "NVIDIA L4", "8.9"),)).digest()
    assert base.digest() != Platform("10.13.3.9", ()).digest()


def test_describe():
    assert Platform(None).describe() == "no GPU, TensorRT not installed"
    two = Platform("8.6.0", (H100, GpuInfo(1, H100.name, "9.0")))
    assert two.describe() == "NVIDIA H100 80GB HBM3 (cc 9.0) x2, TensorRT 8.6.0"


@pytest.mark.parametrize(
    "data, message",
    [
        ([], "JSON object"),
        ({"format": "something-else"}, "not a platform file"),
        ({"tensorrt": "ten"}, "not a TensorRT version"),
        ({"tensorrt": "10.1", "gpus": [{"name": "X"}]}, "compute_capability"),
        ({"tensorrt": "10.1", "gpus": [{"compute_capability": "8.9"}]}, "no 'name'"),
        ({"tensorrt": "10.1", "gpus": {"name": "X"}}, "must be a list"),
    ],
)
def test_bad_platform_data(data, message):
    with pytest.raises(InputError, match=message):
        Platform.from_json(data)


def test_platform_file(tmp_path):
    path = tmp_path / "l4.json"
    path.write_text(json.dumps({"tensorrt": "10.13.3.9", "gpus": [{"name": "NVIDIA L4", "compute_capability": 8.9}]}))
    platform = load_platform_file(path)
    assert platform.gpus[0].compute_capability == "8.9"
    assert platform.source == "file"
    with pytest.raises(InputError, match="not found"):
        load_platform_file(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(InputError, match="not valid JSON"):
        load_platform_file(tmp_path / "bad.json")


# --------------------------------------------------------------------------- flags


def test_flags_describe_a_whole_platform():
    platform = platform_from_args(parse("--tensorrt", "10.13.3.9", "--gpu", "NVIDIA L4",
                                        "--compute-capability", "8.9"))
    assert platform == Platform("10.13.3.9", (GpuInfo(0, "NVIDIA L4", "8.9"),), source="flags")


def test_flags_override_a_platform_file(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps(Platform("10.13.3.9", (H100,)).to_json()))
    platform = platform_from_args(parse("--platform", str(path), "--tensorrt", "10.14.1.48"))
    assert platform.tensorrt == "10.14.1.48"
    assert platform.gpus == (H100,)


def test_tensorrt_flag_alone_keeps_detected_gpus():
    platform = platform_from_args(parse("--tensorrt", "8.6.0"))
    assert platform.tensorrt == "8.6.0"
    assert platform.gpus == detect_platform().gpus


@pytest.mark.parametrize(
    "argv, message",
    [
        (("--gpu", "NVIDIA L4"), "go together"),
        (("--compute-capability", "8.9"), "go together"),
        (("--gpu", "NVIDIA L4", "--compute-capability", "89"), "major.minor"),
        (("--tensorrt", "latest"), "not a TensorRT version"),
        (("--tensorrt", "10.0rc1"), "not a TensorRT version"),
    ],
)
def test_bad_flags(argv, message):
    with pytest.raises(InputError, match=message):
        platform_from_args(parse(*argv))


# --------------------------------------------------------------------------- detection


def test_detect_here_has_no_tensorrt_and_no_gpu():
    # This machine (and CI) has neither; the lab checks the positive case for real.
    platform = detect_platform(refresh=True)
    assert platform.tensorrt is None
    assert platform.gpus == ()
    assert any("tensorrt" in note for note in platform.notes)
    assert any(note.startswith("no GPU") for note in platform.notes)


def test_detection_never_imports_tensorrt():
    code = ("import sys, trtops.keys.platform as p; p.detect_platform(sm_count=True); "
            "print([m for m in ('tensorrt', 'tensorrt_bindings', 'pycuda') if m in sys.modules])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def _site(tmp_path: Path, monkeypatch) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    return site


def _dist_info(site: Path, name: str, version: str, files: list[str]) -> None:
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "RECORD").write_text("".join(f"{f},,\n" for f in files))


def test_tensorrt_version_from_the_distribution_that_installs_the_module(tmp_path, monkeypatch):
    site = _site(tmp_path, monkeypatch)
    (site / "tensorrt").mkdir()
    (site / "tensorrt" / "__init__.py").write_text("raise ImportError('must not be imported')\n")
    _dist_info(site, "tensorrt-cu12-libs", "10.13.3.9", ["tensorrt_libs/__init__.py"])
    _dist_info(site, "tensorrt-cu12", "10.13.3.9", ["tensorrt/__init__.py"])
    assert detect_tensorrt() == ("10.13.3.9", "tensorrt-cu12", None)


def test_tensorrt_version_through_the_bindings_wrapper(tmp_path, monkeypatch):
    # pip's TensorRT 10 layout: tensorrt/__init__.py re-exports tensorrt_bindings.
    site = _site(tmp_path, monkeypatch)
    (site / "tensorrt").mkdir()
    (site / "tensorrt" / "__init__.py").write_text("from tensorrt_bindings import *\n")
    (site / "tensorrt_bindings").mkdir()
    (site / "tensorrt_bindings" / "__init__.py").write_text('from .tensorrt import *\n__version__ = "10.7.0"\n')
    assert detect_tensorrt() == ("10.7.0", None, None)


def test_tensorrt_version_from_source(tmp_path, monkeypatch):
    site = _site(tmp_path, monkeypatch)
    (site / "tensorrt").mkdir()
    (site / "tensorrt" / "__init__.py").write_text('import os\n__version__ = "8.6.0"\n')
    assert detect_tensorrt() == ("8.6.0", None, None)


def test_tensorrt_module_without_version(tmp_path, monkeypatch):
    site = _site(tmp_path, monkeypatch)
    (site / "tensorrt").mkdir()
    (site / "tensorrt" / "__init__.py").write_text("pass\n")
    version, distribution, note = detect_tensorrt()
    assert version is None and distribution is None and "not its version" in note


class FakeNvml:
    """Stands in for NVML, which has no library on a machine without an NVIDIA driver."""

    def __init__(self, gpus, fail_memory=False):
        self.gpus = gpus
        self.fail_memory = fail_memory
        self.state = "new"

    def init(self):
        self.state = "open"

    def shutdown(self):
        self.state = "closed"

    def device_count(self):
        return len(self.gpus)

    def handle(self, index):
        return index

    def name(self, handle):
        return self.gpus[handle][0]

    def compute_capability(self, handle):
        return self.gpus[handle][1]

    def memory_total(self, handle):
        if self.fail_memory:
            raise RuntimeError("not supported")
        return 80 << 30

    def uuid(self, handle):
        return f"GPU-{handle}{handle}{handle}-uuid"

    def driver_version(self):
        return "550.54.15"

    def cuda_driver_version(self):
        return 12040


def test_gpus_from_nvml():
    api = FakeNvml([("NVIDIA H100 80GB HBM3", "9.0"), ("NVIDIA L4", "8.9")], fail_memory=True)
    gpus, driver, cuda = gpus_from_nvml(api, None)
    assert [(g.index, g.name, g.compute_capability, g.memory_bytes) for g in gpus] == [
        (0, "NVIDIA H100 80GB HBM3", "9.0", None), (1, "NVIDIA L4", "8.9", None)]
    assert (driver, cuda) == ("550.54.15", "12.4")
    assert api.state == "closed"


def test_gpus_from_nvml_honours_cuda_visible_devices():
    api = FakeNvml([("NVIDIA H100 80GB HBM3", "9.0"), ("NVIDIA L4", "8.9")])
    gpus, _, _ = gpus_from_nvml(api, "1")
    assert [(g.index, g.name) for g in gpus] == [(0, "NVIDIA L4")]


@pytest.mark.parametrize(
    "env, expected",
    [
        (None, [0, 1, 2]),
        ("", []),
        ("2,0", [2, 0]),
        ("0,7,1", [0]),  # CUDA stops at the first invalid entry
        ("-1", []),
        ("GPU-bbb", [1]),
        ("GPU-", []),  # ambiguous prefix
        ("1,1", [1]),
        ("MIG-abc", []),
    ],
)
def test_visible_indices(env, expected):
    physical = [(0, "GPU-aaa"), (1, "GPU-bbb"), (2, "GPU-ccc")]
    assert visible_indices(physical, env) == expected


def test_ctypes_nvml_reports_a_missing_library():
    # The fallback binding used when nvidia-ml-py is absent: no libnvidia-ml here.
    with pytest.raises(platform_module._Unavailable):
        platform_module._CtypesNvml()
