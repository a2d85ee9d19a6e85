"""Shared fixtures. Keep small; model makers live in tests/helpers.py."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(1, str(Path(__file__).parent / "remote"))

from helpers import make_conv_model, make_qdq_model  # noqa: E402

# The S3 servers (SeaweedFS; moto where a test needs it), one per test session for every
# directory that uses them (tests/remote, tests/reliability, tests/security).
from s3_fixtures import moto_endpoint, moto_url, s3_endpoint, s3_url  # noqa: E402,F401


@pytest.fixture(autouse=True)
def _user_cache_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test gets its own user cache directory (the digest memo lives there, see
    trtops.keys.memo.user_memo_path); subprocesses inherit it."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))


@pytest.fixture
def conv_model(tmp_path: Path) -> Path:
    """A conv model with dynamic N, H, W at ``tmp_path/models/conv.onnx``."""
    return make_conv_model(tmp_path / "models" / "conv.onnx")


@pytest.fixture
def qdq_model(tmp_path: Path) -> Path:
    """An explicitly quantized conv model at ``tmp_path/models/qdq.onnx``."""
    return make_qdq_model(tmp_path / "models" / "qdq.onnx")


# --------------------------------------------------------------------------- test tiers
# `pytest -m "not slow"` is the developer loop (at most 90 s on a 2-core machine); CI runs
# everything. The rule lives here, in one place: a test taking more than about a second
# (measured with --durations on a loaded 2-core machine) is slow. Whole directories and files
# go in SLOW_PATHS, single tests (all their parameters unless one is named) in SLOW_TESTS;
# both are relative to tests/.
SLOW_PATHS = (
    "reliability/",  # SIGKILL trials, full disks, a stopped server: up to a minute each
    "ray/",  # a local Ray cluster per test
    "remote/",  # a real S3 server, processes racing on it
    "security/test_hostile_entries.py",  # every hostile entry on a directory and on SeaweedFS
    "func/test_apply.py",  # apply end to end in subprocesses
    "func/test_apply_gpus.py",
    "func/test_repair_cli.py",  # repair end to end in subprocesses (probe, tries, apply)
    "func/test_ci_reports.py",
    "func/test_prepare_cli.py",  # trtops prepare/plan/apply in subprocesses
    "func/test_report_cli.py",  # apply --report and trtops report in subprocesses
    "func/test_html_report_browser.py",  # headless Chromium (about 3 s)
    "unit/test_typecheck_trt.py",  # runs mypy over the TensorRT stubs
)
SLOW_TESTS = (
    "unit/examples/test_examples_cli.py::test_download_fetches_the_wheel_with_pip_and_installs_nothing",
    "func/test_exit_codes.py::test_a_closed_stdout_ends_quietly_with_0",
    "func/test_exit_codes.py::test_exit_code[apply-0]",
    "func/test_readonly_cache.py::test_commands_that_only_read_work_on_a_read_only_cache",
    "func/test_lock.py::test_lock_round_trip_is_deterministic_and_complete",
    "func/test_plan_cli.py::test_plain_output_in_ci",
    "func/test_validate.py::test_hostile_input_exits_1_without_traceback",
    "func/test_validate.py::test_many_manifests_are_fast",
    "func/test_validate.py::test_no_model_checks",
    "func/test_validate.py::test_problems_on_stderr_with_locations",
    "func/test_validate.py::test_semantic_problems_after_schema",
    "func/test_validate.py::test_url_sources_are_checked_once_in_the_cache",
    "func/test_validate.py::test_plain_http_url_sources_need_allow_http",
    "security/test_adversarial_manifests.py::test_adversarial_manifest_is_refused[too-many-values-plan]",
    "security/test_adversarial_manifests.py::test_adversarial_manifest_is_refused[too-many-values-validate]",
    "security/test_generated_code.py::test_tensor_names_are_data_in_generated_loaders",
    "security/test_hostile_remote.py::test_apply_with_a_hostile_remote_entry_writes_nothing_outside",
    "security/test_integrity.py::test_a_corrupt_engine_never_reaches_the_runtime_in_verify",
    "security/test_integrity.py::test_emit_refuses_a_corrupt_engine_for_python_and_triton",
    "security/test_integrity.py::test_the_emitted_loader_checks_sha256_before_touching_tensorrt",
    "security/test_untrusted_data.py::test_data_swapped_for_a_pickle_after_planning_is_refused_at_check_time",
    "unit/cache/test_local_store.py::TestLocalStoreContract::test_concurrent_put_from_processes_leaves_one_valid_entry",
    "unit/cache/test_local_store.py::TestLocalStoreWithEnginesOnAnotherFilesystem::test_concurrent_put_from_processes_leaves_one_valid_entry",
    "unit/examples/test_examples_manifests.py::test_full_check_of_the_seed_scenarios",
    "unit/examples/test_examples_models.py::test_resnet50_smoke_at_batch_1",
    "unit/manifest/test_manifest_invalid.py::test_invalid_manifest[deep-nesting]",
)


def is_slow(test_id: str) -> bool:
    """Whether the test ``test_id`` (``path::name[params]`` relative to tests/) is in the slow tier."""
    if test_id.startswith(SLOW_PATHS):
        return True
    return any(test_id == slow or test_id.startswith(slow + "[") for slow in SLOW_TESTS)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    tests_dir = Path(__file__).parent
    for item in items:
        path = Path(str(item.path))
        _, _, name = item.nodeid.partition("::")
        if tests_dir in path.parents and is_slow(f"{path.relative_to(tests_dir).as_posix()}::{name}"):
            item.add_marker(pytest.mark.slow)
