"""Enforcing each person's allowance at the gateway: the per-minute rate and the daily limit of
distinct children (see `gateway.allowance`). A refusal is RESOURCE_EXHAUSTED with RetryInfo, and
is audited (`RATE_LIMITED`) like every other request. Going over the daily limit also suspends the
account through identity and makes the request's audit event a HIGH alert."""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from contactpoint.platform.audited import AuditedRequest
from contactpoint.platform.auth import Principal
from contactpoint.platform.db import retrying
from contactpoint.platform.errors import ContactPointError, ResourceExhausted
from contactpoint.platform.logging import get_logger
from contactpoint.platform.metrics import Metrics
from contactpoint.platform.statements import Statements
from contactpoint.records.v1 import records_service_pb2 as records_pb
from gateway import allowance
from gateway import allowance_repository as repo
from gateway.allowance import (
    EXACT_UP_TO,
    MINUTE,
    SLACK,
    Decision,
    Limits,
    Person,
    Verdict,
    day_of,
    minute_before,
)
from gateway.identity_client import IdentityClient

log = get_logger(__name__)
T = TypeVar("T")


def child_item(contactpoint_id: str) -> str:
    """The daily-allowance item of reading one child."""
    return f"child:{contactpoint_id}"


def search_item(request: records_pb.FindChildRecordRequest, key: bytes) -> str:
    """The daily-allowance item of a search that found nothing or too many: its criteria, as the
    records service compares them (case and surrounding space ignored), under a keyed hash (HMAC
    with `key`), so that the allowance table cannot be asked whether someone searched for a
    given name and date of birth."""
    criteria = "\x1f".join(
        (
            request.family_name.strip().casefold(),
            request.given_name.strip().casefold(),
            f"{request.date_of_birth.year:04d}-{request.date_of_birth.month:02d}-{request.date_of_birth.day:02d}",
            request.postcode.replace(" ", "").casefold(),
            str(request.gender),
            str(request.fuzzy),
        )
    )
    return "search:" + hmac.new(key, criteria.encode(), hashlib.sha256).hexdigest()[:40]


