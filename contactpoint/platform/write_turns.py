"""Turns at an SQLite database's one write lock, in order of asking, short writes before batches.

SQLite lets one transaction write at a time, and a writer that finds the lock taken sleeps and
tries again (its busy timeout): whoever tries at the moment the lock comes free takes it, not
whoever has waited longest. Under a flood of council feeds that lottery made a data manager's
shield wait up to 22.7 s and another council's single record 17.8 s (found by probing: three
councils with ten streams each). Here a service's writers take turns instead: first come, first
served, a person's write (a data manager's decision, a login, an audit event) before any other,
and a council's single records and streams' batches sharing the lock's time when both wait (`Kind`),
so that a person waits at most for the transaction that holds the lock and a single record about
as long. PostgreSQL writes side by side and takes no turns.

The lock is SQLite's still: a command run beside the service (`contactpoint records lifecycle`)
waits for it as before."""

from __future__ import annotations

import contextlib
import contextvars
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import IntEnum
from typing import Final

from contactpoint.platform.errors import Unavailable


class Kind(IntEnum):
    """What a write transaction is, for its turn."""

    PERSON = 0  # a person's call (a data manager's decision, a login, an audit event): first
    RECORD = 1  # a council's single record
    BATCH = 2  # a stream's batch, a schedule's run


# Of the lock's time, single records and batches each get half while both wait. What one kind
# used while the other did not wait is remembered only up to this: a kind that waited through
# a long run of the other's goes first for at most this long.
SHARE_SECONDS: Final = 1.0

# The kind of the writes made now: marked by `writing_as` and carried into worker threads with the
# context, as `asyncio.to_thread` does.
_KIND = contextvars.ContextVar("contactpoint_write_kind", default=Kind.PERSON)


@contextmanager
def writing_as(kind: Kind) -> Iterator[None]:
    """Mark the write transactions opened inside the block (in this thread, or in a worker thread
    given this context) as of `kind`."""
    token = _KIND.set(kind)
    try:
        yield
    finally:
        _KIND.reset(token)


def bulk_writes() -> contextlib.AbstractContextManager[None]:
    """`writing_as(Kind.BATCH)`: a stream's batches, a schedule's runs."""
    return writing_as(Kind.BATCH)


def current_kind() -> Kind:
    """The kind of the write transactions opened now (`writing_as`)."""
    return _KIND.get()


class WriteTurns:
    """One writer at a time. Writers wait in order of asking, each kind in its own queue: a
    person's writes before any other; single records and batches, when both wait, share the
    lock's time: the kind that has held it less goes next (neither starves the other: found by
    re-probing, single records sent back to back by two councils stopped every stream while short
    writes came first; and taking turn about, a record of a few milliseconds after each batch of
    half a second, gave single records 1.7 a second under three councils' streams). A thread that
    holds the turn may open a write again (SQLite then decides, as before). A writer that waits
    longer than `wait_seconds` (SQLite's own busy timeout) gets Unavailable, as a database locked
    that long would give."""

    def __init__(self, wait_seconds: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._wait_seconds = wait_seconds
        self._clock = clock  # for the shares of the lock's time
        self._changed = threading.Condition()
        self._waiting: dict[Kind, deque[object]] = {kind: deque() for kind in Kind}
        self._holder: int | None = None
        self._depth = 0
        self._held = (Kind.PERSON, 0.0)  # the holder's kind, and since when
        # Seconds single records have held the lock less than batches (negative: more), within
        # ±SHARE_SECONDS.
        self._records_owed = 0.0

    @contextmanager
    def turn(self, *, kind: Kind) -> Iterator[None]:
        """Hold the turn while the block runs (waiting for it first)."""
        self.take(kind=kind)
        try:
            yield
        finally:
            self.give_back()

    def waiting(self) -> tuple[int, int, int]:
        """How many writers wait now: (people's, single records, batches)."""
        with self._changed:
            return tuple(len(self._waiting[kind]) for kind in Kind)  # type: ignore[return-value]

    def _next(self) -> object | None:
        people, records, batches = (self._waiting[kind] for kind in Kind)
        if people:
            return people[0]
        if records and batches:
            return (records if self._records_owed >= 0 else batches)[0]
        queue = records or batches
        return queue[0] if queue else None

    def take(self, *, kind: Kind) -> None:
        """Wait for the turn and hold it (for a transaction whose statements come in several
        steps of one thread: `give_back` in that thread when it ends)."""
        me = threading.get_ident()
        with self._changed:
            if self._holder == me:
                self._depth += 1
                return
            ticket = object()
            queue = self._waiting[kind]
            queue.append(ticket)
            deadline = time.monotonic() + self._wait_seconds
            while self._holder is not None or self._next() is not ticket:
                left = deadline - time.monotonic()
                if left <= 0:
                    queue.remove(ticket)
                    self._changed.notify_all()  # the writer behind may now be first
                    raise Unavailable("the database is busy; retry")
                self._changed.wait(left)
            queue.popleft()
            self._holder, self._depth = me, 1
            self._held = (kind, self._clock())

    def give_back(self) -> None:
        """End this thread's hold of the turn (`take`)."""
        with self._changed:
            self._depth -= 1
            if self._depth == 0:
                kind, since = self._held
                used = self._clock() - since
                if kind != Kind.PERSON:
                    owed = self._records_owed + (used if kind == Kind.BATCH else -used)
                    self._records_owed = max(-SHARE_SECONDS, min(SHARE_SECONDS, owed))
                self._holder = None
                self._changed.notify_all()


@contextmanager
def turn_when_asked(turns: WriteTurns | None) -> Iterator[Callable[[], None]]:
    """A function that takes `turns`' turn (once, as of `current_kind`), held until the block
    ends: for a transaction that needs the turn only from some point on, to its commit (records'
    key locks on PostgreSQL). The block's transaction must hold no lock before asking that a
    holder of the turn could wait for. Without `turns`, asking does nothing."""
    taken = False

    def take() -> None:
        nonlocal taken
        if turns is not None and not taken:
            turns.take(kind=current_kind())
            taken = True

    try:
        yield take
    finally:
        if taken:
            assert turns is not None
            turns.give_back()
