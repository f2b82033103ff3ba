"""Personal data taken out of what a person types to explain a request (a justification, a
reason) before it goes into the audit log, which keeps it for ever: hashed into the tree, it can
never be removed, and it outlives the purge of the child it is about (found by probing: a
justification naming a child, her date of birth, address, postcode and her mother's phone number
was stored as typed). What can be recognised is replaced by its kind ("[postcode]", "[phone]",
"[email]", "[number]", "[date]"); names cannot be told from words, and stay."""

from __future__ import annotations

import re

_MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
_DAY = r"\d{1,2}(?:st|nd|rd|th)?"
# Between the parts of a postcode: nothing, spaces of any width, or a dash.
_GAP = r"[\s\u00a0\u2000-\u200b\u202f-]*"
_POSTCODE = re.compile(
    rf"(?<![A-Za-z0-9])(?:GIR{_GAP}0AA|[A-Z]{{1,2}}[0-9][A-Z0-9]?{_GAP}([0-9][A-Z]{{2}}))(?![A-Za-z0-9])",
    re.IGNORECASE,
)
# "3rd", "1st" typed in lower case after a room or a section ("B2 3rd floor", "S17 1st review")
# are ordinals, though "B2 3RD" has a postcode's shape.
_ORDINAL = re.compile(r"(?:1st|2nd|3rd|\dth)")
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"[\w.%+-]+[@\uff20][\w-]+(?:\.[\w-]+)+"), "[email]"),
    # A UK phone number: 0, +44 or 0044 and ten more digits, spaced, dotted, dashed or bracketed.
    (
        re.compile(r"(?<![\d+])(?:(?:\+|00)44\s?(?:\(0\)\s?)?|\(?0)(?:[\s.()-]{0,2}\d){9,10}(?!\d)"),
        "[phone]",
    ),
    # Ten digits (an NHS number, printed 3-3-4 or otherwise); a ContactPoint ID (12) stays.
    (re.compile(r"(?<!\d)\d(?:[\s.-]?\d){9}(?!\d)"), "[number]"),
    (re.compile(r"(?<!\d)\d{1,2}[/.-]\d{1,2}[/.-](?:\d{4}|\d{2})(?!\d)"), "[date]"),
    (re.compile(r"(?<!\d)\d{4}[/.-]\d{1,2}[/.-]\d{1,2}(?!\d)"), "[date]"),
    (re.compile(r"(?<!\d)[0-3]\d[01]\d(?:19|20)\d\d(?!\d)"), "[date]"),  # 14032015
    (re.compile(rf"\b{_DAY}(?:\s+of)?[\s-]+{_MONTH},?[\s-]+(?:\d{{4}}|\d{{2}})\b", re.IGNORECASE), "[date]"),
    (re.compile(rf"\b{_MONTH}\s+{_DAY},?\s+\d{{4}}\b", re.IGNORECASE), "[date]"),
)


def _postcode(match: re.Match[str]) -> str:
    inward = match.group(1)
    if inward and _ORDINAL.fullmatch(inward):
        return match.group(0)
    return "[postcode]"


def redacted(text: str) -> str:
    """`text` with the personal data that can be recognised in it replaced by its kind."""
    for pattern, kind in _PATTERNS:
        text = pattern.sub(kind, text)
    return _POSTCODE.sub(_postcode, text)
