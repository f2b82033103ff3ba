"""Argon2 work, bounded and kept apart from everything else identity does.

Each password or client-secret check costs about 64 MiB and tens of milliseconds of CPU. Done on
the shared thread pool, a flood of anonymous logins starved the verification-state polls the
other services depend on (and every token in the suite was refused). Here each kind of caller has
its own small pool (`workers` checks at once) and a short queue; beyond that a check is refused at
once (RESOURCE_EXHAUSTED, with RetryInfo), without doing the work. A per-username throttle (one
check at a time, a few a minute) means a flood aimed at one account is refused before it costs
anything; such a refusal says only "login failed", and, never checked, is no failed login (the
flood's checked attempts lock the account). Attempts on one username within its rate wait their
turn and are each checked: a client's parallel or repeated sign-ins are judged on their
credentials, so a person whose client signs in twice at once is not locked out by its own attempts.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from contactpoint.platform.errors import ResourceExhausted
from services.identity import credentials

BUSY = "too many sign-ins are in progress; retry shortly"
# The longest a sign-in waits for the ones before it on the same username (then refused,
# unchecked): long enough for a burst of them to be checked one after another (each takes about
# 0.2 s), so that concurrent attempts are each answered on their credentials and lock the account
# as the contract says (found by review: at 2 s, the tenth of twelve concurrent wrong passwords was
# RESOURCE_EXHAUSTED), and short of the gateway's login deadline (11 s).
TURN_WAIT_SECONDS = 8.0
# A username's burst of attempts: at least this many, and never fewer than the failures that lock
# its account, so the throttle never stands between an attacker's failures and the lockout (found
# by review: with 15 to lock, the attempts after the tenth were refused unchecked and uncounted, so
# 15 wrong passwords in a row left the account open).
MIN_BURST = 10


class HashingGate:
    """Argon2 checks for one kind of caller: at most `workers` at once, `queue` waiting."""

    def __init__(self, name: str, *, workers: int, queue: int) -> None:
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"argon2-{name}")
        self._capacity = workers + queue
        self._admitted = 0

    async def verify(self, stored_hash: str | None, secret: str) -> bool:
        """Whether `secret` matches (full work even without a hash); ResourceExhausted when full."""
        if self._admitted >= self._capacity:
            raise ResourceExhausted(BUSY, 1.0, reason="SIGN_IN_BUSY")
        self._admitted += 1
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor, credentials.verify_secret, stored_hash, secret)
        finally:
            self._admitted -= 1

    def close(self) -> None:
        """Stop the pool (checks in flight finish; queued ones are dropped)."""
        self._executor.shutdown(wait=False, cancel_futures=True)


class TurnNotReached(ResourceExhausted):
    """A sign-in that waited its turn on its username too long (the ones before it are slow): it
    was never checked, so it is no failed login; the caller is told to retry."""


@dataclass
class _Name:
    tat: float = 0.0
    # One check at a time: an attempt holds the turn from admission until its check is over.
    turn: asyncio.Lock = field(default_factory=asyncio.Lock)
    waiting: int = 0  # attempts holding or waiting for the turn


class UsernameThrottle:
    """At most one check at a time per username, the others admitted waiting their turn, and
    `per_minute` a minute (`burst` at once): in memory, per identity process, bounded to
    `max_names` recent names (names with attempts under way are kept)."""

    def __init__(self, *, per_minute: int, burst: int, max_names: int = 10_000) -> None:
        self._interval = 60.0 / per_minute
        self._tolerance = self._interval * (burst - 1)
        self._burst = burst
        self._names: OrderedDict[str, _Name] = OrderedDict()
        self._max = max_names

    async def admit(self, username: str, now: float | None = None, *, wait: float | None = None) -> None:
        """Wait for `username`'s turn to be checked, at most `wait` seconds when given and never
        more than `TURN_WAIT_SECONDS` (give it back with `release`); ResourceExhausted at once,
        without waiting, when the name is over its rate."""
        now = time.monotonic() if now is None else now
        entry = self._names.pop(username, None) or _Name()
        self._names[username] = entry
        self._forget_oldest()
        start = max(entry.tat, now)
        if start - now > self._tolerance or entry.waiting >= self._burst:
            wait = max(0.5, start - now - self._tolerance)
            raise ResourceExhausted(
                "too many sign-in attempts for this account; retry shortly", wait, "SIGN_IN_BUSY"
            )
        entry.tat = start + self._interval
        entry.waiting += 1
        try:
            longest = TURN_WAIT_SECONDS if wait is None else max(0.0, min(wait, TURN_WAIT_SECONDS))
            await asyncio.wait_for(entry.turn.acquire(), timeout=longest)
        except TimeoutError:
            entry.waiting -= 1
            raise TurnNotReached(
                "sign-ins for this account are in progress; retry shortly", 1.0, "SIGN_IN_BUSY"
            ) from None
        except BaseException:
            entry.waiting -= 1
            raise

    def _forget_oldest(self) -> None:
        over = len(self._names) - self._max
        if over <= 0:
            return
        idle = [name for name, entry in itertools.islice(self._names.items(), over) if not entry.waiting]
        for name in idle:
            del self._names[name]

    def forget(self, username: str) -> None:
        """Start `username` afresh (an administrator reinstated the person)."""
        entry = self._names.get(username)
        if entry is not None:
            entry.tat = 0.0

    def release(self, username: str) -> None:
        """The check for `username` is over: the next attempt waiting may go."""
        entry = self._names.get(username)
        if entry is not None and entry.turn.locked():
            entry.waiting -= 1
            entry.turn.release()


@dataclass
class Hashing:
    """Identity's Argon2 work: people's logins and machines' token requests on pools of their
    own, and the per-username throttle."""

    people: HashingGate
    machines: HashingGate
    usernames: UsernameThrottle

    @classmethod
    def from_settings(
        cls, *, workers: int, queue: int, per_username_per_minute: int, max_failed_logins: int
    ) -> Hashing:
        """Pools and throttle as configured (the burst: `MIN_BURST`)."""
        burst = max(min(MIN_BURST, per_username_per_minute), max_failed_logins)
        return cls(
            HashingGate("people", workers=workers, queue=queue),
            HashingGate("machines", workers=1, queue=queue),
            UsernameThrottle(per_minute=per_username_per_minute, burst=burst),
        )

    def close(self) -> None:
        """Stop both pools."""
        self.people.close()
        self.machines.close()
