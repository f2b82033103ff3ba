"""The shared bulk writes, on SQLite and PostgreSQL: `update_rows` changes exactly the rows it
names, each to its own values, and nothing else."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from contactpoint.platform.db import Database
from services.records.repository.writes import insert_rows, update_rows
from services.records.tables import children

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
LATER = NOW + dt.timedelta(days=1)


def _children(db: Database) -> dict[str, tuple[dt.date | None, dt.datetime]]:
    rows = db.run_sync(
        lambda c: c.execute(
            select(children.c.contactpoint_id, children.c.archive_on, children.c.updated_at)
        ).all(),
        write=False,
    )
    return {cid: (on, at.replace(tzinfo=dt.UTC)) for cid, on, at in rows}


def test_update_rows_gives_each_named_row_its_own_values_and_leaves_the_rest(db: Database) -> None:
    ids = [f"CP{n:010d}" for n in range(5)]
    new = [(cid, "active", False, False, NOW, NOW, dt.date(2030, 1, 1)) for cid in ids]
    columns = ("contactpoint_id", "status", "shielded", "provisional_shield", "created_at", "updated_at")
    db.run_sync(lambda c: insert_rows(c, children, (*columns, "archive_on"), new))
    # Out of order, one to no date at all, and one id that names no row.
    rows = [
        (ids[3], dt.date(2031, 3, 1)),
        (ids[0], None),
        (ids[2], dt.date(2032, 2, 1)),
        ("CP9999999999", None),
    ]
    db.run_sync(
        lambda c: update_rows(
            c, children, "contactpoint_id", ("archive_on",), rows, same={"updated_at": LATER}
        )
    )
    assert _children(db) == {
        ids[0]: (None, LATER),
        ids[1]: (dt.date(2030, 1, 1), NOW),
        ids[2]: (dt.date(2032, 2, 1), LATER),
        ids[3]: (dt.date(2031, 3, 1), LATER),
        ids[4]: (dt.date(2030, 1, 1), NOW),
    }
    db.run_sync(lambda c: update_rows(c, children, "contactpoint_id", ("archive_on",), []))  # nothing to do
    assert len(_children(db)) == 5


def test_update_rows_refuses_a_column_the_table_does_not_have(db: Database) -> None:
    with pytest.raises(KeyError):
        db.run_sync(
            lambda c: update_rows(
                c, children, "contactpoint_id", ("archive_on; DROP TABLE children",), [("x", None)]
            )
        )
