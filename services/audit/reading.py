"""Reading the log is itself logged. Every way of reading events (ListEvents, the proofs, a watch,
a subject-access report) goes through here, so the rule lives in one place: the read and the
event that records it share one transaction, and the answer is handed back only once that event
is in the log. If it cannot be written, the transaction rolls back and nothing is answered.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Connection

from services.audit import domain
from services.audit.events import SERVICE_ITSELF, Reader, read_event

T = TypeVar("T")


def record(
    conn: Connection,
    *,
    reader: Reader,
    action: str,
    detail: str,
    signer: domain.Signer,
    appended_by: str = SERVICE_ITSELF,
) -> int:
    """Append the event that records `reader`'s `action` (a read that needs no answer first, such
    as opening a watch); returns its leaf index."""
    event = read_event(reader, action=action, detail=detail)
    return domain.append(conn, event=event, signer=signer, appended_by=appended_by)


def audited(
    conn: Connection,
    *,
    reader: Reader,
    action: str,
    read: Callable[[Connection], T],
    describe: Callable[[T], str],
    signer: domain.Signer,
    appended_by: str = SERVICE_ITSELF,
) -> T:
    """`read(conn)`, recorded in the log as `reader`'s `action` (with `describe(answer)` as its
    detail) before it is returned. A read that fails (e.g. bad arguments) answers nothing and is
    not recorded as a read."""
    answer = read(conn)
    record(
        conn, reader=reader, action=action, detail=describe(answer), signer=signer, appended_by=appended_by
    )
    return answer


def _escaped(value: str | int) -> str:
    # A filter may be any text (an auditor can look for an actor stored before text was checked),
    # but the event recording the read must hold no control characters: those are escaped.
    return "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in str(value))


def filters_detail(**filters: str | int) -> str:
    """`name=value` for each filter given (the empty ones left out), or `none`."""
    named = ", ".join(f"{k}={_escaped(v)}" for k, v in filters.items() if v != "")
    return named or "none"
