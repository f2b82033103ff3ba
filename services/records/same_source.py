"""Two different source records of one source system are never joined automatically (issue 5),
whichever of the child's records a new record's blocking keys found: which records of each system
the children a batch may link to hold (found by review: a system's second record of a child,
renamed and moved, found only another system's record of the child by its NHS number and joined
it, though the child held the system's first record)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection

from sqlalchemy import Connection

from services.records.placement import Batch
from services.records.repository import holdings
from services.records.repository.rows import SourceKey

# (child, organisation, source system)
_System = tuple[str, str, str]


class SystemsHeld:
    """The record ids of each (organisation, system) a child holds: read for a batch's candidate
    children at once (`prefetch`), any other child when asked, and the batch's own new records as
    it places them."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._held: dict[_System, set[str]] = defaultdict(set)
        self._read: set[tuple[str, str]] = set()  # (child, organisation) read from the database
        self._batch: Batch | None = None
        self._local: dict[_System, set[str]] = defaultdict(set)
        self._seen = 0
        # New children of earlier batches (stored by a flush): the others of `Batch.new_children`
        # hold only the batch's own records, none stored yet.
        self._stored_new: set[str] = set()

    def prefetch(self, children: Collection[str], organisations: Collection[str]) -> None:
        """Read, in one query an organisation, the active records these children hold from it."""
        for organisation in organisations:
            wanted = [c for c in children if (c, organisation) not in self._read]
            for child, system, record_id in holdings.records_from(self._conn, wanted, organisation):
                self._held[(child, organisation, system)].add(record_id)
            self._read.update((c, organisation) for c in wanted)

    def holds_another(self, child: str, key: SourceKey, batch: Batch) -> bool:
        """Whether `child` holds an active record of `key`'s organisation and system other than
        `key`'s own, stored or placed by the batch so far."""
        if self._batch is None:
            self._batch = batch
            self._stored_new = set(batch.new_children)
        elif batch is not self._batch or len(batch.sources) < self._seen:
            # A batch after a flush: what the last one placed is stored now, to be read again.
            self._batch, self._seen = batch, 0
            self._stored_new = set(batch.new_children)
            self._local.clear()
            self._held.clear()
            self._read.clear()
        for s in batch.sources[self._seen :]:
            self._local[(s.contactpoint_id, s.key.organisation, s.key.source_system)].add(
                s.key.source_record_id
            )
        self._seen = len(batch.sources)
        system = (child, key.organisation, key.source_system)
        if self._local.get(system, set()) - {key.source_record_id}:
            return True
        if child in batch.new_children and child not in self._stored_new:
            return False  # made by this batch: its records are all the batch's own
        self.prefetch([child], [key.organisation])
        return bool(self._held.get(system, set()) - {key.source_record_id})
