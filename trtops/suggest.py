""""Did you mean ...?" for misspelt names (manifest keys, targets, tensor names).

Pure and dependency-free: one rule for every message that suggests a name.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any


def closest(word: Any, options: Iterable[str]) -> str | None:
    """The option ``word`` most likely meant: a case-insensitive match first, then the
    closest spelling (difflib ratio >= 0.6); None when nothing is close or ``word`` is
    not a string."""
    if not isinstance(word, str):
        return None
    options = list(options)
    lowered = {o.lower(): o for o in options}
    if word.lower() in lowered:
        return lowered[word.lower()]
    matches = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return matches[0] if matches else None


def did_you_mean(word: Any, options: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` to append to a message, or ``""`` when nothing is close."""
    guess = closest(word, options)
    return f"; did you mean {guess!r}?" if guess else ""
