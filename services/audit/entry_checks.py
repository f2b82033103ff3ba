"""`audit verify`'s checks of each stored entry: its index in order, its hash, that its data is an
event, and that every copy kept beside it for filtering (the child, actor and time columns, and
the rows of the index of other children) says what the data says. A copy that does not would make
ListEvents or a subject-access report miss the entry, or list it where it does not belong."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from sqlalchemy import RowMapping

from contactpoint.platform import merkle
from services.audit import leafcodec, repository


class Bad(Exception):
    """The log fails verification: `message` says why, `index` names the first bad entry (None
    when no single entry is to blame)."""

    def __init__(self, message: str, index: int | None) -> None:
        super().__init__(message)
        self.message = message
        self.index = index


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything we store is UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _columns(index: int, data: bytes) -> leafcodec.Columns:
    try:
        return leafcodec.filter_columns(data)
    except (ValueError, KeyError):
        try:  # the full decoder, which says whether the bytes are an event at all
            event = leafcodec.decode(data, index)
        except Exception:  # whatever the bytes are, they are not an event we wrote
            raise Bad(f"entry {index} is not a valid event", index) from None
        return leafcodec.columns_of(event, event.time.ToDatetime(tzinfo=UTC))


class EntryChecker:
    """Checks the entries in log order, reading the index of other children alongside them
    (`others`: its rows in order of leaf index, then child), so memory stays flat."""

    def __init__(self, others: Iterator[tuple[int, str]]) -> None:
        self._others = others
        self._next = next(others, None)

    def check(self, position: int, row: RowMapping) -> bytes:
        """The leaf hash of the entry `row`, expected at `position`; Bad if anything is wrong."""
        index = int(row["leaf_index"])
        if index != position:
            raise Bad(f"entry {position} is missing (the next stored entry is {index})", position)
        data = bytes(row["leaf_data"])
        digest = merkle.leaf_hash(data)
        if digest != bytes(row["leaf_hash"]):
            raise Bad(f"entry {index} was altered: its data does not match its hash", index)
        columns = _columns(index, data)
        columns_match = (
            repository.filter_key(columns.contactpoint_id) == row["contactpoint_id"]
            and repository.filter_key(columns.actor) == row["actor"]
            and columns.time == _aware(row["time"])
        )
        if not columns_match:
            raise Bad(f"entry {index} was altered: its filter columns do not match its data", index)
        if self._indexed_others(index) != columns.others:
            raise Bad(
                f"entry {index}: the index of the other children it names does not match its data",
                index,
            )
        return digest

    def _indexed_others(self, index: int) -> tuple[str, ...]:
        found = []
        while self._next is not None and self._next[0] <= index:
            if self._next[0] < index:  # a row for an entry already checked, or not stored
                raise Bad(
                    f"entry {self._next[0]}: the index of the other children it names does not "
                    "match its data",
                    self._next[0],
                )
            found.append(self._next[1])
            self._next = next(self._others, None)
        return tuple(found)

    def finish(self, size: int) -> None:
        """After the last of `size` entries: Bad if the index names entries that are not stored."""
        if self._next is not None:
            raise Bad(f"the index of other children names entry {self._next[0]}, which is not stored", size)
