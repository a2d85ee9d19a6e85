"""trtops.names: the one size grammar (parse_byte_size) and identifier diagnostics."""

from __future__ import annotations

import pytest

from trtops.names import (
    format_bytes,
    identifier_problem,
    parse_byte_size,
    suggest_identifier,
)


@pytest.mark.parametrize("text, size", [
    (1048576, 1048576), ("1048576", 1048576), ("512B", 512), ("512 B", 512),
    ("4GiB", 4 << 30), ("4 GiB", 4 << 30), ("64MiB", 64 << 20), ("2KiB", 2048), ("1TiB", 1 << 40),
    ("4 GB", 4 * 10**9), ("1.5GB", 1_500_000_000), ("3kB", 3000), ("2MB", 2_000_000), ("1TB", 10**12),
    ("1.5GiB", 3 << 29),
])
def test_accepted_sizes(text: object, size: int) -> None:
    assert parse_byte_size(text) == size


@pytest.mark.parametrize("text, guess", [
    ("4G", "4GiB or 4GB"), ("64mb", "64MB"), ("64 mib", "64MiB"), ("1gib", "1GiB"), ("2KB", "2kB"),
    ("4 k", "4KiB or 4kB"), ("lots", None), ("4  GiB", "4GiB"), (" 4GiB", "4GiB"), ("-1GiB", None),
    ("1e9", None), (True, None), (4.5, None), ("9" * 100 + "GiB", None),
])
def test_refused_sizes_list_the_accepted_forms(text: object, guess: str | None) -> None:
    with pytest.raises(ValueError) as caught:
        parse_byte_size(text)
    message = str(caught.value)
    assert "KiB, MiB, GiB, TiB (powers of 1024) or kB, MB, GB, TB (powers of 1000)" in message
    assert (f"did you mean {guess}?" in message) if guess else "did you mean" not in message
    assert len(message) < 300


def test_sizes_read_back_from_format_bytes() -> None:
    for size in (512, 64 << 20, 4 << 30, 3 << 29):
        assert parse_byte_size(format_bytes(size)) == size


@pytest.mark.parametrize("name, problem, suggestion", [
    ("tiny-cnn", "has '-'", "tiny_cnn"),
    ("3conv", "starts with a digit", "_3conv"),
    ("a" * 65, "is 65 characters long", "a" * 64),
    ("c\u043env", "non-ASCII", None),
    ("", "is empty", None),
    ("my model.v2", "has ' ' '.'", "my_model_v2"),
])
def test_identifier_problems_say_what_is_wrong_and_suggest_a_fix(name: str, problem: str,
                                                                  suggestion: str | None) -> None:
    described = identifier_problem(name)
    assert described is not None and problem in described
    assert suggest_identifier(name) == suggestion


def test_identifiers_have_no_problem() -> None:
    assert identifier_problem("tiny_cnn") is None and suggest_identifier("tiny_cnn") is None


def test_one_byte_size_format_everywhere() -> None:
    """Sizes are printed by format_bytes only: no module spells out its own unit ladder."""
    import re
    from pathlib import Path

    import trtops

    root = Path(trtops.__file__).parent
    ladder = re.compile(r"""["'](?:KiB|MiB|GiB|KB|MB|GB)["']""")
    # The generated loaders' runtime parts are copied out of the package and import nothing.
    own = [p for p in root.rglob("*.py")
           if p.name != "names.py" and "runtime" not in p.relative_to(root).parts
           and ladder.search(p.read_text(encoding="utf-8"))]
    assert not own, own


@pytest.mark.parametrize("word,expected", [
    ("1", True), ("TRUE", True), ("yes", True), ("On", True),
    ("0", False), ("false", False), ("NO", False), ("off", False),
    ("", None), ("maybe", None), (" 1", None),  # callers strip where spaces are allowed
])
def test_switch_words(word, expected):
    from trtops.names import switch

    assert switch(word) is expected
