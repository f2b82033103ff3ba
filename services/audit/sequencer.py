"""Group commit for the audit log: appends that arrive together are written together.

Every `AppendEvent` used to be its own transaction: lock the tree state, insert one leaf, sign one
head, commit. Under load the lock made appends queue one behind another, each paying a commit and a
signature (about 230 appends/s however many were in flight). The sequencer gathers the appends
waiting while a batch is written into the next batch: one transaction, one signed head over
exactly the leaves up to its last, one commit (Trillian's sequencer, Tessera's batching).

- A caller is answered with its leaf index only once its batch has committed: never "written"
  before it is durable. If the batch fails, every caller in it gets the error and nothing of the
  batch is stored (fail closed; the caller's request fails UNAVAILABLE).
- With one append in flight a batch holds one event: no waiting is added to gather a batch.
- Events are checked before they join a batch, so a bad one is refused alone.
- Several events sent in one call (`AppendEvents`) join the same batch together: they are stored
  all or none, in the order sent.
- Each audit replica has its own sequencer; their batches are serialised by the tree state's row
  lock, exactly as single appends were.
- An event whose caller has stopped waiting is not stored: each call's deadline (less a margin for
  the answer) bounds its batch's commit. A batch that cannot commit in time is rolled back and
  written again without the calls now too late, which are answered UNAVAILABLE (found by probing:
  with the log's database locked for 12 s, the gateway answered a read UNAVAILABLE after 5 s, and
  its event was then stored as ALLOWED, a disclosure that never happened).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from sqlalchemy import Connection

from contactpoint.audit.v1 import audit_service_pb2 as pb
from contactpoint.platform.db import Database, TransactionConflict, is_sqlite
from contactpoint.platform.deadlines import DeadlinePassed, late
from contactpoint.platform.errors import ContactPointError, FailedPrecondition, Internal, Unavailable
from contactpoint.platform.logging import get_logger
from contactpoint.platform.statements import Statements
from services.audit import domain
from services.audit.events import validate_event, validate_events
from services.audit.fast_append import FastAppender

log = get_logger(__name__)
# The reason appends are refused while the log contradicts its witness (`witness_check`).
LOG_CONTRADICTS_WITNESS = "LOG_CONTRADICTS_WITNESS"
# The most events one transaction writes (and one head signs).
MAX_BATCH = 256


@dataclass
class _Waiting:
    """One call's events (written in one batch, all or none) and its answer: their leaf indexes."""

    items: list[tuple[pb.AuditEvent, str]]
    # The latest `time.monotonic()` its events may be committed at (None: no deadline).
    commit_by: float | None = None
    answer: asyncio.Future[list[int]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


def _take(queue: list[_Waiting], most: int) -> int:
    """How many calls from the head of `queue` make the next batch: as many as fit in `most`
    events, and always at least one."""
    taken, events = 0, 0
    for waiting in queue:
        if taken and events + len(waiting.items) > most:
            break
        taken, events = taken + 1, events + len(waiting.items)
    return taken


def _in_time(batch: list[_Waiting]) -> list[_Waiting]:
    """The calls of `batch` whose events may still be committed; the others are answered."""
    kept = []
    for waiting in batch:
        if not late(waiting.commit_by):
            kept.append(waiting)
        elif not waiting.answer.done():
            waiting.answer.set_exception(DeadlinePassed())
            waiting.answer.exception()  # its caller may be gone: nobody else will look
    return kept


class _Cutoff:
    """The moment a transaction in a worker thread (SQLite's) is to commit by, decided once: it
    commits (`commit`, in the thread, just before) or it is abandoned (`abandon`, from the event
    loop when the moment has passed), never both. So a caller whose deadline passes while the
    transaction waits for the database's lock can be answered at once: it will not commit."""

    def __init__(self, commit_by: float | None) -> None:
        self.commit_by = commit_by
        self._lock = threading.Lock()
        self._state = ""  # "committing" or "abandoned", once decided

    def commit(self) -> None:
        """Inside the transaction, just before it commits: `DeadlinePassed` (it rolls back) if it
        was abandoned or is now too late."""
        with self._lock:
            if self._state == "abandoned" or late(self.commit_by):
                self._state = "abandoned"
                raise DeadlinePassed
            self._state = "committing"

    def abandon(self) -> bool:
        """Whether the transaction is now sure not to commit (it had not begun to)."""
        with self._lock:
            if self._state != "committing":
                self._state = "abandoned"
            return self._state == "abandoned"


def _failure(exc: BaseException) -> ContactPointError:
    """What each caller of a failed batch is told (a fresh error each: they are raised apart)."""
    if isinstance(exc, TransactionConflict | Unavailable):
        return Unavailable("the audit log could not be written; retry")
    return Internal()


class Sequencer:
    """Appends to the audit log in batches (see the module's doc). Belongs to one event loop."""

    def __init__(
        self,
        db: Database,
        signer: domain.Signer,
        *,
        max_batch: int = MAX_BATCH,
        on_commit: Callable[[], None] | None = None,
        on_batch: Callable[[int, int], None] | None = None,
        refuse_when: Callable[[], str | None] | None = None,
    ) -> None:
        self._db = db
        # On PostgreSQL a batch is one statement from the event loop (`fast_append`); on SQLite
        # one transaction in a worker thread (`domain.append_batch`).
        self._store = Statements(db) if not is_sqlite(db.url) else None
        self._fast = FastAppender(self._store, signer) if self._store is not None else None
        # Told after each batch commits (the witness client sends the new head on).
        self._on_commit = on_commit
        # Told (events in the batch, tree size after it) after each batch commits: the metrics.
        self._on_batch = on_batch
        # Why appends are refused now, if they are: the log contradicts its witness (`witness_check`).
        self._refuse_when = refuse_when
        self._signer = signer
        self._max_batch = max_batch
        self._queue: list[_Waiting] = []
        self._work = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._closed = False
        # How many batches and events were written (for tests and the benchmark).
        self.batches = 0
        self.events = 0

    async def append(
        self, event: pb.AuditEvent | None, appended_by: str, *, commit_by: float | None = None
    ) -> int:
        """Append `event` as sent by `appended_by`; its leaf index, once its batch is committed,
        by `commit_by` (a `time.monotonic()`) or not at all (`DeadlinePassed`)."""
        validate_event(event)
        assert event is not None  # validate_event refuses a missing event
        return (await self._enqueue([(event, appended_by)], commit_by))[0]

    async def append_all(
        self, events: list[pb.AuditEvent], appended_by: str, *, commit_by: float | None = None
    ) -> list[int]:
        """Append `events` (at most a batch's worth), in order, all or none, as sent by
        `appended_by`; their leaf indexes, once their batch is committed (by `commit_by`)."""
        validate_events(events, most=self._max_batch)
        return await self._enqueue([(event, appended_by) for event in events], commit_by)

    async def _enqueue(self, items: list[tuple[pb.AuditEvent, str]], commit_by: float | None) -> list[int]:
        if self._closed:
            raise Unavailable("the audit service is stopping; retry")
        why = self._refuse_when() if self._refuse_when is not None else None
        if why is not None:
            raise FailedPrecondition(why, LOG_CONTRADICTS_WITNESS)
        waiting = _Waiting(items, commit_by)
        self._queue.append(waiting)
        self._work.set()
        if self._runner is None or self._runner.done():
            self._runner = asyncio.get_running_loop().create_task(self._run(), name="audit-sequencer")
        if commit_by is not None:
            await self._until(waiting, commit_by)
        # The batch goes on if this caller goes away (its event may then be in the log unanswered,
        # as a single append's could be): shield the answer, not the caller.
        return await asyncio.shield(waiting.answer)

    async def _until(self, waiting: _Waiting, commit_by: float) -> None:
        """Wait for the call's answer until its deadline; a call still queued then (behind a batch
        held up by the database's lock) is taken out and answered `DeadlinePassed` at once (found
        by probing: it waited for the lock, and its caller gave up first, not knowing whether its
        events were stored, so a patient request gathered with an impatient one failed too)."""
        done, _ = await asyncio.wait({waiting.answer}, timeout=max(commit_by - time.monotonic(), 0.0))
        if done:
            return
        for i, queued in enumerate(self._queue):
            if queued is waiting:
                del self._queue[i]
                waiting.answer.set_exception(DeadlinePassed())
                return

    async def _run(self) -> None:
        while True:
            await self._work.wait()
            self._work.clear()
            while self._queue:
                taken = _take(self._queue, self._max_batch)
                batch, self._queue = self._queue[:taken], self._queue[taken:]
                await self._write(batch)
            if self._closed:
                return

    async def _write(self, batch: list[_Waiting]) -> None:
        while True:
            batch = _in_time(batch)
            if not batch:
                return
            items = [item for waiting in batch for item in waiting.items]
            by = [w.commit_by for w in batch if w.commit_by is not None]
            try:
                indexes = await self._append(batch, items, min(by) if by else None)
            except DeadlinePassed:
                continue  # rolled back: again, without the calls now too late
            except Exception as exc:  # every caller of the batch is told; the sequencer goes on
                self._failed(batch, exc)
                return
            self._written(batch, items, indexes)
            return

    @staticmethod
    def _failed(batch: list[_Waiting], exc: Exception) -> None:
        log.error("audit.batch_failed", events=len(batch), error=type(exc).__name__)
        for waiting in batch:
            if not waiting.answer.done():
                waiting.answer.set_exception(_failure(exc))

    def _written(
        self, batch: list[_Waiting], items: list[tuple[pb.AuditEvent, str]], indexes: list[int]
    ) -> None:
        self.batches += 1
        self.events += len(items)
        if self._on_commit is not None:
            self._on_commit()
        if self._on_batch is not None and indexes:
            self._on_batch(len(items), indexes[-1] + 1)
        start = 0
        for waiting in batch:
            end = start + len(waiting.items)
            if not waiting.answer.done():
                waiting.answer.set_result(indexes[start:end])
            start = end

    async def _append(
        self, batch: list[_Waiting], items: list[tuple[pb.AuditEvent, str]], commit_by: float | None
    ) -> list[int]:
        cutoff = _Cutoff(commit_by)

        def locked(conn: Connection) -> list[int]:
            indexes = domain.append_batch(conn, items, signer=self._signer)
            cutoff.commit()  # else rolled back: the lock may have taken long
            return indexes

        if self._fast is None:
            return await self._in_thread(self._db.write(locked), batch, cutoff)
        try:
            return await self._fast.append(items, commit_by=commit_by)
        except TransactionConflict:
            # Another replica kept appending between this one's reads of the tree's size (found
            # by probing: with two replicas, 2 to 5 appends in 170 failed UNAVAILABLE): queue
            # behind the tree state's row lock instead, which always gets its turn.
            log.info("audit.batch_contended", events=len(items))
            return await self._db.write(locked)

    @staticmethod
    async def _in_thread(write: Awaitable[list[int]], batch: list[_Waiting], cutoff: _Cutoff) -> list[int]:
        """The transaction's outcome; when its deadline passes while it waits (for the database's
        lock: SQLite's wait cannot be cut short), it is abandoned and the calls now too late are
        answered at once, not when the lock is let go."""
        running = asyncio.ensure_future(write)
        if cutoff.commit_by is not None:
            done, _ = await asyncio.wait({running}, timeout=max(cutoff.commit_by - time.monotonic(), 0.0))
            if not done and cutoff.abandon():
                _in_time(batch)
        return await running

    async def close(self) -> None:
        """Refuse new appends, write those already waiting (and the batch being written), then
        stop."""
        self._closed = True
        self._work.set()
        if self._runner is not None:
            await self._runner
        if self._store is not None:
            await self._store.close()
