"""Each person's allowance (CONTRACT §3 "Rate and volume"), kept in the gateway's database so that
every gateway replica shares it and it survives a restart.

- **Rate**: at most `rate_per_minute` reads in any minute: the times of the person's reads allowed
  in the last minute are kept, and a read is allowed while fewer than the rate fall in the minute
  before it. A person may use a whole minute's allowance at once, and then waits until the first
  of those reads is a minute old. A refused read is told exactly how long to wait, and does not
  use up allowance. (GCRA, used before, kept one number but let nearly twice the rate through in
  a minute: a whole minute's worth at once, then one every 60/rate seconds; found by probing. It
  still holds rates above `EXACT_UP_TO`, which no person needs.)
- **Volume**: at most `daily_records` distinct children a (UTC) day. Re-reading a child already
  read today costs nothing more; a search that finds nothing, or too many, counts as one item of
  its own, so sweeping dates of birth or names uses the allowance up too. Going over suspends the
  account (the caller does that through identity) and is recorded as a trip. Until identity's
  suspension is seen (its cut-off for the person's tokens, which every verifier learns, is at or
  after the trip), every read is refused and the suspension tried again; once it has been seen and
  an administrator has reinstated the person, a token issued after the trip starts afresh.

None of this imports grpc. A read spends its rate (`allowance_repository.take_rate`: one
statement that stands alone) and `decide_rate` decides whatever can be decided without counting;
then a child not yet counted today is counted by `allowance_repository.count_first_read` (one
statement: the day's count kept on the person's row goes up only while under the limit) or, when
that cannot decide it (the limit reached, a trip since), by `take_item` (one transaction, with the
person's row locked first, that reads the day's reads themselves, records a trip, and writes the
exact count back). Either way two replicas never both spend the last of one allowance.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection

from contactpoint.platform.statements import Transaction
from gateway import allowance_repository as repo

MINUTE = 60.0
# A millisecond's slack: Unix times near 1.7e9 carry float rounding of about 1e-7 per step.
SLACK = 1e-3
# Daily rows are kept a little beyond their day, then dropped; trips for weeks.
KEEP_DAYS = 2
KEEP_TRIP_DAYS = 35
# Identity's clock may be a little behind the gateway's: a suspension this much before a trip
# still counts as that trip's.
CLOCK_SKEW_SECONDS = 5.0
# A suspension asked for takes up to a verifier poll to be seen; it is asked for again only after.
RESUSPEND_AFTER_SECONDS = 5.0


@dataclass(frozen=True)
class Limits:
    """The configured allowance per person."""

    rate_per_minute: int
    daily_records: int


class Verdict(enum.Enum):
    """What the allowance says about one read."""

    ALLOWED = "allowed"
    # Over the per-minute rate: wait `retry_after` seconds.
    RATE_LIMITED = "rate_limited"
    # This read went over the daily limit: suspend the account now.
    OVER_DAILY_LIMIT = "over_daily_limit"
    # The daily limit was already reached with this token (the suspension may not have landed).
    STILL_OVER_DAILY_LIMIT = "still_over_daily_limit"


@dataclass(frozen=True)
class Decision:
    """The verdict on one read, and how long to wait before trying again when refused."""

    verdict: Verdict
    retry_after: float = 0.0
    # Over the daily limit: whether the account must (still) be suspended.
    suspend: bool = False
    # Allowed by the rate, but the item is new today and was left to count once the child is
    # known (`Allowances.decide_read(..., defer_new=True)`): the person's latest trip then.
    uncounted: bool = False
    trip: float | None = None

    @property
    def allowed(self) -> bool:
        """Whether the read may go ahead."""
        return self.verdict is Verdict.ALLOWED


@dataclass(frozen=True)
class Rate:
    """The sliding minute's answer: allowed or not, the wait, and the times of the reads allowed in
    the minute up to `now`, oldest first (with this one, when allowed)."""

    allowed: bool
    retry_after: float
    recent: tuple[float, ...]


# The most reads a minute held exactly (`sliding`): each read then reads and writes up to this
# many times. A higher rate, which no person needs (the benchmarks raise it to measure the
# bookkeeping alone), is held by GCRA instead (`gcra`: one number; a whole minute's worth at once,
# then one every 60/rate seconds, so up to nearly twice the rate in one minute).
EXACT_UP_TO = 1000


@dataclass(frozen=True)
class GcraRate:
    """GCRA's answer: allowed or not, the wait, and the new theoretical arrival time."""

    allowed: bool
    retry_after: float
    tat: float


def gcra(tat: float, now: float, *, per_minute: int) -> GcraRate:
    """One read at `now` against a theoretical arrival time `tat`, allowing `per_minute` a minute
    (a full minute's worth at once)."""
    interval = MINUTE / per_minute
    new_tat = max(tat, now) + interval
    if new_tat - now > MINUTE + SLACK:
        return GcraRate(False, new_tat - MINUTE - now, tat)
    return GcraRate(True, 0.0, new_tat)


def minute_before(now: float) -> float:
    """Reads after this count in the minute up to `now` (a millisecond's slack for rounding)."""
    return now - MINUTE + SLACK


def in_the_last_minute(recent: Iterable[float], now: float) -> list[float]:
    """The times among `recent` in the minute up to `now`, in order."""
    return sorted(t for t in recent if t > minute_before(now))


