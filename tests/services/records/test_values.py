"""Free text a data manager or council types: a required reason must say something, and is one
line (found by re-probing: a Hangul filler passed as a reason, and line separators were taken)."""

from __future__ import annotations

import pytest

from services.records.stewardship import reason_violations


@pytest.mark.parametrize(
    "reason", ["\u3164", "\u2800", "\u00a0\u3000", "\u115f", "a\u2028b", "a\u2029b", "", "\u034f", "\u0301"]
)
def test_a_reason_that_shows_nothing_or_breaks_the_line_is_refused(reason: str) -> None:
    # Required (a review task's decision).
    assert [v.field for v in reason_violations(reason, required=True)] == ["reason"]


@pytest.mark.parametrize("reason", ["a\u2028b", "a\u2029b", "x" * 501, "e\u0301" * 251])
def test_an_optional_reason_given_is_still_checked(reason: str) -> None:
    # Optional (a merge, an unmerge, a shield): none is fine, a bad one is not. Its length is
    # counted as stored, in code points (a letter and its combining accent are two).
    assert reason_violations("") == []
    assert [v.field for v in reason_violations(reason)] == ["reason"]


@pytest.mark.parametrize(
    "reason", ["duplicate record", "Élodie's two records", "\u00a0" * 400 + "padded", "\u00e9" * 500]
)
def test_a_reason_that_says_something_is_taken(reason: str) -> None:
    assert reason_violations(reason, required=True) == []
