"""The audit service's SQL (the tree state row's is in `state_repository`). Leaves and tree heads are
only ever inserted."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import (
    ColumnElement,
    Connection,
    RowMapping,
    Select,
    func,
    insert,
    literal,
    null,
    select,
    tuple_,
    union,
    union_all,
)

from contactpoint.platform.merkle import Node
from services.audit.state_repository import read_state
from services.audit.tables import leaves, other_children, tree_heads, tree_nodes, tree_state

# Rows fetched at a time when streaming the whole log.
STREAM_BATCH = 1000


def filter_key(value: str) -> str:
    """How a value is kept in a filter column. PostgreSQL text cannot hold NUL, and an actor is
    whatever a caller typed as a username, so NUL becomes U+FFFD there (leaf_data keeps it as
    sent)."""
    return value.replace("\x00", "\ufffd")


@dataclass(frozen=True)
class Leaf:
    """One leaf as stored: its data (exactly what was hashed), hash and filter columns (`others`:
    the other children it names, each a row of `other_children`)."""

    index: int
    data: bytes
    digest: bytes
    contactpoint_id: str
    actor: str
    time: datetime
    others: tuple[str, ...] = ()


def insert_leaves(conn: Connection, rows: Sequence[Leaf]) -> None:
    """Store leaves (one statement, executed for each)."""
    conn.execute(
        insert(leaves),
        [
            {
                "leaf_index": row.index,
                "leaf_data": row.data,
                "leaf_hash": row.digest,
                "contactpoint_id": filter_key(row.contactpoint_id),
                "actor": filter_key(row.actor),
                "time": row.time,
            }
            for row in rows
        ],
    )
    others = [{"leaf_index": row.index, "contactpoint_id": other} for row in rows for other in row.others]
    if others:
        conn.execute(insert(other_children), others)


def insert_nodes(conn: Connection, nodes: Sequence[Node]) -> None:
    """Store interior nodes completed by an append."""
    if nodes:
        conn.execute(insert(tree_nodes), [{"level": lv, "node_index": i, "hash": h} for lv, i, h in nodes])


def proof_rows(
    conn: Connection, keys: set[tuple[int, int]], leaf: int | None
) -> tuple[int, bytes | None, dict[tuple[int, int], bytes]]:
    """In one query: the tree's size, the data of leaf `leaf` (None when there is none, or when
    `leaf` is None), and the stored hashes of the subtrees `keys` ((level, index); level 0 reads
    the leaf hash)."""
    data = (
        select(leaves.c.leaf_data).where(leaves.c.leaf_index == leaf).scalar_subquery()
        if leaf is not None
        else null()
    )
    state = select(literal(-1).label("level"), tree_state.c.size, data.label("hash")).where(
        tree_state.c.id == 1
    )
    leaf_keys = sorted(i for lv, i in keys if lv == 0)
    inner = sorted(k for k in keys if k[0] > 0)
    parts = [state]
    if leaf_keys:
        parts.append(
            select(literal(0).label("level"), leaves.c.leaf_index, leaves.c.leaf_hash).where(
                leaves.c.leaf_index.in_(leaf_keys)
            )
        )
    if inner:
        parts.append(
            select(tree_nodes.c.level, tree_nodes.c.node_index, tree_nodes.c.hash).where(
                tuple_(tree_nodes.c.level, tree_nodes.c.node_index).in_(inner)
            )
        )
    size, leaf_data, found = 0, None, {}
    for lv, i, h in conn.execute(union_all(*parts)):
        if int(lv) == -1:
            size, leaf_data = int(i), (bytes(h) if h is not None else None)
        else:
            found[(int(lv), int(i))] = bytes(h)
    return size, leaf_data, found


def size_and_leaf(conn: Connection, index: int) -> tuple[int, bytes | None]:
    """The tree's size and the data of leaf `index` (None when there is none), in one query."""
    size = select(tree_state.c.size).where(tree_state.c.id == 1).scalar_subquery()
    data = select(leaves.c.leaf_data).where(leaves.c.leaf_index == index).scalar_subquery()
    row = conn.execute(select(size.label("size"), data.label("data"))).one()
    return int(row.size), bytes(row.data) if row.data is not None else None


def insert_tree_head(
    conn: Connection, *, size: int, root: bytes, checkpoint: str, signature: bytes, time: datetime
) -> None:
    """Store one signed tree head."""
    conn.execute(
        insert(tree_heads).values(
            tree_size=size, root_hash=root, checkpoint=checkpoint, signature=signature, time=time
        )
    )


def latest_tree_head(conn: Connection) -> RowMapping | None:
    """The newest signed tree head."""
    return (
        conn.execute(select(tree_heads).order_by(tree_heads.c.tree_size.desc()).limit(1)).mappings().first()
    )


def tree_head_at(conn: Connection, size: int) -> RowMapping | None:
    """The signed tree head of exactly `size` entries, if one was stored."""
    return conn.execute(select(tree_heads).where(tree_heads.c.tree_size == size)).mappings().first()


def _by_actor(actor: str) -> ColumnElement[bool]:
    """Entries whose actor is `actor` as typed, or as a login reads a username (" Pat.Smith " is
    pat.smith): found by probing, a filter of "PRAC1" answered nothing, where prac1 had events."""
    forms = dict.fromkeys(filter_key(a) for a in (actor, actor.strip(), actor.strip().lower()))
    return leaves.c.actor.in_(list(forms))


