"""Free text people type (a reason, a justification): whether it says anything at all, what a
reader sees of it, and whether it stays on one line."""

from __future__ import annotations

import re
import unicodedata

# Letters and symbols that show as nothing: Hangul fillers, the blank braille pattern.
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
# Categories that show as nothing on their own: separators (spaces of every width), controls,
# formats, and marks (a combining accent, a variation selector, the grapheme joiner).
_BLANK_CATEGORIES = frozenset({"Zs", "Zl", "Zp", "Cc", "Cf", "Cs", "Co", "Cn", "Mn", "Me", "Mc"})
# Characters that break a line or hide one: refused in one-line free text (a reason).
_LINE_BREAKING = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def _shows(ch: str) -> bool:
    return ch not in _BLANK_LETTERS and unicodedata.category(ch) not in _BLANK_CATEGORIES


def says_something(value: str) -> bool:
    """Whether `value` has at least one character a reader can see (found by probing: a reason
    of a Hangul filler, blank braille or a lone combining mark passed as given and read as blank
    in the log)."""
    return any(_shows(ch) for ch in value)


def trimmed(value: str) -> str:
    """`value` without what shows nothing at either end (spaces of any width, fillers, blank
    braille): what a reader sees of it. A flag at the end keeps its tags (found by re-probing:
    Wales's was cut to a black flag)."""
    start, end = 0, len(value)
    flags_end = {m.end() for m in _FLAG_TAGS.finditer(value)}
    while start < end and not _shows(value[start]):
        start += 1
    while end > start and end not in flags_end and not _shows(value[end - 1]):
        end -= 1
    return value[start:end]


# Format characters that writing needs: the zero-width non-joiner and joiner of Persian, Urdu and
# the Indic scripts, and of emoji built of several (found by re-probing: "پی‌ڈی‌ایف" was refused).
_JOINERS = frozenset("\u200c\u200d")


def _tags(letters: str) -> str:
    return "".join(chr(0xE0000 + ord(ch)) for ch in letters)


# The flags of England, Scotland and Wales, the only flags Unicode writes with tags: a black flag,
# tag letters naming the country, and the cancel tag. Tag characters are format characters, and
# anywhere else may hide text (found by re-probing: a black flag with any tags spelt a sentence).
_FLAG_TAGS = re.compile(
    "\U0001f3f4(?:" + "|".join(_tags(c) for c in ("gbeng", "gbsct", "gbwls")) + ")\U000e007f"
)


def _writing_format(value: str, at: int, flags: list[tuple[int, int]]) -> bool:
    """Whether the format character at `at` is one writing needs: a joiner, or a flag's tag."""
    return value[at] in _JOINERS or any(start < at < end for start, end in flags)


def breaks_lines(value: str) -> bool:
    """Whether `value` holds a control, format or line-breaking character (a NUL, U+0085, a
    right-to-left override, U+2028, a zero-width space): no one-line free text should. The
    zero-width joiner and non-joiner, which words and emoji are written with, are not, nor the tag
    characters of the flags of England, Scotland and Wales."""
    if value.isprintable():
        return False
    flags = [m.span() for m in _FLAG_TAGS.finditer(value)]
    return any(
        unicodedata.category(ch) in _LINE_BREAKING and not _writing_format(value, i, flags)
        for i, ch in enumerate(value)
    )


def escaped(value: str, hidden: frozenset[str]) -> str:
    """`value` with each character of a category in `hidden`, and each that shows nothing (a
    filler, blank braille, the grapheme joiner, a variation selector on no symbol), written as a
    visible `\\uXXXX`; but a flag's tags, and a joiner between two letters or symbols of a script
    that needs one, are kept as they are, so that a reader sees the flag or the word (found by
    re-probing: Wales's flag reached the audit log as escapes; then joiners in a row, kept,
    smuggled a hidden message past the reader)."""
    flags = [m.span() for m in _FLAG_TAGS.finditer(value)]
    return "".join(
        f"\\u{ord(ch):04x}" if _hidden_in(value, i, hidden, flags) else ch for i, ch in enumerate(value)
    )


# Variation selectors: they choose how the symbol before them looks, and show nothing themselves.
_SELECTORS = frozenset(chr(c) for c in (*range(0xFE00, 0xFE10), *range(0xE0100, 0xE01F0)))


def _hidden_in(value: str, at: int, hidden: frozenset[str], flags: list[tuple[int, int]]) -> bool:
    ch = value[at]
    if ch.isascii() and ch.isprintable():
        return False
    if any(start < at < end for start, end in flags):
        return False
    before = value[at - 1] if at else ""
    after = value[at + 1] if at + 1 < len(value) else ""
    if ch in _JOINERS:
        return not (_writes(before) or before in _SELECTORS) or not _writes(after)
    if ch in _SELECTORS:
        return not _writes(before) or before in _SELECTORS
    return ch in _BLANK_LETTERS or ch == "\u034f" or unicodedata.category(ch) in hidden


def _writes(ch: str) -> bool:
    # A letter, mark or symbol of a script beyond ASCII (what a joiner may sit between: a virama
    # before one in Hindi).
    return (
        bool(ch)
        and not ch.isascii()
        and ch != "\u034f"
        and (_shows(ch) or unicodedata.category(ch) in ("Mn", "Mc"))
    )
