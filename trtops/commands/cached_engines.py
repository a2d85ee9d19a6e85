"""What `verify` and `bench` share on the command line: they plan the manifests against
the local cache on this machine's platform and run their verb on the cached engines; a
refusal up front (no TensorRT, no GPU) still writes the reports CI reads."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from trtops.commands.args import cache_url, manifest_paths


def run_on_cached_engines(args: argparse.Namespace, command: str,
                          verb: Callable[[Any, Any, Any], Any]) -> tuple[Any, Any, Any]:
    """``verb(plan, store, toolchain)`` on the manifests ``args`` names.

    Returns:
        ``(plan, store, result)``: the plan, the local cache and the verb's RunResult.

    Raises:
        EnvironmentMissing: the verb refused (after the refusal's reports are written).
    """
    from trtops.cache import open_store
    from trtops.errors import EnvironmentMissing
    from trtops.ops.plan import platform_here
    from trtops.ops.toolchain import default_toolchain
    from trtops.plan import make_plan
    from trtops.report import check_report_path, report_refusal

    check_report_path(args.junit)
    store = open_store(cache_url(args), write_for=command)
    toolchain = default_toolchain()
    plan = make_plan(manifest_paths(args), store, platform_here(toolchain))
    try:
        result = verb(plan, store, toolchain)
    except EnvironmentMissing as exc:
        report_refusal(exc, args)
        raise
    return plan, store, result
