"""Free text people type (a reason, a justification): whether it says anything at all."""

from __future__ import annotations

import unicodedata

# Letters and symbols that show as nothing: Hangul fillers, the blank braille pattern.
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
# Categories that show as nothing: separators (spaces of every width), controls, formats.
_BLANK_CATEGORIES = frozenset({"Zs", "Zl", "Zp", "Cc", "Cf", "Cs", "Co", "Cn"})


def says_something(value: str) -> bool:
    """Whether `value` has at least one character a reader can see (found by probing: a reason
    of a Hangul filler, or of blank braille, passed as given and read as blank in the log)."""
    return any(ch not in _BLANK_LETTERS and unicodedata.category(ch) not in _BLANK_CATEGORIES for ch in value)