def leaves_by_actor(conn: Connection, actor: str) -> list[tuple[int, bytes]]:
    """(index, data) of every entry whose actor is `actor`, in log order (indexed)."""
    query = (
        select(leaves.c.leaf_index, leaves.c.leaf_data).where(_by_actor(actor)).order_by(leaves.c.leaf_index)
    )
    return [(int(i), bytes(d)) for i, d in conn.execute(query)]


def leaf_count(conn: Connection) -> int:
    """Number of leaves stored, counted (not the tree state's own count, which may be what was
    altered)."""
    return int(conn.execute(select(func.count()).select_from(leaves)).scalar_one())


def tree_size(conn: Connection) -> int:
    """Number of leaves."""
    return int(conn.execute(select(tree_state.c.size).where(tree_state.c.id == 1)).scalar_one())


def page_of_leaves(
    conn: Connection, *, contactpoint_id: str, actor: str, start: int, limit: int
) -> list[tuple[int, bytes]]:
    """Up to `limit` leaves from index `start` on, filtered, in log order. Filtered by child, each
    of the two indexes that name it (the leaves' own column, the index of other children) is read
    from `start` for at most `limit` entries, so a page costs the same however many events the
    child has."""
    query = select(leaves.c.leaf_index, leaves.c.leaf_data)
    if contactpoint_id:
        query = query.where(leaves.c.leaf_index.in_(_page_about(contactpoint_id, actor, start, limit)))
    else:
        query = query.where(leaves.c.leaf_index >= start)
        if actor:
            query = query.where(_by_actor(actor))
    rows = conn.execute(query.order_by(leaves.c.leaf_index).limit(limit))
    return [(int(i), bytes(d)) for i, d in rows]


def _page_about(contactpoint_id: str, actor: str, start: int, limit: int) -> Select[tuple[int]]:
    """The indexes of the first `limit` leaves from `start` on that name `contactpoint_id` (as
    their child or among their other children), by `actor` when given."""
    key = filter_key(contactpoint_id)
    own = select(leaves.c.leaf_index).where(leaves.c.contactpoint_id == key, leaves.c.leaf_index >= start)
    other = select(other_children.c.leaf_index).where(
        other_children.c.contactpoint_id == key, other_children.c.leaf_index >= start
    )
    if actor:
        own = own.where(_by_actor(actor))
        other = other.join(leaves, leaves.c.leaf_index == other_children.c.leaf_index).where(_by_actor(actor))
    # Each half ordered and cut first (wrapped: SQLite allows no LIMIT in a compound's parts).
    halves = [part.order_by(part.selected_columns[0]).limit(limit).subquery() for part in (own, other)]
    named = union(*(select(h.c.leaf_index) for h in halves)).subquery()
    return select(named.c.leaf_index)


def stream_leaves(conn: Connection) -> Iterator[RowMapping]:
    """Every leaf row in order of index, fetched in batches (for verification of a large log)."""
    query = select(leaves).order_by(leaves.c.leaf_index)
    return iter(conn.execution_options(yield_per=STREAM_BATCH).execute(query).mappings())


def stream_tree_heads(conn: Connection) -> Iterator[RowMapping]:
    """Every signed tree head, smallest first, fetched in batches (for verification)."""
    query = select(tree_heads).order_by(tree_heads.c.tree_size)
    return iter(conn.execution_options(yield_per=STREAM_BATCH).execute(query).mappings())


def holds_entries(conn: Connection) -> bool:
    """Whether the log holds anything at all: a leaf, a head, or a state past zero (so that a log
    whose heads or state were deleted still counts as one)."""
    state = read_state(conn)
    if state is not None and state[0] > 0:
        return True
    for table in (leaves, tree_heads):
        if conn.execute(select(literal(1)).select_from(table).limit(1)).first() is not None:
            return True
    return False


def leaves_about(conn: Connection, *, contactpoint_id: str) -> list[tuple[int, bytes]]:
    """Every leaf whose event names `contactpoint_id` (as its child or among its other children),
    in log order (a subject-access report)."""
    rows = conn.execute(
        select(leaves.c.leaf_index, leaves.c.leaf_data)
        .where(leaves.c.leaf_index.in_(_indexes_about(contactpoint_id)))
        .order_by(leaves.c.leaf_index)
    )
    return [(int(i), bytes(d)) for i, d in rows]


def _indexes_about(contactpoint_id: str) -> Select[tuple[int]]:
    """The indexes of the leaves whose event names `contactpoint_id`, as its child or among its
    other children (both indexed)."""
    key = filter_key(contactpoint_id)
    named = union(
        select(leaves.c.leaf_index).where(leaves.c.contactpoint_id == key),
        select(other_children.c.leaf_index).where(other_children.c.contactpoint_id == key),
    )
    return select(named.subquery().c.leaf_index)


def stream_other_children(conn: Connection) -> Iterator[tuple[int, str]]:
    """Every (leaf index, child) of the index of other children, in order of leaf index then
    child, fetched in batches (for verification)."""
    query = select(other_children.c.leaf_index, other_children.c.contactpoint_id).order_by(
        other_children.c.leaf_index, other_children.c.contactpoint_id
    )
    rows = conn.execution_options(yield_per=STREAM_BATCH).execute(query)
    return ((int(i), str(c)) for i, c in rows)


def first_leaf_time(conn: Connection) -> datetime | None:
    """When the log's first entry was written (its filter column; `audit verify` checks it
    against the entry's data), or None for an empty log."""
    value: datetime | None = conn.execute(select(leaves.c.time).where(leaves.c.leaf_index == 0)).scalar()
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
