"""What every data manager's action shares: who is acting, and the checks that keep them to one
task or one child of their own organisation at a time (anything else is NotFound)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlalchemy import Connection

from contactpoint.platform.errors import FieldViolation, InvalidArgument, NotFound
from contactpoint.platform.ids import contactpoint_id_problem
from services.records.children import due_children
from services.records.model import AgeLimits
from services.records.repository import children as child_repo
from services.records.repository import holdings
from services.records.repository.rows import ChildRow
from services.records.tables import ACTIVE
from services.records.values import day_in_england, text_problem

LINK = "LINK"
KEEP_APART = "KEEP_APART"
MAX_REASON = 500
_TASK_ID = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class Manager:
    """The data manager acting: their username and organisation."""

    name: str
    organisation: str


def is_task_id(value: str) -> bool:
    """Whether `value` is shaped like a review task's id."""
    return bool(_TASK_ID.fullmatch(value))


def id_violations(name: str, value: str) -> list[FieldViolation]:
    problem = contactpoint_id_problem(value)
    return [FieldViolation(name, problem)] if problem else []


def reason_violations(value: str, *, required: bool = False) -> list[FieldViolation]:
    """A data manager's reason: required for a review task's decision (CONTRACT §4), optional for
    a merge, an unmerge and a shield (the contract requires it of ResolveReviewTask alone), and
    checked whenever it is given."""
    problem = text_problem(value, max_length=MAX_REASON, required=required, in_column=True)
    return [FieldViolation("reason", problem)] if problem else []


def check(violations: list[FieldViolation]) -> None:
    if violations:
        raise InvalidArgument(violations)


def held(conn: Connection, manager: Manager, *ids: str) -> bool:
    return holdings.held_by_organisation(conn, set(ids), manager.organisation) == set(ids)


def active_child(
    conn: Connection, contactpoint_id: str, manager: Manager, *, limits: AgeLimits, now: dt.datetime
) -> ChildRow:
    """A child the manager may act on, row-locked: active, not yet due to be archived, and held by
    their organisation. A child whose archive date has come is gone, as it is from GetChild and
    the review queue, though the hourly lifecycle run has not archived it yet (found by review:
    a child dead a year was merged into, returning its record, and shielded)."""
    row = child_repo.child(conn, contactpoint_id, lock=True)
    if row is None or not live(conn, row, limits=limits, now=now) or not held(conn, manager, contactpoint_id):
        raise NotFound("no child with this ContactPoint ID is managed by your organisation")
    return row


def live(conn: Connection, row: ChildRow, *, limits: AgeLimits, now: dt.datetime) -> bool:
    """Whether a child is active and its archive date has not come: one whose date has come is
    gone for data managers as for the gateway, though the hourly lifecycle run has not archived
    it yet."""
    if row.status != ACTIVE:
        return False
    due = due_children(conn, {row.contactpoint_id: row.archive_on}, limits=limits, today=day_in_england(now))
    return not due
