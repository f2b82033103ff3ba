"""What a receiver makes of a sender's "commit by" headers (`deadlines.asked_commit_by`)."""

from __future__ import annotations

import time
from typing import Any

from contactpoint.platform.deadlines import COMMIT_BY_WALL, COMMIT_WITHIN, asked_commit_by


class _Context:
    def __init__(self, metadata: tuple[tuple[str, str], ...], remaining: float | None = None) -> None:
        self._metadata = metadata
        self._remaining = remaining

    def time_remaining(self) -> float | None:
        return self._remaining

    def invocation_metadata(self) -> Any:
        return self._metadata


def _wall_ms(seconds_from_now: float) -> str:
    return str(int((time.time() + seconds_from_now) * 1000))


def test_the_wall_clock_moment_is_kept_exactly_not_later() -> None:
    # Found by review: 0.25 s was added to the moment for clocks' differences, so an event whose
    # caller gave a 0.5 s deadline (a margin of 0.125 s) could commit after its caller gave up.
    by = asked_commit_by(_Context(((COMMIT_BY_WALL, _wall_ms(0.1)),)))  # type: ignore[arg-type]
    assert by is not None
    assert by - time.monotonic() <= 0.1


def test_the_earliest_of_the_headers_and_the_calls_own_deadline_holds() -> None:
    now = time.monotonic()
    by = asked_commit_by(
        _Context(((COMMIT_WITHIN, "5000"), (COMMIT_BY_WALL, _wall_ms(2.0))), remaining=30.0)  # type: ignore[arg-type]
    )
    assert by is not None and now + 1.9 <= by <= time.monotonic() + 2.0
    by = asked_commit_by(_Context(((COMMIT_WITHIN, "300"), (COMMIT_BY_WALL, _wall_ms(2.0))), remaining=30.0))  # type: ignore[arg-type]
    assert by is not None and by <= time.monotonic() + 0.3
    by = asked_commit_by(_Context(((COMMIT_BY_WALL, _wall_ms(20.0)),), remaining=1.0))  # type: ignore[arg-type]
    assert by is not None and by <= time.monotonic() + 1.0


def test_headers_that_are_not_times_are_ignored() -> None:
    for value in ("soon", "-5", "1e3", "١٢٣", "9" * 16, ""):
        assert asked_commit_by(_Context(((COMMIT_BY_WALL, value), (COMMIT_WITHIN, value)))) is None  # type: ignore[arg-type]
