"""Merging two children into one (the retired id reads as the survivor) and undoing it exactly."""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import Connection

from contactpoint.common.v1 import child_pb2
from contactpoint.platform.disclosure import disclose
from contactpoint.platform.errors import FailedPrecondition, FieldViolation, NotFound
from contactpoint.platform.logging import get_logger
from services.records import merge_snapshots, unmerge_shields
from services.records.children import composed, locked_chain, resolve
from services.records.lifecycle import archive_as_its_holder, refile
from services.records.model import DEFAULT_LIMITS, AgeLimits
from services.records.repository import children as child_repo
from services.records.repository import holdings
from services.records.repository import kept_apart as kept_apart_repo
from services.records.repository import merges as merge_repo
from services.records.repository import review as review_repo
from services.records.repository import shields as shield_repo
from services.records.repository import sources as source_repo
from services.records.repository.rows import ChildRow, MergeRow
from services.records.stewardship import (
    LINK,
    Manager,
    active_child,
    check,
    held,
    id_violations,
    reason_violations,
)
from services.records.tables import ACTIVE, MERGED
from services.records.task_carrying import Holding, follow_merge, follow_unmerge
from services.records.task_upkeep import lock_with_their_tasks
from services.records.values import day_in_england

log = get_logger(__name__)


@dataclass(frozen=True)
class Unmerged:
    """What an unmerge left: the survivor (and the child it was merged into since, if it was),
    and the children it shielded for records received while merged with a shielded child."""

    holders: tuple[str, ...]
    shielded: tuple[str, ...]


def merge(
    conn: Connection,
    *,
    manager: Manager,
    survivor_id: str,
    retired_id: str,
    reason: str,
    limits: AgeLimits = DEFAULT_LIMITS,
    now: dt.datetime,
) -> child_pb2.Child:
    """Merge two children of the manager's organisation: the retired id reads as the survivor."""
    violations = (
        id_violations("survivor_id", survivor_id)
        + id_violations("retired_id", retired_id)
        + reason_violations(reason)
    )
    if not violations and survivor_id == retired_id:
        violations.append(FieldViolation("retired_id", "must differ from survivor_id"))
    check(violations)
    # Both locked before anything is read: the same merge sent twice at once (a client retrying on
    # another replica) waits here, then answers as a retry (found by probing: it was NOT_FOUND,
    # having found the child merged away between its look for a retry and its checks).
    lock_with_their_tasks(conn, (survivor_id, retired_id))
    retired = child_repo.child(conn, retired_id)
    if retired is not None and retired.status == MERGED and retired.merged_into == survivor_id:
        # A retry: the same answer.
        survivor = active_child(conn, survivor_id, manager, limits=limits, now=now)
    else:
        for cid in sorted((survivor_id, retired_id)):
            active_child(conn, cid, manager, limits=limits, now=now)
        merge_children(
            conn,
            manager=manager,
            survivor_id=survivor_id,
            retired_id=retired_id,
            reason=reason,
            limits=limits,
            now=now,
        )
        survivor = active_child(conn, survivor_id, manager, limits=limits, now=now)
    child = composed(conn, survivor, limits=limits, today=day_in_england(now), visible_only=False)
    if child is None:
        raise NotFound("the merged child has no active source record")
    # As the gateway shows it to a shield-override reader: sensitive services keep their dates only.
    return disclose(child, may_override_shield=True)


