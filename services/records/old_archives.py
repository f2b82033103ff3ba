"""The day children archived by a release before 0012 were archived on, kept as a keyed check.

Migration 0011 kept only the month of the day such a child was archived (its 18th or 25th
birthday, or a year after its death), and 0012 the check of the day only for children archived
from then on. Without it, a date of death corrected to later in that month left the child hidden
(it could not be told from one archived by a run dated ahead), and its purge followed whatever
date the records gave by then, days early or late (found by probing an upgrade). A migration
cannot make the check (it needs the data keys), so the service does, as it starts and before it
takes any record: each such child's archive date by its records is the day it was archived on as
long as nothing has changed them since, which is so when it falls in the month kept. A child whose
records give a date in another month keeps no check, and goes by its month as before."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection

from services.records.lifecycle import archive_dates
from services.records.model import AgeLimits
from services.records.repository import old_archives as repo
from services.records.repository.lifecycle import month_of

BATCH = 500


def check_batch(
    conn: Connection, *, limits: AgeLimits, after: str = "", limit: int = BATCH
) -> tuple[int, str | None]:
    """Check the next `limit` such children after id `after`: (how many got their check, where the
    next batch starts, None when none is left)."""
    found = repo.unchecked(conn, after=after, limit=limit)
    dates = archive_dates(conn, [old.contactpoint_id for old in found], limits)
    days: dict[str, dt.date] = {}
    for old in found:
        day = dates.get(old.contactpoint_id)
        if day is not None and month_of(day) == old.month:
            days[old.contactpoint_id] = day
    repo.set_checks(conn, days)
    return len(days), (found[-1].contactpoint_id if len(found) == limit else None)
