"""`trtops info`: what this machine is (TensorRT, GPUs, driver), without importing TensorRT.

``--json`` prints the platform file format that ``--platform FILE`` reads; ``-o FILE``
writes it, so a CPU-only CI job can plan for the machine that will build.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

_PACKAGES = ("onnx", "onnxruntime", "polygraphy", "pycuda", "cuda-python", "nvidia-ml-py")


def register(subparsers: Any) -> None:
    from trtops.commands.args import add_platform_arguments

    parser = subparsers.add_parser(
        "info",
        help="show TensorRT, GPUs and driver of this machine (or write a platform file)",
        description="Show the platform trtops plans for: TensorRT version, GPUs (name, compute "
        "capability, memory, SMs) and driver. With --json, print it in the format "
        "--platform reads; -o FILE writes that file.",
    )
    parser.add_argument("--json", action="store_true", help="print the platform as JSON")
    parser.add_argument("-o", "--out", metavar="FILE", help="write the platform file to FILE")
    add_platform_arguments(parser)
    parser.set_defaults(handler=run)


def _package_versions() -> dict[str, str | None]:
    from importlib import metadata

    versions: dict[str, str | None] = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _gib(value: int | None) -> str:
    return f"{value / (1 << 30):.1f} GiB" if value else "?"


def run(args: argparse.Namespace) -> int:
    from trtops import __version__
    from trtops.keys.platform import platform_from_args

    platform = platform_from_args(args, sm_count=True)
    data = platform.to_json()
    if args.out:
        from pathlib import Path

        path = Path(args.out)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    if args.json:
        json.dump(data, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    print(f"trtops      {__version__} (Python {sys.version.split()[0]})")
    if platform.tensorrt:
        where = f" ({platform.tensorrt_distribution})" if platform.tensorrt_distribution else ""
        print(f"TensorRT    {platform.tensorrt}{where}")
    else:
        print("TensorRT    not installed")
    if platform.driver or platform.cuda_driver:
        print(f"driver      {platform.driver or '?'} (CUDA {platform.cuda_driver or '?'})")
    if platform.gpus:
        for gpu in platform.gpus:
            sms = f", {gpu.sm_count} SMs" if gpu.sm_count else ""
            print(f"GPU {gpu.index:<7} {gpu.name} (cc {gpu.compute_capability}, {_gib(gpu.memory_bytes)}{sms})")
    else:
        print("GPUs        none")
    if platform.source != "detected":
        print(f"source      {platform.source}")
    for note in platform.notes:
        print(f"note        {note}")
    packages = ", ".join(f"{n} {v}" for n, v in _package_versions().items() if v)
    if packages:
        print(f"packages    {packages}")
    if args.out:
        print(f"\nWrote {args.out}; plan for this machine elsewhere with `trtops plan --platform {args.out}`.")
    return 0
