"""`trtops info`: what this machine is (TensorRT, GPUs, driver), without importing TensorRT.

``--json`` prints the platform file format that ``--platform FILE`` reads; ``-o FILE``
writes it, so a CPU-only CI job can plan for the machine that will build.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


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


def run(args: argparse.Namespace) -> int:
    from trtops import __version__
    from trtops.keys.platform import platform_from_args
    from trtops.names import format_bytes
    from trtops.ops.info import package_versions, write_platform_file

    platform = platform_from_args(args, sm_count=True)
    data = platform.to_json()
    if args.out:
        write_platform_file(platform, args.out)
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
            memory = format_bytes(gpu.memory_bytes) if gpu.memory_bytes else "?"
            print(f"GPU {gpu.index:<7} {gpu.name} (cc {gpu.compute_capability}, {memory}{sms})")
    else:
        print("GPUs        none")
    if platform.source != "detected":
        print(f"source      {platform.source}")
    for note in platform.notes:
        print(f"note        {note}")
    packages = ", ".join(f"{n} {v}" for n, v in package_versions().items() if v)
    if packages:
        print(f"packages    {packages}")
    if args.out:
        print(f"\nWrote {args.out}; plan for this machine elsewhere with `trtops plan --platform {args.out}`.")
    return 0