def merge_children(
    conn: Connection,
    *,
    manager: Manager,
    survivor_id: str,
    retired_id: str,
    reason: str,
    limits: AgeLimits,
    now: dt.datetime,
) -> None:
    rows = {cid: child_repo.child(conn, cid, lock=True) for cid in sorted((survivor_id, retired_id))}
    survivor, retired = rows[survivor_id], rows[retired_id]
    if survivor is None or retired is None or survivor.status != ACTIVE or retired.status != ACTIVE:
        raise FailedPrecondition("both children must be active to merge", "NOT_ACTIVE")
    moved = [s.id for s in source_repo.all_sources(conn, retired_id)]
    # Withdrawn records too: one withdrawn before and sent again later is no news (`unmerge_shields`).
    held = source_repo.versions_held(conn, [survivor_id, retired_id], withdrawn_too=True)
    merge_repo.insert_merge(
        conn,
        merge_repo.NewMerge(
            uuid.uuid4().hex,
            survivor_id,
            retired_id,
            moved,
            survivor.shielded,
            retired.shielded,
            manager.name,
            manager.organisation,
            reason,
            survivor.updated_at,
            retired.updated_at,
            merge_snapshots.fingerprint(conn, survivor_id, limits=limits, now=now),
            merge_snapshots.fingerprint(conn, retired_id, limits=limits, now=now),
            held,
        ),
        now=now,
    )
    source_repo.move_sources(conn, moved, to=survivor_id)
    child_repo.retire(conn, retired_id, into=survivor_id, now=now)
    # Fail safe: if either was shielded, the one child now is.
    child_repo.set_shielding(conn, survivor_id, shielded=survivor.shielded or retired.shielded, now=now)
    review_repo.close_tasks_between(
        conn,
        survivor_id,
        retired_id,
        manager=manager.name,
        reason=reason,
        result_id=survivor_id,
        decision=LINK,
        now=now,
    )
    follow_merge(conn, retired=retired_id, survivor=survivor_id, now=now)
    refresh_archive_date(conn, survivor_id, limits=limits, now=now)
    log.info("records.merged", survivor_id=survivor_id, retired_id=retired_id, sources=len(moved))


def unmerge(
    conn: Connection,
    *,
    manager: Manager,
    retired_id: str,
    reason: str,
    limits: AgeLimits = DEFAULT_LIMITS,
    now: dt.datetime,
) -> Unmerged:
    """Undo the merge that retired `retired_id`: both children as before it, and the pair kept
    apart for ever. Records submitted to the survivor since the merge stay with it. Returns the
    survivor (and the child it was merged into since, if it was), and any child shielded for what
    it received while merged."""
    check(id_violations("retired_id", retired_id) + reason_violations(reason))
    # Locked before anything is read: a second unmerge of the same child waits here, then finds
    # the merge undone (found by probing: two at once both answered OK, two events).
    child_repo.child(conn, retired_id, lock=True)
    merge_row = merge_repo.live_merge_of(conn, retired_id)
    if merge_row is None:
        undone = merge_repo.latest_merge_of(conn, retired_id)
        # Held as the first unmerge required: the merge's survivor as it is now (the child put back
        # may be another organisation's, the new child of a task this manager linked).
        now_holding = resolve(conn, undone.survivor_id) if undone is not None else None
        if (
            undone is not None
            and undone.undone_by == manager.name
            and now_holding is not None
            and held(conn, manager, now_holding.contactpoint_id)
        ):
            # The same data manager's retry of an unmerge that was made (its answer lost on the way
            # back): both children are already as before the merge, so it answers as the first
            # call did and changes nothing (found by review: a retry was NOT_FOUND, as if the
            # unmerge had failed). Anyone else is told there is no merge to undo.
            return Unmerged(holders=(undone.survivor_id,), shielded=())
        raise NotFound("no merge of this child to undo")
    chain = locked_chain(conn, merge_row.survivor_id)
    # Read again now that the children it joined are locked: what the merge remembers of their
    # shields may have changed while this waited (found by probing: a shield given to the survivor
    # at the moment of an unmerge was lost, both children ending unshielded).
    merge_row = merge_repo.live_merge_of(conn, retired_id)
    if not chain or merge_row is None or merge_row.survivor_id != chain[0].contactpoint_id:
        raise NotFound("no merge of this child to undo")
    holder = chain[-1]
    if holder.status == MERGED or not held(conn, manager, holder.contactpoint_id):
        raise NotFound("no merge of this child to undo")
    holders = {merge_row.survivor_id, holder.contactpoint_id}
    if not _may_undo(conn, manager, merge_row, holders):
        raise NotFound("no merge of this child to undo")
    # Whose shields stood on the merged child: they stand on each side left shielded (found by
    # re-probing: a side shielded for what it received while merged named no organisation, and
    # another council lifted it, showing the first council's new address).
    shielding = shield_repo.organisations(conn, child_repo.merged_family(conn, holder.contactpoint_id))
    # Only what the merge's survivor (or the child it was merged into since) still holds: a record
    # of a child merged in before and put back since by its own unmerge stays with that child.
    source_repo.move_sources(conn, merge_row.moved_sources, to=retired_id, only_from=holders)
    child_repo.reinstate(conn, retired_id, shielded=merge_row.retired_shielded, now=now)
    merge_repo.undo_merge(conn, merge_row.merge_id, manager=manager.name, reason=reason, now=now)
    unmerge_shields.shield_as_held(conn, chain, undone=merge_row, now=now)
    kept_apart_repo.keep_apart(
        conn, merge_row.survivor_id, retired_id, manager=manager.name, reason=reason, now=now
    )
    for cid in sorted(holders | {retired_id}):
        refresh_archive_date(conn, cid, limits=limits, now=now)
    archive_as_its_holder(conn, retired_id, sorted(holders), limits=limits, now=now)
    # The survivor's shield may have changed back, and its tasks (some the retired child's) with it.
    follow_unmerge(conn, retired=retired_id, holders=_holdings(conn, chain, merge_row.created_at), now=now)
    # Each child as it was before the merge has its update time back too (`merge_snapshots`).
    merge_snapshots.restore_update_times(conn, merge_row, limits=limits, now=now)
    # A side left unshielded that received records while it was one with a shielded child keeps a
    # shield until a data manager lifts it (`unmerge_shields.shield_arrivals`).
    shielded = unmerge_shields.shield_arrivals(
        conn, undone=merge_row, chain=[row.contactpoint_id for row in chain], now=now
    )
    shield_repo.stand_on_shielded(conn, sorted(holders | {retired_id}), shielding, now=now)
    log.info("records.unmerged", survivor_id=merge_row.survivor_id, retired_id=retired_id)
    return Unmerged(holders=tuple(sorted(holders)), shielded=shielded)