class Allowances:
    """Each person's rate and daily limit, shared by every gateway replica through `db`."""

    def __init__(
        self,
        store: Statements,
        limits: Limits,
        identity: IdentityClient,
        suspended_since: Callable[[str], float | None],
        clock: Callable[[], float] = time.time,
        metrics: Metrics | None = None,
        search_key: bytes | None = None,
    ) -> None:
        # Keys the items of unsuccessful searches; replicas must share it (`main` derives it from
        # the gateway's own client secret, which only the gateway holds).
        self.search_key = search_key if search_key is not None else os.urandom(32)
        metrics = metrics or Metrics()
        self._refusals = metrics.counter(
            "contactpoint_gateway_limit_refusals", "reads refused by a per-person limit", ("limit",)
        )
        self._suspensions = metrics.counter(
            "contactpoint_gateway_suspensions",
            "accounts suspended for the daily limit, by result",
            ("result",),
        )
        self._store = store
        self.limits = limits
        self._identity = identity
        self._suspended_since = suspended_since
        self._clock = clock

    def _person(self, principal: Principal) -> Person:
        return Person(principal.subject, principal.issued_at, self._suspended_since(principal.subject))

    async def _retrying(self, run: Callable[[], Awaitable[T]]) -> T:
        """Run `run` (database work), and once more when it lost a race (a deadlock)."""
        return await retrying(run, busy="the allowance store is busy; retry", attempts=2)

    async def decide_item(self, person: Person, item: str, now: float) -> Decision:
        """Count `item` for the person's day, in one transaction of its own."""

        async def count() -> Decision:
            async with self._store.transaction() as tx:
                return await allowance.take_item(tx, person=person, item=item, now=now, limits=self.limits)

        return await self._retrying(count)

    async def decide_read(
        self, person: Person, item: str | None, now: float, *, defer_new: bool = False
    ) -> Decision:
        """Spend one read of the person's rate and count `item` (when known) for the day. A re-read
        of a child already counted today is one statement; a first read under the limit adds one
        more; the read that reaches the limit, the transaction that records the trip. With
        `defer_new`, an item not yet counted today is left uncounted (`Decision.uncounted`), for
        `count_child` once records has said which child it is."""
        day, interval = day_of(now), MINUTE / self.limits.rate_per_minute
        taken = await self._retrying(
            lambda: repo.take_rate(
                self._store,
                person.subject,
                now=now,
                since=minute_before(now),
                per_minute=self.limits.rate_per_minute,
                gcra=None if self.limits.rate_per_minute <= EXACT_UP_TO else (interval, MINUTE + SLACK),
                day=day,
                item=item,
            )
        )
        decision = allowance.decide_rate(taken, person=person, item=item, now=now, limits=self.limits)
        if decision is None:
            if item is None:  # decide_rate decides every read without an item
                raise RuntimeError("a read without an item was left undecided")
            if defer_new:
                return Decision(Verdict.ALLOWED, uncounted=True, trip=taken.trip)
            if await self._retrying(
                lambda: repo.count_first_read(
                    self._store,
                    person.subject,
                    day=day,
                    item=item,
                    at=now,
                    trip=taken.trip,
                    limit=self.limits.daily_records,
                )
            ):
                return Decision(Verdict.ALLOWED)
            decision = await self.decide_item(person, item, now)
        return decision

    async def take_read(
        self, principal: Principal, call: AuditedRequest, item: str | None, *, defer_new: bool = False
    ) -> Decision:
        """Spend one read of the person's rate (and count `item` for the day, when known, unless
        `defer_new` leaves a new one to `count_child`); raises ResourceExhausted when refused."""
        decision = await self.decide_read(self._person(principal), item, self._clock(), defer_new=defer_new)
        await self._enforce(decision, principal, call)
        return decision

    async def count_child(
        self, principal: Principal, call: AuditedRequest, read: Decision, asked: str, child: str
    ) -> None:
        """Count, once records has answered, the child a read left uncounted (`take_read` with
        `defer_new`): `child` is the child records answered for the id `asked` (its survivor, for a
        retired id), so a retired id and its survivor are one child a day (found by probing: a
        retired id read after its survivor counted twice and, at the limit, suspended the
        person). Raises ResourceExhausted when that goes over the daily limit."""
        if not read.uncounted:
            return
        person, now = self._person(principal), self._clock()
        if child == asked:
            # Known uncounted a moment ago: one statement, unless it reaches the limit.
            counted = await self._retrying(
                lambda: repo.count_first_read(
                    self._store,
                    person.subject,
                    day=day_of(now),
                    item=child,
                    at=now,
                    trip=read.trip,
                    limit=self.limits.daily_records,
                )
            )
            if counted:
                return
        await self._enforce(await self.decide_item(person, child, now), principal, call)

    async def take_item(self, principal: Principal, call: AuditedRequest, item: str) -> None:
        """Count what a read turned out to be (a search's result) for the day; raises
        ResourceExhausted when that goes over the daily limit."""
        decision = await self.decide_item(self._person(principal), item, self._clock())
        await self._enforce(decision, principal, call)

    async def forget_old_days(self) -> int:
        """Drop daily rows of past days (a scheduled chore)."""
        now = self._clock()
        return await self._store.db.write(lambda c: allowance.forget_old_days(c, now=now))

    async def _suspend(self, principal: Principal, call: AuditedRequest) -> None:
        """Suspend the account through identity. Until every verifier sees the suspension, each
        read by this person is refused (and, after a few seconds, the suspension asked for again)."""
        try:
            await self._identity.suspend(
                principal, f"over the daily limit of {self.limits.daily_records} distinct children"
            )
        except ContactPointError:
            self._suspensions.labels("failed").inc()
            call.details.append("suspending the account failed; will retry")
            log.error("limits.suspend_failed", subject=principal.subject)
            return
        self._suspensions.labels("suspended").inc()
        call.details.append("account suspended")

    async def _enforce(self, decision: Decision, principal: Principal, call: AuditedRequest) -> None:
        if decision.allowed:
            return
        if decision.verdict is Verdict.RATE_LIMITED:
            self._refusals.labels("rate").inc()
            call.details.append(f"over {self.limits.rate_per_minute} reads a minute")
            raise ResourceExhausted(
                f"at most {self.limits.rate_per_minute} reads a minute; retry in "
                f"{decision.retry_after:.1f} s",
                decision.retry_after,
                reason="RATE_LIMITED",
            )
        self._refusals.labels("daily").inc()
        call.severity = "HIGH"
        call.details.append(f"daily limit of {self.limits.daily_records} distinct children reached")
        if decision.suspend:
            await self._suspend(principal, call)
        raise ResourceExhausted(
            f"the daily limit of {self.limits.daily_records} distinct children is reached; the account "
            "is suspended until an administrator reinstates it",
            # CONTRACT §7: RESOURCE_EXHAUSTED carries RetryInfo. The earliest a read can succeed
            # again is when the day's count starts afresh, and then only once reinstated: the
            # message and the reason (DAILY_LIMIT) say so.
            allowance.until_tomorrow(time.time()),
            reason="DAILY_LIMIT",
        )
