"""The shields an unmerge leaves on the two children it parts.

Each child is shielded as what it still holds says (`shield_as_held`). And a side left unshielded
that received records while it was one child with a shielded one keeps a shield of its own until
a data manager lifts it (`shield_arrivals`): those records were only ever received into a
shielded child, and nothing says whose they are. Found by probing: a shielded child merged into
an unshielded one (by hand, or by a data manager's LINK of another council's shielded record);
the child's new address and school arrived and joined the merged child, shown shielded; the
unmerge left them with the unshielded survivor, and every practitioner read them there."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import Connection

from contactpoint.platform.logging import get_logger
from services.records.repository import children as child_repo
from services.records.repository import kept_shields
from services.records.repository import merges as merge_repo
from services.records.repository import sources as source_repo
from services.records.repository.rows import ChildRow, MergeRow
from services.records.tables import MERGED

log = get_logger(__name__)


def shield_as_held(conn: Connection, chain: list[ChildRow], *, undone: MergeRow, now: dt.datetime) -> None:
    """After an unmerge, each child of the chain from the merge's survivor shielded as what it
    still holds says: as it was before anything was merged into it (or as a data manager decided
    since), or shielded if any child still merged into it is. What each later merge remembers of
    its two children's shields is corrected too, so that undoing it later restores them as they
    now are. Found by probing: with two shielded children merged into one and one of them
    unmerged, the survivor was unshielded while it held the other's records; and a child merged
    on kept a shield that only the child put back had brought."""
    below: tuple[str, bool] | None = None  # the chain's previous child, and its shield now
    for row in chain:
        live = merge_repo.live_merges_into(conn, row.contactpoint_id)
        ever = sorted(
            [*live, undone] if undone.survivor_id == row.contactpoint_id else live, key=merge_repo.in_order
        )
        shielded = ever[0].survivor_shielded if ever else row.shielded
        for merge in live:
            if merge is not ever[0] and merge.survivor_shielded != shielded:
                merge_repo.set_shields_at_merge(conn, merge.merge_id, survivor=shielded)
            if below is not None and merge.retired_id == below[0]:
                merged_in = below[1]
                if merge.retired_shielded != merged_in:
                    merge_repo.set_shields_at_merge(conn, merge.merge_id, retired=merged_in)
            else:
                merged_in = _held_shield(conn, merge.retired_id, alone=merge.retired_shielded)
            shielded = shielded or merged_in
        current = child_repo.child(conn, row.contactpoint_id)
        if current is not None and current.shielded != shielded:
            child_repo.set_shielding(conn, row.contactpoint_id, shielded=shielded, now=now)
        below = (row.contactpoint_id, shielded)


def _held_shield(conn: Connection, contactpoint_id: str, *, alone: bool) -> bool:
    # A merged child's shield: as the earliest merge into it says it was before (`alone` if
    # nothing was merged into it), or any child's still merged into it.
    live = merge_repo.live_merges_into(conn, contactpoint_id)
    before = live[0].survivor_shielded if live else alone
    return before or any(_held_shield(conn, m.retired_id, alone=m.retired_shielded) for m in live)


def shield_arrivals(
    conn: Connection, *, undone: MergeRow, chain: Sequence[str], now: dt.datetime
) -> tuple[str, ...]:
    """After `undone` is unmerged, its retired child put back beside `chain` (the survivor, and
    each child it was merged into since, the last one holding its records): each side not
    shielded in its own right is shielded in its own right if it holds a record received while it
    was one child with a shielded one: found now (it was, while the other side is shown shielded)
    or by an earlier unmerge (marked `kept_shielded`; found by re-probing: a second unmerge of a
    chain gave such records back unshielded). Records found now are marked, so that whichever
    child holds them after later unmerges is shielded too, until a data manager unshields it.
    Returns the children shielded.

    Received while merged: a version of a record that the merge did not see either child hold
    (`held_at_merge`; by content, so the same record sent again with a newer date is not new),
    nor another child bring when it was merged into the chain since (its records were readable
    through it before). A merge from before that was remembered (0014) goes by when each version
    was received."""
    holders = [chain[0], chain[-1]]
    sides = {undone.retired_id: holders, **{holder: [undone.retired_id] for holder in holders}}
    rows = {cid: child_repo.child(conn, cid) for cid in sides}
    shown = {cid: row is not None and row.shown_shielded for cid, row in rows.items()}
    for cid, others in sorted(sides.items()):
        row = rows[cid]
        if row is not None and row.status != MERGED and any(shown[o] for o in others):
            kept_shields.mark_kept_shielded(conn, _received_while_merged(conn, cid, undone, chain))
    marked = kept_shields.holding_kept_shielded(conn, list(sides))
    shielded = []
    for cid in sorted(marked):
        row = rows[cid]
        if row is None or row.status == MERGED or row.shielded:
            continue
        child_repo.set_shielding(conn, cid, shielded=True, now=now)
        shielded.append(cid)
        log.info("records.unmerge_kept_shield", contactpoint_id=cid)
    return tuple(shielded)


def _received_while_merged(
    conn: Connection, contactpoint_id: str, undone: MergeRow, chain: Sequence[str]
) -> set[str]:
    # The source records of the child whose versions were received while it was one with the other.
    # Withdrawn ones too: sent again later, a record keeps its mark (found by re-probing: one
    # withdrawn while merged and sent again after the unmerge joined the child unshielded).
    known = _known_versions(conn, contactpoint_id, undone, chain)
    if known is None:  # a merge from before 0014: by when each version was received
        since = undone.created_at
        return set(
            source_repo.versions_held(conn, [contactpoint_id], received_since=since, withdrawn_too=True)
        )
    held = source_repo.versions_held(conn, [contactpoint_id], withdrawn_too=True)
    return {sid for sid, version in held.items() if known.get(sid) != version}


def _known_versions(
    conn: Connection, contactpoint_id: str, undone: MergeRow, chain: Sequence[str]
) -> dict[str, str] | None:
    # The versions readable before the shielded child joined: what the merge saw both hold; and,
    # for the chain's last child, what each later merge into the chain saw the side that was not
    # part of the merged child hold (a child merged in from outside: what it brought; the chain's
    # next child: what it held of its own). None if a merge remembered none.
    if undone.held_at_merge is None:
        return None
    known = dict(undone.held_at_merge)
    if contactpoint_id == undone.retired_id:
        return known
    for cid in chain:
        for merge in merge_repo.live_merges_into(conn, cid):
            if merge.held_at_merge is None:
                return None
            moved = set(merge.moved_sources)
            from_chain = merge.retired_id in chain
            known.update(
                (sid, version) for sid, version in merge.held_at_merge.items() if (sid in moved) != from_chain
            )
    return known
