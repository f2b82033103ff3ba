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
from dataclasses import dataclass

from google.type import date_pb2

from contactpoint.records.v1 import records_service_pb2 as pb
from services.records.names import service_key


@dataclass(frozen=True, slots=True)
class FlaggedService:
    """A service a source flagged: its name, organisation and start date as the source gave them
    (a flag reaches another source's copy by any of them: `composing._alike`; found by re-probing:
    "Willow" beside "Willowbrook Service", the same day at the same organisation, lost its flag
    when only the name was remembered)."""

    name: str
    organisation: str = ""
    start: tuple[int, int, int] = (0, 0, 0)

    @classmethod
    def of(cls, involvement: pb.SourceInvolvement) -> FlaggedService:
        d = involvement.start_date
        return cls(involvement.service_name, involvement.organisation, (d.year, d.month, d.day))

    def involvement(self) -> pb.SourceInvolvement:
        """The flagged involvement, as composing compares it with the sources' own."""
        out = pb.SourceInvolvement(service_name=self.name, organisation=self.organisation, sensitive=True)
        if any(self.start):
            out.start_date.CopyFrom(date_pb2.Date(year=self.start[0], month=self.start[1], day=self.start[2]))
        return out

    @property
    def key(self) -> tuple[str, str, tuple[int, int, int]]:
        return (service_key(self.name), service_key(self.organisation), self.start)


def _unique(services: Iterable[FlaggedService]) -> tuple[FlaggedService, ...]:
    out: dict[tuple[str, str, tuple[int, int, int]], FlaggedService] = {}
    for service in services:
        out.setdefault(service.key, service)
    return tuple(out.values())


def told_sensitive(record: pb.SourceRecord) -> tuple[FlaggedService, ...]:
    """The services `record` flags as sensitive, each once."""
    return _unique(FlaggedService.of(i) for i in record.involvements if i.sensitive)


def remembered(before: Sequence[FlaggedService], record: pb.SourceRecord) -> tuple[FlaggedService, ...]:
    """What a record remembers once `record` replaces its content: the services it flags now, and
    those it flagged before unless it now sends the same service (by name) without the flag."""
    unflagged = {service_key(i.service_name) for i in record.involvements if not i.sensitive}
    kept = [service for service in before if service_key(service.name) not in unflagged]
    return _unique([*told_sensitive(record), *kept])
