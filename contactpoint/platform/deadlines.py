"""A caller's deadline, for work that must not be stored once the caller has given up on it.

A write its caller has stopped waiting for must not commit: the caller has answered someone else
as if it failed (found by probing: with the audit database's lock held for 12 s, the gateway
answered a read UNAVAILABLE with no child after 5 s, and the audit service then stored its event
as ALLOWED; the child's subject-access report showed a disclosure that never happened). So such a
write checks, just before it commits, that its caller still waits, with a margin for the answer to
reach it; if not, it rolls back (`DeadlinePassed`: nothing stored)."""

from __future__ import annotations

import time

from contactpoint.platform.errors import Unavailable
from contactpoint.platform.types import Context

# Kept back from a caller's deadline for the answer to reach it after the commit (a quarter of
# the time it gave, for a short one).
ANSWER_MARGIN_SECONDS = 0.5


class DeadlinePassed(Unavailable):
    """The caller's deadline passed (or is too near) before the write could commit: rolled back.
    Its ErrorInfo reason (`DEADLINE_PASSED`) tells a calling service that nothing was stored, so
    that what it sent may be sent again."""

    reason = "DEADLINE_PASSED"

    def __init__(self) -> None:
        super().__init__("the caller's deadline passed before this could be stored; nothing was stored")


def commit_by(context: Context) -> float | None:
    """The latest `time.monotonic()` at which a write for this call may still commit (None: the
    caller set no deadline)."""
    remaining = context.time_remaining()
    if remaining is None:
        return None
    return time.monotonic() + remaining - min(ANSWER_MARGIN_SECONDS, remaining / 4)


# Sent by a service appending events for requests whose callers wait less than its call does (the
# gateway's audit writer): commit within this many milliseconds or not at all. Its own call's
# deadline is then longer, so that the answer "too late, nothing stored" always reaches it (found
# by probing: with the call's deadline the same as the earliest caller's, a loaded host delivered
# that answer after it, and the sender could not tell what was stored).
COMMIT_WITHIN = "x-contactpoint-commit-within-ms"


def asked_commit_by(context: Context) -> float | None:
    """`commit_by(context)`, or sooner when the caller asked for it (`COMMIT_WITHIN`)."""
    until = commit_by(context)
    for key, value in context.invocation_metadata() or ():
        if key == COMMIT_WITHIN:
            try:
                asked = time.monotonic() + max(int(value), 0) / 1000
            except ValueError:
                return until  # not a number: ignored, as an unknown header would be
            return asked if until is None else min(until, asked)
    return until


def deadline_of(context: Context | None) -> float | None:
    """`commit_by(context)`, or None without a context."""
    return None if context is None else commit_by(context)


def late(until: float | None) -> bool:
    """Whether a write that must commit by `until` is too late to."""
    return until is not None and time.monotonic() > until


def still_in_time(until: float | None) -> None:
    """Raise `DeadlinePassed` (inside a transaction: it rolls back) when it is too late to commit."""
    if late(until):
        raise DeadlinePassed
