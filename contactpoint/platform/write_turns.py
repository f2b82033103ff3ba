"""Turns at an SQLite database's one write lock, in order of asking, short writes before batches.

SQLite lets one transaction write at a time, and a writer that finds the lock taken sleeps and
tries again (its busy timeout): whoever tries at the moment the lock comes free takes it, not
whoever has waited longest. Under a flood of council feeds that lottery made a data manager's
shield wait up to 22.7 s and another council's single record 17.8 s (found by probing: three
councils with ten streams each). Here a service's writers take turns instead: first come, first
served, a person's write (a data manager's decision, a login, an audit event) before any other,
and a council's single record and a stream's batch taking turns when both wait (`Kind`), so that a
person waits at most for the transaction that holds the lock and a single record for one batch.
PostgreSQL writes side by side and takes no turns.

The lock is SQLite's still: a command run beside the service (`contactpoint records lifecycle`)
waits for it as before."""

from __future__ import annotations

import contextlib
import contextvars
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from enum import IntEnum

from contactpoint.platform.errors import Unavailable


class Kind(IntEnum):
    """What a write transaction is, for its turn."""

    PERSON = 0  # a person's call (a data manager's decision, a login, an audit event): first
    RECORD = 1  # a council's single record
    BATCH = 2  # a stream's batch, a schedule's run


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
    person's writes before any other; a single record and a batch, when both wait, take turns
    (neither starves the other: found by re-probing, single records sent back to back by two
    councils stopped every stream while short writes came first). A thread that holds the turn
    may open a write again (SQLite then decides, as before). A writer that waits longer than
    `wait_seconds` (SQLite's own busy timeout) gets Unavailable, as a database locked that long
    would give."""

    def __init__(self, wait_seconds: float) -> None:
        self._wait_seconds = wait_seconds
        self._changed = threading.Condition()
        self._waiting: dict[Kind, deque[object]] = {kind: deque() for kind in Kind}
        self._holder: int | None = None
        self._depth = 0
        self._last_feed = Kind.BATCH  # of a single record and a batch, the kind served last

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
            return (batches if self._last_feed == Kind.RECORD else records)[0]
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
            if kind != Kind.PERSON:
                self._last_feed = kind

    def give_back(self) -> None:
        """End this thread's hold of the turn (`take`)."""
        with self._changed:
            self._depth -= 1
            if self._depth == 0:
                self._holder = None
                self._changed.notify_all()
