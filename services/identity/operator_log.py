"""Account changes made from the command line, in the audit log.

`contactpoint admin suspend`, `reinstate`, `create-user` and the machine-account chores run on
identity's database, not through its RPCs, and the command line cannot reach the audit service.
So each writes an operator action in the same transaction as the change it makes, and the running
identity service puts it in the audit log (action as the RPC that does the same would name it,
actor the operating-system user who ran the command, role `operator`), then deletes it. Nothing is
lost: a change and its record commit together, and a record leaves identity's database only once
the audit service has confirmed it (at least once: a crash between the two may write one twice,
under the same request id). Found by probing: an operator could reinstate a person the gateway
had suspended, or create an administrator, and the log said nothing."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, delete, insert, select

from contactpoint.audit.v1 import audit_service_pb2 as audit_pb
from contactpoint.platform.audit_writer import AuditWriter
from contactpoint.platform.audited import MAX_ACTOR_LENGTH, MAX_DETAIL_LENGTH, printable
from contactpoint.platform.db import Database
from contactpoint.platform.errors import ContactPointError
from contactpoint.platform.logging import get_logger
from contactpoint.platform.redaction import redacted
from services.identity.operator_presence import Presence, forwarder_running
from services.identity.tables import operator_actions

log = get_logger(__name__)

OPERATOR_ROLE = "operator"
# How often a running identity service looks for command-line changes, and how long a command
# waits for its own to reach the log (`wait_forwarded`).
FORWARD_SECONDS = 0.2
WAIT_SECONDS = 5.0
WAIT_POLL_SECONDS = 0.02
BATCH = 100


@dataclass(frozen=True, slots=True)
class OperatorAction:
    """One command-line change waiting for the audit log."""

    id: int
    request_id: str
    action: str
    actor: str
    severity: str
    detail: str
    created_at: dt.datetime


def record(conn: Connection, *, action: str, actor: str, detail: str, severity: str = "WARNING") -> int:
    """Note a command-line change, in the transaction that makes it; the note's id."""
    note: int = conn.execute(
        insert(operator_actions)
        .values(
            request_id=uuid.uuid4().hex,
            action=action,
            actor=printable(actor)[:MAX_ACTOR_LENGTH],
            severity=severity,
            # An operator's reason may name a person, as a person's may (`redaction`).
            detail=printable(redacted(detail))[:MAX_DETAIL_LENGTH],
            created_at=dt.datetime.now(dt.UTC),
        )
        .returning(operator_actions.c.id)
    ).scalar_one()
    return note


NOT_RUNNING = "the record of this change will reach the audit log when the identity service next runs"
NOT_CONFIRMED = (
    "the audit log has not confirmed the record of this change yet; the identity service will put "
    "it there as soon as the log answers"
)


def wait_forwarded(db: Database, note: int, *, timeout: float = WAIT_SECONDS) -> bool | str:
    """After the change noted as `note` has committed: wait until a running identity service has
    put it in the audit log (True), or not at all when none runs; at most `timeout`. Otherwise,
    why its record is still waiting (one line for the operator)."""
    deadline = time.monotonic() + timeout

    def look(conn: Connection) -> bool | str | None:
        if conn.execute(select(operator_actions.c.id).where(operator_actions.c.id == note)).first() is None:
            return True
        if not forwarder_running(conn, db.url):
            return NOT_RUNNING
        if time.monotonic() >= deadline:
            return NOT_CONFIRMED  # found by re-probing: the audit log, not identity, was away
        return None

    while (seen := db.run_sync(look, write=False)) is None:
        time.sleep(WAIT_POLL_SECONDS)
    return seen


def waiting(conn: Connection, *, limit: int = BATCH) -> list[OperatorAction]:
    """The oldest changes not yet in the audit log."""
    rows = conn.execute(select(operator_actions).order_by(operator_actions.c.id).limit(limit)).all()
    return [
        OperatorAction(r.id, r.request_id, r.action, r.actor, r.severity, r.detail, r.created_at)
        for r in rows
    ]


def forget(conn: Connection, ids: Sequence[int]) -> None:
    """Changes the audit log has confirmed."""
    if ids:
        conn.execute(delete(operator_actions).where(operator_actions.c.id.in_(list(ids))))


def event_of(action: OperatorAction) -> audit_pb.AuditEvent:
    """The audit event of a command-line change. The log stamps its own time, when the event
    reaches it; the time of the change itself leads the detail (found by re-probing: a change
    made just before a lockout was logged after it, and one made while the suite was down
    carried the time it came back)."""
    made = action.created_at if action.created_at.tzinfo else action.created_at.replace(tzinfo=dt.UTC)
    stamp = made.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return audit_pb.AuditEvent(
        actor=action.actor,
        actor_roles=[OPERATOR_ROLE],
        action=action.action,
        outcome="ALLOWED",
        status_code=0,
        request_id=action.request_id,
        severity=action.severity,
        detail=f"made at {stamp} on the command line; {action.detail}"[:MAX_DETAIL_LENGTH],
    )


async def forward_once(db: Database, audit: AuditWriter) -> int:
    """Put the waiting changes in the audit log, oldest first; how many went. Stops at the first
    the log does not confirm (the rest wait for the next round)."""
    sent: list[int] = []
    try:
        for action in await db.read(waiting):
            await audit.append(event_of(action))
            sent.append(action.id)
    except ContactPointError as exc:
        log.warning("identity.operator_actions_waiting", code=exc.code.name)
    finally:
        if sent:
            await db.write(lambda conn: forget(conn, sent))
            # An operator's reason may name a person: once the log holds it, not the files either
            # (found by probing: the write-ahead log kept it until it was reused).
            await asyncio.to_thread(db.forget_freed)
    return len(sent)


async def forward(
    db: Database, audit: AuditWriter, presence: Presence | None = None, *, every: float = FORWARD_SECONDS
) -> None:
    """Forward command-line changes to the audit log for as long as the service runs (of several
    replicas, the one that leads)."""
    while True:
        try:
            leading = presence is None or await asyncio.to_thread(presence.lead)
            while leading and await forward_once(db, audit) == BATCH:
                pass
        except Exception:  # the schedule goes on (a database hiccup)
            log.exception("identity.operator_actions_failed")
        await asyncio.sleep(every)
