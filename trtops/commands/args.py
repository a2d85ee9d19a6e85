"""Argument groups shared by several commands (one definition each).

Every command module registers its parser with these helpers, so an option means the same
thing, with the same default and help, wherever it appears. Nothing heavy is imported.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from trtops.names import DEFAULT_MANIFEST_PATHS, TRANSFER_JOBS

REMOTE_ENV = "TRTOPS_REMOTE"


def add_paths_argument(parser: argparse.ArgumentParser, help: str) -> None:
    """The positional ``PATH...`` of manifest files or directories."""
    parser.add_argument("paths", nargs="*", metavar="PATH", help=help)


def manifest_paths(args: argparse.Namespace, *, only_existing: bool = False) -> list[str]:
    """The manifest paths a command works on: its ``PATH...`` or the default folder.

    Args:
        args: parsed arguments with ``paths``.
        only_existing: drop default folders that do not exist (commands that also work
            without manifests, e.g. ``status`` and ``gc``).
    """
    if args.paths:
        return list(args.paths)
    if only_existing:
        return [p for p in DEFAULT_MANIFEST_PATHS if os.path.isdir(p)]
    return list(DEFAULT_MANIFEST_PATHS)


def add_cache_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--cache DIR_OR_URL`` (default: ``$TRTOPS_CACHE``, else the project's) to a command."""
    from trtops.cache import CACHE_ENV, DEFAULT_CACHE

    parser.add_argument(
        "--cache", metavar="DIR", default=None,
        help=f"engine cache directory (default: ${CACHE_ENV}, else the `cache` setting of "
        f"trtops.toml or [tool.trtops] in pyproject.toml, else {DEFAULT_CACHE}/ in the "
        "project root: the nearest directory with such a file, else the directory holding "
        "manifests/)",
    )


def cache_url(args: argparse.Namespace) -> str:
    """The cache a command uses: ``--cache``, else ``$TRTOPS_CACHE``, else the cache of the
    project its manifests (``PATH...``; none: the current directory) belong to."""
    from trtops.cache import default_cache_url

    return getattr(args, "cache", None) or default_cache_url(getattr(args, "paths", None) or ())


def add_remote_argument(parser: argparse.ArgumentParser) -> None:
    """``--remote URL`` (default ``$TRTOPS_REMOTE``)."""
    parser.add_argument(
        "--remote", metavar="URL", default=None,
        help=f"remote cache, e.g. s3://bucket/prefix?endpoint_url=http://host:9000 "
        f"(default: ${REMOTE_ENV})",
    )


def remote_url(args: argparse.Namespace) -> str:
    """The remote URL from --remote or the environment.

    Raises:
        InputError: when neither gives one.
    """
    from trtops.errors import InputError

    url = getattr(args, "remote", None) or os.environ.get(REMOTE_ENV)
    if not url:
        raise InputError("no remote cache given",
                         hint=f"pass --remote s3://bucket/prefix or set {REMOTE_ENV}")
    return url


def add_lockfile_argument(parser: argparse.ArgumentParser) -> None:
    """``--lockfile PATH``: the lock (default: ``trtops.lock`` beside the manifests)."""
    parser.add_argument("--lockfile", metavar="PATH", default=None,
                        help="the lock: a trtops.lock directory or one platform file of it "
                        "(default: trtops.lock beside the manifests)")


def lock_platform_from_args(args: argparse.Namespace) -> Any:
    """The platform ``--platform``/``--tensorrt``/``--gpu`` name, as a lock platform, or None
    when no flag is given (commands on the lock never assume this machine)."""
    if not any(getattr(args, name, None) for name in ("platform", "tensorrt", "gpu")):
        return None
    from trtops.errors import InputError
    from trtops.keys.platform import platform_from_args
    from trtops.lockfile import LockPlatform

    platform = LockPlatform.from_platform(platform_from_args(args))
    if platform is None:
        raise InputError("the platform given has no TensorRT version or no GPU",
                         hint="pass --platform FILE, or --tensorrt, --gpu and --compute-capability")
    return platform


def add_jobs_argument(parser: argparse.ArgumentParser) -> None:
    """``-j N``: entries transferred in parallel."""
    parser.add_argument("-j", "--jobs", type=int, default=TRANSFER_JOBS, metavar="N",
                        help=f"entries transferred in parallel (default {TRANSFER_JOBS})")


def add_platform_arguments(parser: argparse.ArgumentParser) -> None:
    """Add --platform / --tensorrt / --gpu / --compute-capability to a command."""
    group = parser.add_argument_group("target platform (default: this machine)")
    group.add_argument("--platform", metavar="FILE",
                       help="plan for the machine described in FILE (from `trtops info --json -o FILE`)")
    group.add_argument("--tensorrt", metavar="VERSION",
                       help="plan for this TensorRT version, e.g. 10.13.3.9")
    group.add_argument("--gpu", metavar="NAME",
                       help="plan for one GPU with this product name, e.g. 'NVIDIA L4' "
                       "(needs --compute-capability)")
    group.add_argument("--compute-capability", metavar="X.Y", dest="compute_capability",
                       help="compute capability of --gpu, e.g. 8.9")


def add_output_arguments(parser: Any, *, junit: bool = True) -> None:
    """Add ``--json`` (and ``--junit FILE``) to a command's argparse parser."""
    parser.add_argument("--json", action="store_true",
                        help="print one JSON document on stdout (logs stay on stderr)")
    if junit:
        parser.add_argument("--junit", metavar="FILE", default=None,
                            help="write a JUnit XML report (one test case per engine)")
