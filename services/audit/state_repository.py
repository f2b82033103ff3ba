"""The tree state row: the log's size and the peaks of its Merkle tree, which every append
extends (one row, locked by each append so that appends happen one at a time)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import Connection, func, select, update

from contactpoint.platform.merkle import Peaks
from services.audit.tables import leaves, tree_state


def peaks_of(text: str) -> Peaks:
    """Peaks as the tree state row keeps them (JSON of [size, hex hash] pairs)."""
    return [(int(s), bytes.fromhex(h)) for s, h in json.loads(text)]


def peaks_text(peaks: Peaks) -> str:
    """Peaks as the tree state row keeps them."""
    return json.dumps([[s, h.hex()] for s, h in peaks])


def lock_state(conn: Connection) -> tuple[int, Peaks]:
    """The tree's size and peaks, locked for this transaction (appends happen one at a time)."""
    row = conn.execute(select(tree_state).where(tree_state.c.id == 1).with_for_update()).mappings().one()
    return int(row["size"]), peaks_of(row["peaks"])


def save_state(conn: Connection, size: int, peaks: Peaks) -> None:
    """Store the tree's new size and peaks."""
    conn.execute(update(tree_state).where(tree_state.c.id == 1).values(size=size, peaks=peaks_text(peaks)))


@dataclass(frozen=True)
class Span:
    """The tree state's size and peaks (0 and none without the row) and the lowest and highest
    leaf index stored (None without leaves), read in one statement: one snapshot of the log."""

    size: int
    peaks: Peaks
    lowest: int | None
    highest: int | None


def state_and_span(conn: Connection) -> Span:
    """The tree state and the stored leaves' index range, as one snapshot (two index lookups)."""
    state = tree_state.c.id == 1
    row = conn.execute(
        select(
            select(tree_state.c.size).where(state).scalar_subquery(),
            select(tree_state.c.peaks).where(state).scalar_subquery(),
            select(func.min(leaves.c.leaf_index)).scalar_subquery(),
            select(func.max(leaves.c.leaf_index)).scalar_subquery(),
        )
    ).one()
    size, peaks, lowest, highest = row
    return Span(
        int(size or 0),
        peaks_of(peaks) if peaks is not None else [],
        None if lowest is None else int(lowest),
        None if highest is None else int(highest),
    )


def read_state(conn: Connection) -> tuple[int, Peaks] | None:
    """The tree's size and peaks as stored, without locking (None when the row is gone)."""
    row = conn.execute(select(tree_state).where(tree_state.c.id == 1)).mappings().first()
    return None if row is None else (int(row["size"]), peaks_of(row["peaks"]))
