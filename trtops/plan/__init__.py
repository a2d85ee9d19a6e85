"""The planner: what to do for every engine, and why.

:func:`plan` is pure: given engine specs, a :class:`CacheView` (what the cache holds for
the keys in question), a :class:`~trtops.keys.platform.Platform` and model digests, it returns a
:class:`Plan` of :class:`Action`s:

``build``     no entry for the key (never built, or its entry was removed)
``rebuild``   the logical engine was built before under another key: the reason says which
              component changed, old → new ("model weights changed (model.onnx.data)",
              "TensorRT 10.13.3.9 → 10.14.1.48", "build config changed: workspace
              64 MiB → 128 MiB")
``reuse``     the entry exists (accepted, or not verified yet)
``skip``      the target cannot be built on this platform (the reason says which GPU or
              TensorRT it needs)
``rejected``  the entry exists but failed its accuracy check; nothing to do until the
              model, the config or the tolerances change

Cheap checks run first: target matching needs no file access; digests are computed only
for specs that can be built here; the cache is asked only about the resulting keys.

Modules, by concern:

- :mod:`.model`: Change, Action, EntryView, CacheView, Plan and their JSON round trip;
- :mod:`.targets`: target matching (which GPU builds a spec here, or why none can);
- :mod:`.explain`: what changed since the last build, in words;
- :mod:`.planner`: the pure :func:`plan`;
- :mod:`.assemble`: the impure half (manifests, digests, cache view, saved-plan checks);
- :mod:`.render`: the plan as text.
"""

from trtops.plan.assemble import (
    SpecKeys,
    check_plan_current,
    compute_digests,
    load_specs,
    make_plan,
    make_plan_for_specs,
    memo_for,
    save_memo,
    spec_keys,
)
from trtops.plan.explain import explain_changes, rejected_reason
from trtops.plan.model import (
    ACTION_KINDS,
    PENDING_KINDS,
    PLAN_FORMAT,
    PLAN_VERSION,
    Action,
    CacheView,
    Change,
    EntryView,
    Plan,
    spec_from_json,
)
from trtops.plan.planner import check_unique_ids, plan, plugin_paths, spec_key
from trtops.plan.render import render_lines, summary_line
from trtops.plan.targets import (
    TargetMatch,
    describe_target,
    match_target,
)

__all__ = [
    "ACTION_KINDS", "PENDING_KINDS", "PLAN_FORMAT", "PLAN_VERSION",
    "Action", "CacheView", "Change", "EntryView", "Plan", "SpecKeys", "TargetMatch",
    "check_plan_current", "check_unique_ids", "compute_digests", "describe_target",
    "explain_changes", "load_specs", "make_plan", "make_plan_for_specs", "match_target",
    "memo_for", "plan", "plugin_paths", "rejected_reason", "render_lines", "save_memo",
    "spec_from_json", "spec_key", "spec_keys", "summary_line",
]
