"""Inclusion and consistency proofs from the stored interior nodes (`tree_nodes`), in O(log n)
rows read, whatever the log's size.

A proof is RFC 9162's walk from the root (`merkle.inclusion_path` / `consistency_path`); each
entry is the hash of a range of leaves, which is one stored perfect subtree or, along the tree's
right edge, a few of them (`merkle.subtree_from_nodes`). The walk runs twice: once to learn which
nodes it needs (about 2·log2 n keys), which are then read in one query together with the tree's
size and the leaf, and once to build the proof from them. Stored nodes are derived data: a wrong
one makes a proof that fails against the signed root, never one that proves a leaf that is not
there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection

from contactpoint.platform import merkle
from services.audit import repository

_PLACEHOLDER = bytes(32)


Walk = Callable[[merkle.Subtree], list[bytes]]


def _needed(walk: Walk) -> set[tuple[int, int]]:
    """The stored subtrees (level, index) the walk reads."""
    needed: set[tuple[int, int]] = set()

    def note(level: int, index: int) -> bytes:
        needed.add((level, index))
        return _PLACEHOLDER

    walk(lambda lo, hi: merkle.subtree_from_nodes(lo, hi, note))
    return needed


def _built(walk: Walk, needed: set[tuple[int, int]], found: dict[tuple[int, int], bytes]) -> list[bytes]:
    missing = needed - found.keys()
    if missing:
        raise LookupError(f"the log's stored nodes are incomplete ({len(missing)} missing)")
    return walk(lambda lo, hi: merkle.subtree_from_nodes(lo, hi, lambda lv, i: found[(lv, i)]))


@dataclass(frozen=True)
class Read:
    """What one proof's query read: the tree's current size, the leaf's data (inclusion proofs),
    and the proof, when the sizes asked for were within the tree (None otherwise)."""

    current_size: int
    leaf_data: bytes | None
    proof: list[bytes] | None


def _read(conn: Connection, walk: Walk | None, leaf: int | None, within: Callable[[int], bool]) -> Read:
    needed = _needed(walk) if walk is not None else set()
    size, data, found = repository.proof_rows(conn, needed, leaf)
    if walk is None or not within(size):
        return Read(size, data, None)
    return Read(size, data, _built(walk, needed, found))


def inclusion(conn: Connection, index: int, size: int) -> Read:
    """PATH(index, D[size]) from the stored nodes, with the leaf and the tree's size, in one query
    (no proof when `size` is not within the tree or `index` not within `size`)."""
    walk: Walk | None = None
    if 0 <= index < size:
        walk = lambda mth: merkle.inclusion_path(index, size, mth)  # noqa: E731
    return _read(conn, walk, index, lambda current: 0 < size <= current)


def consistency(conn: Connection, first: int, second: int) -> Read:
    """PROOF(first, D[second]) from the stored nodes, with the tree's size, in one query (no proof
    when the sizes are not 0 < first <= second <= the tree's size)."""
    walk: Walk | None = (
        (lambda mth: merkle.consistency_path(first, second, mth)) if 0 < first <= second else None
    )
    return _read(conn, walk, None, lambda current: second <= current)


def inclusion_proof(conn: Connection, index: int, size: int) -> list[bytes]:
    """PATH(index, D[size]) from the stored nodes (for a size known to be within the tree)."""
    read = inclusion(conn, index, size)
    if read.proof is None:
        raise LookupError(f"no inclusion proof of {index} in {size} entries")
    return read.proof


def consistency_proof(conn: Connection, first: int, second: int) -> list[bytes]:
    """PROOF(first, D[second]) from the stored nodes (for sizes known to be within the tree)."""
    read = consistency(conn, first, second)
    if read.proof is None:
        raise LookupError(f"no consistency proof from {first} to {second} entries")
    return read.proof
