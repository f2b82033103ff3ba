"""Inclusion and consistency proofs from the stored interior nodes (`tree_nodes`), in O(log n)
rows read, whatever the log's size.

A proof is RFC 9162's walk from the root (`merkle.inclusion_path` / `consistency_path`); each
entry is the hash of a range of leaves, which is one stored perfect subtree or, along the tree's
right edge, a few of them (`merkle.subtree_from_nodes`). The walk runs twice: once to learn which
nodes it needs (about 2·log2 n keys), which are then read in one query each for leaves and nodes,
and once to build the proof from them. Stored nodes are derived data: a wrong one makes a proof
that fails against the signed root, never one that proves a leaf that is not there.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection

from contactpoint.platform import merkle
from services.audit import repository

_PLACEHOLDER = bytes(32)


def _with_stored_nodes(conn: Connection, walk: Callable[[merkle.Subtree], list[bytes]]) -> list[bytes]:
    needed: set[tuple[int, int]] = set()

    def note(level: int, index: int) -> bytes:
        needed.add((level, index))
        return _PLACEHOLDER

    walk(lambda lo, hi: merkle.subtree_from_nodes(lo, hi, note))
    found = repository.node_hashes(conn, needed)
    missing = needed - found.keys()
    if missing:
        raise LookupError(f"the log's stored nodes are incomplete ({len(missing)} missing)")
    return walk(lambda lo, hi: merkle.subtree_from_nodes(lo, hi, lambda lv, i: found[(lv, i)]))


def inclusion_proof(conn: Connection, index: int, size: int) -> list[bytes]:
    """PATH(index, D[size]) from the stored nodes."""
    return _with_stored_nodes(conn, lambda mth: merkle.inclusion_path(index, size, mth))


def consistency_proof(conn: Connection, first: int, second: int) -> list[bytes]:
    """PROOF(first, D[second]) from the stored nodes."""
    return _with_stored_nodes(conn, lambda mth: merkle.consistency_path(first, second, mth))
