"""A command that used a library whose teardown may hang (Ray's driver) ends once its
result is out: stdout and stderr flushed, the exit code kept, teardown skipped."""

from __future__ import annotations

import subprocess
import sys
import textwrap

# A non-daemon thread that never ends: interpreter teardown would wait for it forever, as
# it waits for a hung Ray driver. The timeout below is a hang guard, not a bound.
HANGING_TEARDOWN = "import threading; threading.Thread(target=threading.Event().wait).start()\n"


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", HANGING_TEARDOWN + textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=120, check=False)


def test_finish_flushes_and_ends_the_process_with_its_code():
    result = _python("""
        import sys
        from trtops import process_exit
        process_exit.skip_teardown("ray")
        sys.stdout.write('{"result": "out"}')   # not flushed yet: finish must flush it
        sys.stderr.write("a warning")
        raise SystemExit(process_exit.finish(3))
    """)
    assert result.returncode == 3
    assert result.stdout == '{"result": "out"}'
    assert result.stderr == "a warning"


def test_the_cli_entry_point_skips_teardown_once_asked():
    result = _python("""
        import sys
        from trtops import cli, process_exit
        process_exit.skip_teardown("ray")
        sys.argv = ["trtops", "plan", "no-such-manifests/"]
        cli.entry()
    """)
    assert result.returncode == 1, result.stderr  # manifest problems: exit 1
    assert "no-such-manifests" in result.stderr


def test_without_a_request_finish_returns_the_code_for_a_normal_exit():
    result = subprocess.run([sys.executable, "-c", "from trtops import process_exit; "
                             "print(process_exit.teardown_skipped_for(), process_exit.finish(5))"],
                            capture_output=True, text=True, timeout=120, check=False)
    assert (result.returncode, result.stdout) == (0, "() 5\n"), result.stderr


def test_both_ways_to_run_trtops_go_through_the_entry_point():
    from pathlib import Path

    from trtops.project import _read_toml  # tomllib, or tomli on Python 3.10

    root = Path(__file__).resolve().parents[2]
    scripts = _read_toml(root / "pyproject.toml")["project"]["scripts"]
    assert scripts["trtops"] == "trtops.cli:entry"
    assert "entry()" in (root / "trtops" / "__main__.py").read_text()
