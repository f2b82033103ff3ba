"""Personal data taken out of what a person types to explain a request (a justification, a
reason) before it goes into the audit log, which keeps it for ever: hashed into the tree, it can
never be removed, and it outlives the purge of the child it is about (found by probing: a
justification naming a child, her date of birth, address, postcode and her mother's phone number
was stored as typed). What can be recognised is replaced by its kind ("[postcode]", "[phone]",
"[email]", "[number]", "[date]"); names cannot be told from words, and stay."""

from __future__ import annotations

import re

_MONTHS = "jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec"
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"), "[email]"),
    # A UK postcode, spaced or not ("M1 1AE", "sw1a2aa").
    (re.compile(r"\b(?:GIR ?0AA|[A-Z]{1,2}[0-9][A-Z0-9]? ?[0-9][A-Z]{2})\b", re.IGNORECASE), "[postcode]"),
    # A UK phone number: 0 or +44 and ten more digits, spaced or dashed as people write them.
    (re.compile(r"(?<![\d+])(?:\+44\s?(?:\(0\)\s?)?|0)\d(?:[\s-]?\d){8,9}(?!\d)"), "[phone]"),
    # Ten digits (an NHS number, as printed 3-3-4 or not); a ContactPoint ID (12) stays.
    (re.compile(r"(?<!\d)\d{3}[\s-]?\d{3}[\s-]?\d{4}(?!\d)"), "[number]"),
    (re.compile(r"(?<!\d)\d{1,2}[/.-]\d{1,2}[/.-](?:\d{4}|\d{2})(?!\d)"), "[date]"),
    (re.compile(r"(?<!\d)\d{4}[/.-]\d{1,2}[/.-]\d{1,2}(?!\d)"), "[date]"),
    (
        re.compile(rf"\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:{_MONTHS})[a-z]*\.?,?\s+\d{{4}}\b", re.IGNORECASE),
        "[date]",
    ),
)


def redacted(text: str) -> str:
    """`text` with the personal data that can be recognised in it replaced by its kind."""
    for pattern, kind in _PATTERNS:
        text = pattern.sub(kind, text)
    return text
