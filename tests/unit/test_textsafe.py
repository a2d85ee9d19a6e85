"""trtops.textsafe: untrusted strings shown as escapes, long ones and long lists cut."""

from __future__ import annotations

import pytest

from trtops.errors import InputError, Problem, SourceLocation
from trtops.textsafe import name_list, terminal_safe

HOSTILE = [
    "\x1b[2J\x1b[H",  # clear the screen
    "\x1b]52;c;ZWNobyBoaQ==\x07",  # write to the clipboard (OSC 52)
    "\x1b]0;title\x07",  # retitle the window
    "a\rb", "\x00", "\x7f", "\x9b31m",  # CSI as one C1 character
    "admin\u202e\u2066gnp.exe\u2069", "\u200e\u200f\u061c", "line\u2028break",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_control_and_bidi_characters_become_escapes(text: str) -> None:
    shown = terminal_safe(text)
    assert shown.isprintable(), repr(shown)
    assert "\\x" in shown or "\\u" in shown


def test_printable_text_is_unchanged() -> None:
    for text in ("conv/fp16/lab", "Größe: 3 GiB", "名前", "input:0 [1, 3, 224, 224]"):
        assert terminal_safe(text) == text


def test_newlines_kept_only_when_asked() -> None:
    assert terminal_safe("a\nb") == "a\\x0ab"
    assert terminal_safe("a\n\tb\x1b", keep_lines=True) == "a\n\tb\\x1b"


def test_long_strings_keep_their_start_and_length() -> None:
    shown = terminal_safe("x" * 100_000)
    assert len(shown) < 250 and shown.endswith("... (100000 characters)")
    assert terminal_safe("y" * 5000, limit=None) == "y" * 5000


def test_name_lists_are_cut_with_a_count() -> None:
    names = [f"input_{i}" for i in range(5000)]
    shown = name_list(names)
    assert shown.startswith("input_0, input_1") and shown.endswith("... and 4990 more")
    assert len(shown) < 200
    assert name_list([]) == "none" and name_list([], empty="(none)") == "(none)"
    assert name_list(["\x1b[31mred", "b" * 1000]).count("\\x1b") == 1
    assert len(name_list(["b" * 1000])) < 100


def test_errors_render_escaped() -> None:
    error = InputError("the model has no input 'a\x1b[2Jb'\nsecond line", hint="inputs: \u202ex")
    text = error.render()
    assert "\x1b" not in text and "\u202e" not in text
    assert "a\\x1b[2Jb" in text and "\nsecond line" in text and "\\u202ex" in text
    problem = Problem(SourceLocation("m.yaml", 3, 5), "models[0]", "bad \x07name\nx", "hint \x1b")
    rendered = problem.render()
    assert rendered.isprintable() and "\\x07name\\x0ax" in rendered
