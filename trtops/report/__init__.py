"""Render a :class:`~trtops.outcome.RunResult` for people and machines.

* ``--json``: :func:`dump_json` (:mod:`.json_doc`), one document on stdout (logs stay on
  stderr).
* ``--junit FILE``: :func:`write_junit` (:mod:`.junit`).
* GitHub Actions: :func:`github_step_summary` and :func:`github_annotations`
  (:mod:`.github`), both written by :func:`emit_ci_reports` when ``GITHUB_ACTIONS=true``.
* Terminals and plain logs: :func:`format_table` / :func:`print_result` (:mod:`.table`).
* Plans: :func:`result_from_plan` and the CI job matrix :func:`matrix_from_plan`
  (:mod:`.plans`).
* Commands call :func:`render_result` and :func:`check_report_path` (:mod:`.output`).

Nothing here imports anything heavy; rich is imported only to draw in a terminal.
"""

from trtops.report.common import (
    ERROR_STATUSES,
    FAILURE_STATUSES,
    SKIPPED_STATUSES,
    STATUS_ICONS,
    STATUS_LABELS,
    annotation_path,
    format_seconds,
    manifest_name,
    short_name,
    status_label,
    summary_line,
)
from trtops.report.github import (
    accuracy_line,
    append_step_summary,
    escape_data,
    escape_property,
    github_annotations,
    github_step_summary,
    workflow_command,
)
from trtops.report.json_doc import dump_json
from trtops.report.junit import junit_xml, write_junit
from trtops.report.output import (
    check_report_path,
    emit_ci_reports,
    render_result,
    report_refusal,
)
from trtops.report.plans import (
    PLAN_STATUS,
    matrix_from_plan,
    result_from_plan,
)
from trtops.report.table import format_table, print_result

__all__ = [
    "ERROR_STATUSES", "FAILURE_STATUSES", "PLAN_STATUS", "SKIPPED_STATUSES", "STATUS_ICONS",
    "STATUS_LABELS", "accuracy_line", "annotation_path", "append_step_summary",
    "check_report_path", "dump_json", "emit_ci_reports", "escape_data", "escape_property",
    "format_seconds", "format_table", "github_annotations", "github_step_summary", "junit_xml",
    "manifest_name", "matrix_from_plan", "print_result", "render_result", "report_refusal",
    "result_from_plan", "short_name", "status_label", "summary_line", "workflow_command",
    "write_junit",
]
