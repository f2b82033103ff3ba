"""Free text a data manager or council types: a required reason must say something, and is one
line (found by re-probing: a Hangul filler passed as a reason, and line separators were taken)."""

from __future__ import annotations

import pytest

from services.records.stewardship import reason_violations


@pytest.mark.parametrize(
    "reason", ["\u3164", "\u2800", "\u00a0\u3000", "\u115f", "a\u2028b", "a\u2029b", "", "\u034f", "\u0301"]
)
def test_a_reason_that_shows_nothing_or_breaks_the_line_is_refused(reason: str) -> None:
    assert [v.field for v in reason_violations(reason)] == ["reason"]


@pytest.mark.parametrize("reason", ["duplicate record", "Élodie's two records", "\u00a0" * 600 + "padded"])
def test_a_reason_that_says_something_is_taken(reason: str) -> None:
    assert reason_violations(reason) == []
