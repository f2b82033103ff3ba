"""Withdrawing a source record (CONTRACT §4 WithdrawSourceRecord): the record leaves its child, and
a child with none left is no longer visible, though still archived and purged on its dates."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection

from contactpoint.platform.errors import FieldViolation, InvalidArgument, NotFound, PermissionDenied
from contactpoint.platform.logging import get_logger
from services.records.lifecycle import refile
from services.records.model import DEFAULT_LIMITS, AgeLimits
from services.records.repository import candidates as candidate_repo
from services.records.repository import sources as source_repo
from services.records.repository.rows import SourceKey
from services.records.task_upkeep import close_tasks_of
from services.records.validation import tidy_text
from services.records.values import text_problem

log = get_logger(__name__)


def _require_organisation(organisation: str) -> None:
    if not organisation:
        raise PermissionDenied("the caller belongs to no organisation")


def withdraw(
    conn: Connection,
    *,
    organisation: str,
    source_system: str,
    source_record_id: str,
    limits: AgeLimits = DEFAULT_LIMITS,
    now: dt.datetime | None = None,
) -> None:
    """Withdraw one of `organisation`'s source records (idempotent). A child whose every source
    is withdrawn is no longer visible. A record is named by the caller's organisation, so another
    organisation's record cannot even be named: NotFound, whoever else holds that id."""
    _require_organisation(organisation)
    now = now or dt.datetime.now(dt.UTC)
    # Named as a record names them when stored (stripped, composed).
    source_system, source_record_id = tidy_text(source_system), tidy_text(source_record_id)
    violations = [
        FieldViolation(name, problem)
        for name, problem in (
            ("source_system", text_problem(source_system, max_length=64, required=True, in_column=True)),
            (
                "source_record_id",
                text_problem(source_record_id, max_length=128, required=True, in_column=True),
            ),
        )
        if problem
    ]
    if violations:
        raise InvalidArgument(violations)
    key = SourceKey(organisation, source_system, source_record_id)
    candidate_repo.serialise_on(conn, [f"src:{organisation}:{source_system}:{source_record_id}"])
    row = source_repo.sources_by_key(conn, [key]).get(key)
    if row is None:
        raise NotFound("no such source record")
    if row.withdrawn:
        return
    source_repo.withdraw(conn, row.id, now=now)
    remaining = source_repo.active_sources(conn, [row.contactpoint_id])
    # The record that archived the child (a date of death sent in error) may be the one gone.
    refile(conn, {row.contactpoint_id: remaining}, limits=limits, now=now)
    if not remaining:  # no longer visible: nothing left for a data manager to decide about it
        close_tasks_of(conn, [row.contactpoint_id], now=now)
    log.info("records.withdrawn", contactpoint_id=row.contactpoint_id)
