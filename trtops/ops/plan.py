"""What apply, verify and plan share before any work: the platform to plan for, and the plan
itself (made from manifests, or a saved plan checked against what moved since)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from trtops.errors import InputError
from trtops.plan import Plan, check_plan_current, make_plan


def platform_here(toolchain: Any) -> Any:
    """This machine's platform; a test toolchain may stand in for it (CPU tests of
    orchestration)."""
    describe = getattr(toolchain, "platform", None)
    if callable(describe):
        return describe()
    from trtops.keys.platform import detect_platform

    return detect_platform()


def executor_platform(executor: Any, toolchain: Any) -> Any:
    """The platform to plan for with ``executor``: a Ray cluster is planned for as a whole
    (its GPU models, its TensorRT); others build here, on the detected platform. Executors
    that choose GPUs (``--gpus``) refuse ones the platform lacks, even with nothing to build.

    Raises:
        InputError: for GPUs the platform does not have.
    """
    platform = executor.platform(toolchain) if executor is not None else None
    if platform is None:
        platform = platform_here(toolchain)
    check = getattr(executor, "check_platform", None)
    if check is not None:
        check(platform)
    return platform


def is_plan_file(paths: Sequence[str | os.PathLike[str]]) -> bool:
    """True when ``paths`` is one saved plan (``trtops plan -o plan.json``)."""
    return len(paths) == 1 and str(paths[0]).endswith(".json") and Path(paths[0]).is_file()


def plan_or_load(paths: Sequence[str], store: Any, platform: Any) -> Plan:
    """Plan ``paths`` (manifests), or load the one saved plan they name and refuse it when
    the platform, the cache or a model moved since it was made.

    Raises:
        ManifestError, InputError, PlanMismatch: see :func:`trtops.plan.make_plan` and
            :func:`trtops.plan.check_plan_current`.
    """
    if is_plan_file(paths):
        plan = Plan.load(paths[0])
        check_plan_current(plan, store, platform)
        return plan
    return make_plan(paths, store, platform)


def restrict_targets(plan: Plan, targets: Sequence[str] | None) -> None:
    """Keep only the actions of ``targets`` (``--target``, for CI fan-out).

    Raises:
        InputError: for a target the plan does not have.
    """
    if not targets:
        return
    known = {a.spec.target.name for a in plan.actions}
    unknown = [t for t in targets if t not in known]
    if unknown:
        raise InputError(f"--target {unknown[0]!r} is not a target of these manifests",
                         hint=f"targets: {', '.join(sorted(known)) or 'none'}")
    plan.actions = [a for a in plan.actions if a.spec.target.name in targets]
