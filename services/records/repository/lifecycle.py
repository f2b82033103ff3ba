"""Lifecycle queries: children due for archiving or purging, and the match models."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

from sqlalchemy import Connection, bindparam, insert, select, tuple_, update

from services.records.repository.rows import aware
from services.records.repository.sealing import MODEL_CONTEXT, vault_of
from services.records.tables import (
    ACTIVE,
    ARCHIVED,
    PURGED,
    children,
    kept_apart,
    match_models,
    merges,
    review_tasks,
)


def due_for_archiving(
    conn: Connection, *, today: dt.date, limit: int, after: tuple[dt.date, str] | None = None
) -> list[tuple[dt.date, str]]:
    """Active children whose archive month has come (archive_on, id), in that order after
    `after`, row-locked (others skipped). Their exact dates are the caller's to check."""
    query = (
        select(children.c.archive_on, children.c.contactpoint_id)
        .where(children.c.status == ACTIVE, children.c.archive_on <= today)
        .order_by(children.c.archive_on, children.c.contactpoint_id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    if after is not None:
        query = query.where(tuple_(children.c.archive_on, children.c.contactpoint_id) > tuple_(*after))
    return [(r.archive_on, r.contactpoint_id) for r in conn.execute(query).all()]


def month_of(day: dt.date) -> dt.datetime:
    """The start of a day's month, UTC: when a child was archived, as it is stored."""
    return dt.datetime(day.year, day.month, 1, tzinfo=dt.UTC)


def _archived_month(value: dt.datetime | None) -> dt.datetime:
    # An archived child's `archived_at`: the start of its month, as stored (always set).
    month = aware(value)
    assert month is not None, "an archived child has an archive month"
    return month


def archived_check(conn: Connection, contactpoint_id: str, day: dt.date) -> int:
    """Which day a child was archived on, as only the keys' holder can tell: equal days give equal
    checks, and no day can be tested without the index key."""
    return vault_of(conn).hash64(f"archived:{contactpoint_id}:{day.isoformat()}".encode())


def archive(conn: Connection, due: Mapping[str, dt.date]) -> None:
    """Archive children (id → the day the rules archived it: its 18th or 25th birthday, a year
    after its death), visible to no one through the gateway from now on. Only the month is stored
    in the clear, as its update time too, with a keyed check of the day: the day would be its
    birthday (the six years to its purge run from that day, recovered from the check:
    `archived_days`)."""
    if due:
        conn.execute(
            update(children)
            .where(children.c.contactpoint_id == bindparam("cid"), children.c.status == ACTIVE)
            .values(
                status=ARCHIVED,
                archived_at=bindparam("at"),
                archived_check=bindparam("check"),
                updated_at=bindparam("at"),
                provisional_shield=False,
            ),
            [
                {"cid": cid, "at": month_of(day), "check": archived_check(conn, cid, day)}
                for cid, day in sorted(due.items())
            ],
        )


def archived_days(conn: Connection, ids: Sequence[str]) -> dict[str, dt.date]:
    """The day each archived child among `ids` was archived on, found from its month and keyed
    check (one of the month's days gives the check; only the keys' holder can try them). Children
    archived before the check was kept (0012), or whose check no day gives, are left out."""
    if not ids:
        return {}
    rows = conn.execute(
        select(children.c.contactpoint_id, children.c.archived_at, children.c.archived_check).where(
            children.c.contactpoint_id.in_(sorted(set(ids))),
            children.c.status == ARCHIVED,
            children.c.archived_check.isnot(None),
        )
    ).all()
    days = {}
    for row in rows:
        month = _archived_month(row.archived_at).date()
        for offset in range(31):
            day = month + dt.timedelta(days=offset)
            if day.month != month.month:
                break
            if archived_check(conn, row.contactpoint_id, day) == row.archived_check:
                days[row.contactpoint_id] = day
                break
    return days


def reactivate(conn: Connection, moved_on: Mapping[str, dt.date | None]) -> None:
    """Archived children among `moved_on` (id → its archive date now, None for none) archived
    before that date are active again: a care leaver's extended record moved it on, or a date of
    death corrected to a later day. One archived on that very date, or later, stays archived (a
    child archived by a run dated ahead of today whose feeds change). Within the month it was
    archived in, its day comes from its keyed check (`archived_days`); a child archived before the
    check was kept stays archived within that month."""
    never = [cid for cid, day in moved_on.items() if day is None]
    if never:
        conn.execute(
            update(children)
            .where(children.c.contactpoint_id.in_(sorted(never)), children.c.status == ARCHIVED)
            .values(status=ACTIVE, archived_at=None, archived_check=None)
        )
    later = {cid: day for cid, day in moved_on.items() if day is not None}
    if not later:
        return
    # Nearly always none of a batch's children is archived: one look, by primary key.
    archived = conn.execute(
        select(children.c.contactpoint_id, children.c.archived_at).where(
            children.c.contactpoint_id.in_(sorted(later)), children.c.status == ARCHIVED
        )
    ).all()
    months = {r.contactpoint_id: _archived_month(r.archived_at) for r in archived}
    days = archived_days(conn, [cid for cid, month in months.items() if month == month_of(later[cid])])
    back = sorted(
        cid
        for cid, month in months.items()
        if month < month_of(later[cid]) or (cid in days and days[cid] < later[cid])
    )
    if back:
        conn.execute(
            update(children)
            .where(children.c.contactpoint_id.in_(back), children.c.status == ARCHIVED)
            .values(status=ACTIVE, archived_at=None, archived_check=None)
        )


def due_for_purging(
    conn: Connection,
    *,
    archived_before: dt.datetime,
    limit: int,
    after: tuple[dt.datetime, str] | None = None,
) -> list[tuple[dt.datetime, str]]:
    """Archived children archived in a month starting at or before `archived_before`, (archived
    month, id) in that order after `after`, row-locked (others skipped). Their exact dates are the
    caller's to check."""
    query = (
        select(children.c.archived_at, children.c.contactpoint_id)
        .where(children.c.status == ARCHIVED, children.c.archived_at <= archived_before)
        .order_by(children.c.archived_at, children.c.contactpoint_id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    if after is not None:
        query = query.where(tuple_(children.c.archived_at, children.c.contactpoint_id) > tuple_(*after))
    return [(r.archived_at, r.contactpoint_id) for r in conn.execute(query).all()]


def mark_purged(conn: Connection, ids: list[str], *, at: dt.datetime) -> None:
    """The children's personal data is gone; their ids stay reserved (the rows stay), with the
    year they were purged in (`at`) and nothing of when they were born or archived."""
    if ids:
        conn.execute(
            update(children)
            .where(children.c.contactpoint_id.in_(ids))
            .values(
                status=PURGED,
                purged_at=at,
                updated_at=at,
                archive_on=None,
                archived_at=None,
                archived_check=None,
                shielded=False,
            )
        )


# What a data manager's reason reads once the children it was about are purged.
PURGED_REASON = "(purged)"


def forget_reasons(conn: Connection, ids: list[str]) -> None:
    """Data managers' free-text reasons about purged children go with their personal data (found
    by probing: a reason naming a child and its address outlived the child's purge). The rows
    stay: a pair kept apart is still never joined, and a merge still explains an id's history."""
    if not ids:
        return
    conn.execute(
        update(review_tasks)
        .where(review_tasks.c.new_child.in_(ids) | review_tasks.c.candidate.in_(ids))
        .where(review_tasks.c.decision_reason.isnot(None))
        .values(decision_reason=PURGED_REASON)
    )
    conn.execute(
        update(kept_apart)
        .where(kept_apart.c.child_a.in_(ids) | kept_apart.c.child_b.in_(ids))
        .values(reason=PURGED_REASON)
    )
    conn.execute(
        update(merges)
        .where(merges.c.survivor_id.in_(ids) | merges.c.retired_id.in_(ids))
        .values(reason=PURGED_REASON)
    )
    conn.execute(
        update(merges)
        .where(merges.c.survivor_id.in_(ids) | merges.c.retired_id.in_(ids))
        .where(merges.c.undo_reason.isnot(None))
        .values(undo_reason=PURGED_REASON)
    )


def retired_into(conn: Connection, survivors: list[str]) -> list[str]:
    """Children merged into any of `survivors` (they share the survivors' fate)."""
    if not survivors:
        return []
    query = select(children.c.contactpoint_id).where(children.c.merged_into.in_(survivors))
    return [r.contactpoint_id for r in conn.execute(query).all()]


def latest_model(conn: Connection) -> tuple[int, str] | None:
    """The newest active match model (id, JSON), if any."""
    row = conn.execute(
        select(match_models.c.id, match_models.c.model)
        .where(match_models.c.active.is_(True))
        .order_by(match_models.c.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    return int(row.id), vault_of(conn).open_text(row.model, MODEL_CONTEXT)


def latest_model_id(conn: Connection) -> int:
    """The newest active match model's id (0 when none)."""
    query = (
        select(match_models.c.id).where(match_models.c.active.is_(True)).order_by(match_models.c.id.desc())
    )
    row = conn.execute(query.limit(1)).first()
    return int(row.id) if row is not None else 0


def insert_model(conn: Connection, model: str, *, pairs: int, active: bool, now: dt.datetime) -> int:
    """Store a re-estimated match model (sealed: it holds name frequencies); an active one is
    used from the next refresh on."""
    vault = vault_of(conn)
    key = vault.newest
    result = conn.execute(
        insert(match_models).values(
            model=vault.seal(model.encode(), MODEL_CONTEXT, key_id=key),
            sealed_with=key,
            pairs=pairs,
            active=active,
            created_at=now,
        )
    )
    inserted = result.inserted_primary_key
    assert inserted is not None
    return int(inserted[0])


def count_children(conn: Connection) -> dict[str, int]:
    """How many children the registry holds, by status."""
    from sqlalchemy import func

    query = select(children.c.status, func.count()).group_by(children.c.status)
    return {str(status): int(n) for status, n in conn.execute(query).all()}
