"""What a merge remembers of each child's record, so that undoing it can tell whether the child is
back exactly as it was: then it gets back its `update_time` too (CONTRACT §4, UnmergeChildren:
"both children as before the merge"; found by review, a merge and its unmerge left two children
alike but for their update times).

A fingerprint is a keyed hash (BLAKE2b under the data keys' index key) of the child's record as
composed, without its update time: equal records, equal fingerprints, and no use to whoever holds
a copy of the database without the key. Anything that changed the record in between — a record
sent, withdrawn or moved back in another order, a shield or a provisional shield — gives another
fingerprint, and the unmerge's own time stands."""

from __future__ import annotations

import datetime as dt
import hashlib

from sqlalchemy import Connection

from contactpoint.common.v1 import child_pb2
from services.records.children import composed
from services.records.model import AgeLimits
from services.records.repository import children as child_repo
from services.records.repository.rows import MergeRow
from services.records.repository.sealing import vault_of
from services.records.values import day_in_england


def fingerprint(conn: Connection, contactpoint_id: str, *, limits: AgeLimits, now: dt.datetime) -> str | None:
    """The keyed fingerprint of a child's record as it stands (None when it has no record)."""
    row = child_repo.child(conn, contactpoint_id)
    child = composed(conn, row, limits=limits, today=day_in_england(now), visible_only=False) if row else None
    if child is None:
        return None
    bare = child_pb2.Child()
    bare.CopyFrom(child)
    bare.ClearField("update_time")
    key = vault_of(conn).ring.index
    data = bare.SerializeToString(deterministic=True)
    return hashlib.blake2b(data, key=key[:64], digest_size=32, person=b"cp-merged-child").hexdigest()


def restore_update_times(conn: Connection, undone: MergeRow, *, limits: AgeLimits, now: dt.datetime) -> None:
    """After `undone` is unmerged: each of its two children whose record is as it was before the
    merge gets back the update time it had then."""
    sides = (
        (undone.survivor_id, undone.survivor_updated_at, undone.survivor_fingerprint),
        (undone.retired_id, undone.retired_updated_at, undone.retired_fingerprint),
    )
    for contactpoint_id, was, then in sides:
        if was is None or then is None:
            continue
        if fingerprint(conn, contactpoint_id, limits=limits, now=now) == then:
            child_repo.restore_updated_at(conn, {contactpoint_id: was})
