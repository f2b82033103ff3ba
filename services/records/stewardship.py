"""What every data manager's action shares: who is acting, and the checks that keep them to one
task or one child of their own organisation at a time (anything else is NotFound)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import Connection

from contactpoint.platform.errors import FieldViolation, InvalidArgument, NotFound
from contactpoint.platform.ids import contactpoint_id_problem
from services.records.repository import children as child_repo
from services.records.repository import sources as source_repo
from services.records.repository.rows import ChildRow
from services.records.tables import ACTIVE
from services.records.values import text_problem

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


def reason_violations(value: str) -> list[FieldViolation]:
    problem = text_problem(value, max_length=MAX_REASON, required=True)
    return [FieldViolation("reason", problem)] if problem else []


def check(violations: list[FieldViolation]) -> None:
    if violations:
        raise InvalidArgument(violations)


def held(conn: Connection, manager: Manager, *ids: str) -> bool:
    return source_repo.held_by_organisation(conn, set(ids), manager.organisation) == set(ids)


def active_child(conn: Connection, contactpoint_id: str, manager: Manager) -> ChildRow:
    """A child the manager may act on, row-locked: active and held by their organisation."""
    row = child_repo.child(conn, contactpoint_id, lock=True)
    if row is None or row.status != ACTIVE or not held(conn, manager, contactpoint_id):
        raise NotFound("no child with this ContactPoint ID is managed by your organisation")
    return row
