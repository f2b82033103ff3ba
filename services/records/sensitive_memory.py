"""The services a source record has told of as sensitive, remembered beside it.

Found by probing: a sensitive flag was lost when the record that set it dropped the involvement or
was withdrawn, and another source's unflagged copy of the service was then shown in full. So a
record remembers every service it flagged, until it sends that same service again without the
flag (the source correcting itself). Dropping the involvement, or withdrawing the record, forgets
nothing. The memory is the record's: it moves with the record in a merge and an unmerge, and is
deleted with it when the child is purged. Only the sources' own flags are remembered; a name the
vocabulary reads as sensitive is read so again on every read (`composing`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from contactpoint.records.v1 import records_service_pb2 as pb
from services.records.names import name_key


def _unique(names: Iterable[str]) -> tuple[str, ...]:
    out: dict[str, str] = {}
    for name in names:
        out.setdefault(name_key(name), name)
    return tuple(out.values())


def told_sensitive(record: pb.SourceRecord) -> tuple[str, ...]:
    """The services `record` flags as sensitive, each once."""
    return _unique(i.service_name for i in record.involvements if i.sensitive)


def remembered(before: Sequence[str], record: pb.SourceRecord) -> tuple[str, ...]:
    """What a record remembers once `record` replaces its content: the services it flags now, and
    those it flagged before unless it now sends the same service (by name) without the flag."""
    unflagged = {name_key(i.service_name) for i in record.involvements if not i.sensitive}
    kept = [name for name in before if name_key(name) not in unflagged]
    return _unique([*told_sensitive(record), *kept])