def _may_undo(conn: Connection, manager: Manager, merge_row: MergeRow, holders: Collection[str]) -> bool:
    """Whether the manager may undo a merge: an unmerge acts on the child it puts back as much as on
    the one it leaves, so the organisation holds an active record of the child put back, or made the
    merge itself (undoing its own decision: a task's new child, another council's record, that it
    linked). Holding the merged child alone is not enough (found by probing: a council holding only
    the survivor unmerged another council's shielded child that council had merged into it)."""
    if merge_row.merged_by_organisation is not None:
        if merge_row.merged_by_organisation == manager.organisation:
            return True
    elif merge_row.merged_by == manager.name:
        return True
    return holdings.organisation_holds_any(
        conn, merge_row.moved_sources, organisation=manager.organisation, only_from=holders
    )


def _holdings(conn: Connection, chain: list[ChildRow], merged_at: dt.datetime) -> list[Holding]:
    # Each child of the chain from the merge's survivor, and since when it held the retired
    # child's records: the survivor from the merge, each next one from its own merge.
    holdings = [Holding(chain[0].contactpoint_id, merged_at)]
    for merged, holder in itertools.pairwise(chain):
        merge_row = merge_repo.live_merge_of(conn, merged.contactpoint_id)
        since = merge_row.created_at if merge_row is not None else merged_at
        holdings.append(Holding(holder.contactpoint_id, max(since, merged_at)))
    return holdings


def refresh_archive_date(
    conn: Connection, contactpoint_id: str, *, limits: AgeLimits, now: dt.datetime
) -> None:
    """The child's archive date from its records as they are now (`lifecycle.refile`: the record
    that archived it may have gone back to another child by an unmerge)."""
    refile(
        conn, {contactpoint_id: source_repo.active_sources(conn, [contactpoint_id])}, limits=limits, now=now
    )
