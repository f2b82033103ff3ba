"""WatchEvents: security operations follow the log as it grows.

A watch reads the log from the database, not from this process's memory, so it sees the events
that every audit process appends. Leaves become visible in index order (each append holds the
tree state's lock until it commits), so a watch needs only the next index it has not looked at:
it reads up to a batch from there, sends those of at least its severity, and when it has caught
up waits `POLL_SECONDS` before looking again.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection

from contactpoint.audit.v1 import audit_service_pb2 as pb
from contactpoint.platform.errors import FieldViolation, InvalidArgument
from services.audit import leafcodec, repository
from services.audit.domain import MAX_INDEX
from services.audit.events import SEVERITIES, severity_rank

ACTION = "WatchEvents"
DEFAULT_SEVERITY = "HIGH"
# How often a watch that has caught up looks for new events.
POLL_SECONDS = 0.5
# Leaves read at a time; a full batch is followed at once by the next.
BATCH = 200


@dataclass(frozen=True)
class Watch:
    """What a watch sends: events of at least `min_severity`, from leaf `start` on."""

    min_severity: str
    start: int
    after_leaf_index: int | None

    @classmethod
    def of(cls, *, min_severity: str, after_leaf_index: int | None) -> Watch:
        """The watch a request asks for (empty severity: HIGH; no index: the start of the log)."""
        problems: list[FieldViolation] = []
        severity = min_severity or DEFAULT_SEVERITY
        if severity not in SEVERITIES:
            problems.append(FieldViolation("min_severity", f"one of {', '.join(SEVERITIES)}"))
        if after_leaf_index is not None and after_leaf_index >= MAX_INDEX:
            problems.append(FieldViolation("after_leaf_index", f"below {MAX_INDEX}"))
        if problems:
            raise InvalidArgument(problems)
        start = 0 if after_leaf_index is None else after_leaf_index + 1
        return cls(severity, start, after_leaf_index)

    def describe(self) -> str:
        """The watch, for the event that records its opening."""
        after = "none" if self.after_leaf_index is None else str(self.after_leaf_index)
        return f"watch: min_severity={self.min_severity}, after_leaf_index={after}"

    def wants(self, event: pb.AuditEvent) -> bool:
        """Whether `event` is severe enough to send."""
        return severity_rank(event.severity) >= severity_rank(self.min_severity)


@dataclass(frozen=True)
class Batch:
    """The events to send from one look at the log, and where to look next."""

    events: list[pb.AuditEvent]
    next_start: int
    # The batch was full: there may be more already, so look again without waiting.
    more: bool


def next_batch(conn: Connection, *, watch: Watch, start: int, limit: int = BATCH) -> Batch:
    """Up to `limit` leaves from index `start` on, keeping the events `watch` wants."""
    rows = repository.page_of_leaves(conn, contactpoint_id="", actor="", start=start, limit=limit)
    events = [e for e in (leafcodec.decode(data, index) for index, data in rows) if watch.wants(e)]
    return Batch(events, rows[-1][0] + 1 if rows else start, len(rows) == limit)