def sliding(recent: Iterable[float], now: float, *, per_minute: int) -> Rate:
    """One read at `now`, given the times of the person's reads allowed before it: allowed while
    fewer than `per_minute` of them fall in the minute before it; refused, the wait is until the
    oldest that counts is a minute old."""
    kept = in_the_last_minute(recent, now)
    if len(kept) >= per_minute:
        return Rate(False, max(kept[-per_minute] + MINUTE - now, 0.0), tuple(kept))
    return Rate(True, 0.0, (*kept, now))


def day_of(now: float) -> str:
    """The UTC day of a Unix time, as YYYY-MM-DD."""
    return datetime.fromtimestamp(now, UTC).date().isoformat()


def until_tomorrow(now: float) -> float:
    """Seconds until the next UTC midnight."""
    moment = datetime.fromtimestamp(now, UTC)
    midnight = datetime(moment.year, moment.month, moment.day, tzinfo=UTC) + timedelta(days=1)
    return (midnight - moment).total_seconds()


@dataclass(frozen=True)
class Person:
    """Whose allowance: the account, when their token was issued, and the moment identity last
    suspended it, as the gateway's token verifier knows it (not when it last cut their tokens off:
    a password change does that too)."""

    subject: str
    issued_at: float
    suspended_at: float | None = None


def _over_already(person: Person, trip: float | None, now: float) -> Decision | None:
    """Refused outright when the person went over the limit and either their token predates the
    trip or identity's suspension has not been seen yet (identity was unreachable: then, after a
    few seconds, the caller tries to suspend again)."""
    if trip is None:
        return None
    # Found by review: with the suspension refused (the person's token expiring as it was asked
    # for), a password change moved the cut-off past the trip, passed for the suspension, and the
    # count began afresh, over and over, the account never suspended.
    landed = person.suspended_at is not None and person.suspended_at >= trip - CLOCK_SKEW_SECONDS
    if person.issued_at <= trip or not landed:
        retry = not landed and now - trip >= RESUSPEND_AFTER_SECONDS
        return Decision(Verdict.STILL_OVER_DAILY_LIMIT, until_tomorrow(now), suspend=retry)
    return None


def _counted_since_trip(read_at: float | None, trip: float | None) -> bool:
    """Whether an item was counted after the trip (or, with no trip, at all) today: after a trip,
    a suspension and a reinstatement, only reads since the trip count."""
    return read_at is not None and (trip is None or read_at > trip)


async def _count_item(tx: Transaction, *, person: Person, item: str, now: float, limits: Limits) -> Decision:
    day = day_of(now)
    state = await repo.day_state(tx, person.subject, day, item)
    refused = _over_already(person, state.trip, now)
    if refused is not None:
        return refused
    if _counted_since_trip(state.item_read_at, state.trip):
        return Decision(Verdict.ALLOWED)
    if state.counted >= limits.daily_records:
        await repo.add_trip(tx, person.subject, day, now)
        return Decision(Verdict.OVER_DAILY_LIMIT, until_tomorrow(now), suspend=True)
    await repo.count_read(
        tx, person.subject, day, item, now, known=state.item_read_at is not None, counted=state.counted + 1
    )
    return Decision(Verdict.ALLOWED)


def decide_rate(
    taken: repo.RateTaken, *, person: Person, item: str | None, now: float, limits: Limits
) -> Decision | None:
    """Decide a read from its rate (spent or not, by `repo.take_rate`) when that is all it needs:
    refused over the rate or the daily limit, or allowed when no item is known yet (a search) or
    the item (a child's id) was counted already today. None: the item is new today and must be
    counted by `take_item` (a transaction of its own). A re-read is therefore one statement on
    PostgreSQL, the common read's whole cost."""
    if not taken.allowed:
        per_minute = limits.rate_per_minute
        if per_minute <= EXACT_UP_TO:
            wait = sliding(taken.recent, now, per_minute=per_minute).retry_after
        else:
            wait = gcra(taken.tat, now, per_minute=per_minute).retry_after
        return Decision(Verdict.RATE_LIMITED, wait)
    refused = _over_already(person, taken.trip, now)
    if refused is not None:
        # A search too: nothing is read while the account is over (and the suspension is retried).
        return refused
    if item is None or _counted_since_trip(taken.item_read_at, taken.trip):
        return Decision(Verdict.ALLOWED)
    return None


async def take_item(tx: Transaction, *, person: Person, item: str, now: float, limits: Limits) -> Decision:
    """Count an item against the day's allowance: a child about to be read for the first time
    today, or what a search turned out to be. `tx` is a transaction of its own; the person's row is
    locked first."""
    await repo.lock_person(tx, person.subject)
    return await _count_item(tx, person=person, item=item, now=now, limits=limits)


def forget_old_days(conn: Connection, *, now: float) -> int:
    """Drop daily rows older than `KEEP_DAYS` (trips older than `KEEP_TRIP_DAYS`); how many reads
    were dropped."""
    today = datetime.fromtimestamp(now, UTC).date()
    return repo.forget_before(
        conn,
        reads_before=(today - timedelta(days=KEEP_DAYS)).isoformat(),
        trips_before=(today - timedelta(days=KEEP_TRIP_DAYS)).isoformat(),
    )
