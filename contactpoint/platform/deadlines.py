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

# Sent with it: the same moment on the wall clock (Unix milliseconds). A time to wait is counted
# from when the receiver reads it, so a receiver that stalled after the request reached it (its
# process paused or starved, its event loop blocked) counts from its waking, as gRPC's own
# deadline does; the wall clock moves on meanwhile (found by probing: the audit process stopped for
# 2.5 s, then stored as ALLOWED the event of a read whose caller had given up at 1 s). The moment
# is taken as it is, with nothing added for two hosts' clocks differing (a review found 0.25 s
# added let an event commit after a caller's deadline under 1 s, whose margin is less): a receiver
# whose clock runs ahead of its sender's refuses that much early, and fails closed; one whose clock
# runs behind is held by `COMMIT_WITHIN` as before, so a stall is caught less the clocks'
# difference. Hosts keep their clocks by NTP, within milliseconds.
COMMIT_BY_WALL = "x-contactpoint-commit-by-unix-ms"


def commit_headers(until: float) -> tuple[tuple[str, str], ...]:
    """The headers asking a receiver to commit by `until` (a `time.monotonic()` moment) or not at all."""
    remaining = until - time.monotonic()
    return (
        (COMMIT_WITHIN, str(max(int(remaining * 1000), 0))),
        (COMMIT_BY_WALL, str(int((time.time() + remaining) * 1000))),
    )


def asked_commit_by(context: Context) -> float | None:
    """`commit_by(context)`, or sooner when the caller asked for it (`COMMIT_WITHIN`,
    `COMMIT_BY_WALL`). A header that is not a number is ignored, as an unknown header would be."""
    bys = [commit_by(context)]
    for key, value in context.invocation_metadata() or ():
        if key not in (COMMIT_WITHIN, COMMIT_BY_WALL) or not (value.isascii() and value.isdigit()):
            continue
        if len(value) > 15:  # not a time this side of the year 30000: ignored
            continue
        now = time.monotonic()
        if key == COMMIT_WITHIN:
            bys.append(now + int(value) / 1000)
        else:
            bys.append(now + int(value) / 1000 - time.time())
    asked = [by for by in bys if by is not None]
    return min(asked) if asked else None


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
