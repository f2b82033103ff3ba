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
    if value.isascii() and value.isprintable():
        return value  # nearly every event's text: nothing to look at character by character
    flags = [m.span() for m in _FLAG_TAGS.finditer(value)]
    return "".join(
        f"\\u{ord(ch):04x}" if _hidden_in(value, i, hidden, flags) else ch for i, ch in enumerate(value)
    )


# Variation selectors: they choose how the symbol before them looks, and show nothing themselves.
# Kept only where they choose something: text or emoji presentation after a symbol (or a keycap's
# digit), a Han character's form after it, a Mongolian letter's after it (found by re-probing:
# one after each of many letters carried a byte of hidden text).
_EMOJI_SELECTORS = frozenset("\ufe0e\ufe0f")
_HAN_SELECTORS = frozenset(chr(c) for c in range(0xE0100, 0xE01F0))
_MONGOLIAN_SELECTORS = frozenset("\u180b\u180c\u180d\u180f")
_SELECTORS = frozenset(chr(c) for c in range(0xFE00, 0xFE10)) | _HAN_SELECTORS | _MONGOLIAN_SELECTORS
# Marks that show nothing wherever they are: the grapheme joiner, Khmer's inherent vowels, the
# Khitan filler.
_INVISIBLE_MARKS = frozenset("\u034f\u17b4\u17b5\U00016fe4")
# Scripts that write with joiners: Arabic and its neighbours, the Indic scripts and Sinhala,
# Myanmar, Khmer, Mongolian; and emoji.
_JOINING_SCRIPTS = (
    (0x0600, 0x08FF),
    (0x0900, 0x0DFF),
    (0x1000, 0x109F),
    (0x1780, 0x18AF),
    (0xA8E0, 0xA8FF),
    (0xFB50, 0xFDFF),
    (0xFE70, 0xFEFF),
)


def _hidden_in(value: str, at: int, hidden: frozenset[str], flags: list[tuple[int, int]]) -> bool:
    ch = value[at]
    if ch.isascii() and ch.isprintable():
        return False
    if any(start < at < end for start, end in flags):
        return False
    before = value[at - 1] if at else ""
    after = value[at + 1] if at + 1 < len(value) else ""
    if ch in _JOINERS:
        return not (_joins(before) or before in _EMOJI_SELECTORS) or not _joins(after)
    if ch in _SELECTORS:
        return not _selects(ch, before, after)
    return ch in _BLANK_LETTERS or ch in _INVISIBLE_MARKS or unicodedata.category(ch) in hidden


def _joins(ch: str) -> bool:
    """Whether a joiner may sit beside `ch`: a letter or mark of a script that writes with
    joiners, or an emoji (found by re-probing: joiners between Cyrillic letters carried text)."""
    if not ch or ch.isascii():
        return False
    code = ord(ch)
    return any(low <= code <= high for low, high in _JOINING_SCRIPTS) or _is_emoji(ch)


def _is_emoji(ch: str) -> bool:
    return unicodedata.category(ch) in ("So", "Sk") or ord(ch) >= 0x1F000


def _selects(selector: str, before: str, after: str) -> bool:
    """Whether a variation selector chooses a form of the character before it (and is alone)."""
    if selector in _EMOJI_SELECTORS:
        # "1\ufe0f\u20e3": a keycap (found by re-probing: escaped after its digit).
        return bool(before) and (_is_emoji(before) or (before in "0123456789#*" and after == "\u20e3"))
    if selector in _HAN_SELECTORS:
        return bool(before) and unicodedata.name(before, "").startswith("CJK")
    return bool(before) and 0x1820 <= ord(before) <= 0x18AF  # Mongolian
