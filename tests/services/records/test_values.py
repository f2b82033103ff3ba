"""Free text a data manager or council types: a required reason must say something, and is one
line (found by re-probing: a Hangul filler passed as a reason, and line separators were taken)."""

from __future__ import annotations

import pytest

from services.records.stewardship import reason_violations


@pytest.mark.parametrize(
    "reason",
    [
        *("\u3164", "\u2800", "\u00a0\u3000", "\u115f", "a\u2028b", "a\u2029b", "", "\u034f", "\u0301"),
        "a\U000e0067b",  # a tag character, no flag's
    ],
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
    "reason",
    [
        "duplicate record",
        "Élodie's two records",
        "\u00a0" * 400 + "padded",
        "\u00e9" * 500,
        # Wales's flag and a joiner of writing, as a justification may hold them (found by
        # re-probing: a data manager's reason with the flag was refused).
        "one child \U0001f3f4\U000e0067\U000e0062\U000e0077\U000e006c\U000e0073\U000e007f",
        "\u067e\u06cc\u200c\u0688\u06cc",
    ],
)
def test_a_reason_that_says_something_is_taken(reason: str) -> None:
    assert reason_violations(reason, required=True) == []
