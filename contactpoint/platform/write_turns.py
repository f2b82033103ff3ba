"""Turns at an SQLite database's one write lock, in order of asking, short writes before batches.

SQLite lets one transaction write at a time, and a writer that finds the lock taken sleeps and
tries again (its busy timeout): whoever tries at the moment the lock comes free takes it, not
whoever has waited longest. Under a flood of council feeds that lottery made a data manager's
shield wait up to 22.7 s and another council's single record 17.8 s (found by probing: three
councils with ten streams each). Here a service's writers take turns instead: first come, first
served, and a short write (a person's call: a data manager's decision, a login, an audit event;
a council's single record) before any batch still waiting (a stream's batch, a schedule's run:
`bulk_writes`), so that it waits at most for the transaction that holds the lock and the short
ones ahead of it. PostgreSQL writes side by side and takes no turns.

The lock is SQLite's still: a command run beside the service (`contactpoint records lifecycle`)
waits for it as before."""

from __future__ import annotations

import contextvars
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

from contactpoint.platform.errors import Unavailable

# Whether the writes made now are batches (a stream's, a schedule's runs): marked by
# `bulk_writes` and carried into worker threads with the context, as `asyncio.to_thread` does.
_BULK = contextvars.ContextVar("contactpoint_bulk_writes", default=False)


@contextmanager
def bulk_writes() -> Iterator[None]:
    """Mark the write transactions opened inside the block (in this thread, or in a worker thread
    given this context) as batches: they take their turn after any short write waiting."""
    token = _BULK.set(True)
    try:
        yield
    finally:
        _BULK.reset(token)


def is_bulk() -> bool:
    """Whether the write transactions opened now are batches (`bulk_writes`)."""
    return _BULK.get()


class WriteTurns:
    """One writer at a time. Writers wait in order of asking, each kind in its own queue, short
    writes (`bulk=False`) before batches; a thread that holds the turn may open a write again
    (SQLite then decides, as before). A writer that waits longer than `wait_seconds` (SQLite's
    own busy timeout) gets Unavailable, as a database locked that long would give."""

    def __init__(self, wait_seconds: float) -> None:
        self._wait_seconds = wait_seconds
        self._changed = threading.Condition()
        self._waiting: dict[bool, deque[object]] = {False: deque(), True: deque()}
        self._holder: int | None = None
        self._depth = 0

    @contextmanager
    def turn(self, *, bulk: bool) -> Iterator[None]:
        """Hold the turn while the block runs (waiting for it first)."""
        self.take(bulk=bulk)
        try:
            yield
        finally:
            self.give_back()

    def waiting(self) -> tuple[int, int]:
        """How many writers wait now: (short writes, batches)."""
        with self._changed:
            return len(self._waiting[False]), len(self._waiting[True])

    def _next(self) -> object | None:
        queue = self._waiting[False] or self._waiting[True]
        return queue[0] if queue else None

    def take(self, *, bulk: bool) -> None:
        """Wait for the turn and hold it (for a transaction whose statements come in several
        steps of one thread: `give_back` in that thread when it ends)."""
        me = threading.get_ident()
        with self._changed:
            if self._holder == me:
                self._depth += 1
                return
            ticket = object()
            queue = self._waiting[bulk]
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

    def give_back(self) -> None:
        """End this thread's hold of the turn (`take`)."""
        with self._changed:
            self._depth -= 1
            if self._depth == 0:
                self._holder = None
                self._changed.notify_all()
