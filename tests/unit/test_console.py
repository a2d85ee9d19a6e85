"""trtops.console: interactive vs plain decision, consoles, logging, progress lines."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading

import pytest

from trtops import console
from trtops.console import (
    Mode,
    Progress,
    detect,
    in_ci,
    in_github_actions,
    make_console,
)


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def fresh_consoles():
    console.reset()
    yield
    console.reset()


# --------------------------------------------------------------------------- detection


@pytest.mark.parametrize("env, expected", [
    ({}, Mode(True, True)),
    ({"CI": "true"}, Mode(False, False)),
    ({"CI": "1"}, Mode(False, False)),
    ({"CI": "false"}, Mode(True, True)),
    ({"CI": ""}, Mode(True, True)),
    ({"GITHUB_ACTIONS": "true"}, Mode(False, False)),
    ({"GITLAB_CI": "true"}, Mode(False, False)),
    ({"JENKINS_URL": "http://ci/"}, Mode(False, False)),
    ({"TRTOPS_PLAIN": "1"}, Mode(False, False)),
    ({"TRTOPS_PLAIN": "0"}, Mode(True, True)),
    ({"TERM": "dumb"}, Mode(False, False)),
    ({"NO_COLOR": "1"}, Mode(True, False)),
    ({"NO_COLOR": ""}, Mode(True, True)),  # no-color.org: empty means unset
])
def test_detect_on_a_terminal(env, expected):
    assert detect(FakeTTY(), env) == expected


def test_detect_off_a_terminal_is_plain():
    assert detect(io.StringIO(), {}) == Mode(False, False)


def test_detect_on_a_closed_stream_is_plain():
    stream = io.StringIO()
    stream.close()
    assert detect(stream, {}) == Mode(False, False)


def test_ci_helpers():
    assert in_ci({"CI": "true"}) and not in_ci({})
    assert in_github_actions({"GITHUB_ACTIONS": "true"})
    assert not in_github_actions({"GITHUB_ACTIONS": "false"})


# --------------------------------------------------------------------------- consoles


def test_plain_console_has_no_ansi_and_does_not_wrap():
    buffer = io.StringIO()
    plain = make_console(stderr=True, mode=Mode(False, False), file=buffer)
    long = "x" * 500
    plain.print(f"[bold red]error[/] {long}")
    assert buffer.getvalue() == f"error {long}\n"
    assert not plain.is_terminal and not plain.is_interactive


def test_interactive_console_without_color():
    buffer = FakeTTY()
    term = make_console(stderr=True, mode=Mode(True, False), file=buffer)
    term.print("[red]hi[/]")
    assert "\x1b[31m" not in buffer.getvalue()
    assert "hi" in buffer.getvalue()


def test_shared_consoles_follow_redirected_streams(capsys, monkeypatch):
    monkeypatch.setenv("TRTOPS_PLAIN", "1")
    console.err().print("to stderr")
    console.out().print("to stdout")
    captured = capsys.readouterr()
    assert captured.err == "to stderr\n"
    assert captured.out == "to stdout\n"


# --------------------------------------------------------------------------- logging


def test_configure_logging_plain_lines(capsys, monkeypatch):
    monkeypatch.setenv("TRTOPS_PLAIN", "1")
    logger = console.configure_logging(verbose=False)
    logger.info("building resnet50")
    logger.warning("slow")
    logger.debug("hidden")
    console.configure_logging(verbose=True)  # idempotent: still one handler
    logger.debug("shown")
    assert capsys.readouterr().err == "building resnet50\nwarning: slow\ndebug: shown\n"
    assert sum(hasattr(h, "_trtops_console_handler") for h in logger.handlers) == 1


def test_setup_line_buffers_a_pipe():
    # A child whose stdout is a pipe: without line buffering the data line would come
    # after the stderr line that was written later.
    code = (
        "import sys, time\n"
        "from trtops import console\n"
        "console.setup()\n"
        "print('data', flush=False)\n"
        "assert sys.stdout.line_buffering and sys.stderr.line_buffering\n"
        "import logging; logging.getLogger('trtops').info('log')\n"
    )
    env = {**os.environ, "CI": "true"}
    proc = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, env=env, check=True)
    assert proc.stdout.splitlines() == ["data", "log"]


# --------------------------------------------------------------------------- progress


def test_plain_progress_lines(capsys):
    with Progress(8, "apply", interactive=False) as progress:
        progress.start("resnet50/fp16/lab", "building")
        progress.update("resnet50/fp16/lab", "verifying")
        progress.finish("resnet50/fp16/lab", "built", seconds=12.34)
        progress.start("bert/fp16/lab", "building")
        progress.finish("bert/fp16/lab", "build failed", seconds=1)
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "[1/8] resnet50/fp16/lab: building...",
        "[1/8] resnet50/fp16/lab: verifying...",
        "[1/8] resnet50/fp16/lab: built (12.3s)",
        "[2/8] bert/fp16/lab: building...",
        "[2/8] bert/fp16/lab: build failed (1.0s)",
    ]


def test_plain_progress_pads_index_and_measures_time(capsys):
    with Progress(12, interactive=False) as progress:
        progress.start("a", "building")
        progress.finish("a", "built")
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "[ 1/12] a: building..."
    assert lines[1].startswith("[ 1/12] a: built (") and lines[1].endswith("s)")


def test_progress_from_threads_gives_distinct_positions(capsys):
    items = [f"m{i}/fp16/lab" for i in range(20)]
    with Progress(len(items), interactive=False) as progress:
        threads = [threading.Thread(target=lambda n=n: (progress.start(n, "building"),
                                                         progress.finish(n, "built", seconds=0)))
                   for n in items]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 40
    starts = sorted(int(line[1:line.index("/")]) for line in lines if line.endswith("..."))
    assert starts == list(range(1, 21))


def test_interactive_progress_uses_a_bar_and_prints_finished_items():
    buffer = FakeTTY()
    from rich.console import Console

    term = Console(file=buffer, force_terminal=True, width=100)
    with Progress(2, "apply", interactive=True, console=term) as progress:
        progress.start("a/fp16/lab", "building")
        progress.finish("a/fp16/lab", "built", seconds=2)
        progress.start("b/fp16/lab", "building")
        progress.finish("b/fp16/lab", "built", seconds=3)
    text = buffer.getvalue()
    assert "[1/2] a/fp16/lab: built (2.0s)" in text
    assert "[2/2] b/fp16/lab: built (3.0s)" in text


def test_progress_factory_is_plain_in_ci(monkeypatch):
    monkeypatch.setenv("CI", "true")
    assert console.progress(3).interactive is False
