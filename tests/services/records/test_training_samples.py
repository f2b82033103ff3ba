"""The pairs the match model's re-estimation learns from: every pair of records filed under one
blocking key, read along the keys' index a chunk at a time from a random point, and no more than
asked for."""

from __future__ import annotations

import pytest
from sqlalchemy import insert

from contactpoint.platform.db import Database
from services.records.repository import training_samples
from services.records.tables import blocking_keys

# Keys spread over the whole 64-bit range (a bucket at each end, to be reached by wrapping round).
FILED = {
    -(2**63): ["a", "b", "c"],
    -5: ["a", "b"],
    7: ["d"],
    2**40: ["f", "e"],
    2**63 - 1: ["g", "h"],
}
ALL_PAIRS = {("a", "b"), ("a", "c"), ("b", "c"), ("e", "f"), ("g", "h")}


def _file(db: Database, filed: dict[int, list[str]]) -> None:
    with db.transaction() as conn:
        rows = [{"key": key, "source_id": sid} for key, ids in filed.items() for sid in ids]
        conn.execute(insert(blocking_keys), rows)


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
@pytest.mark.parametrize("chunk", [1, 2, 3, 10_000])
def test_every_pair_under_a_key_once_from_wherever_the_walk_starts(
    db: Database, monkeypatch: pytest.MonkeyPatch, seed: int, chunk: int
) -> None:
    # Chunks of one or two rows split buckets between two statements.
    monkeypatch.setattr(training_samples, "CHUNK", chunk)
    _file(db, FILED)
    with db.transaction(write=False) as conn:
        pairs = training_samples.blocked_pair_ids(conn, limit=100, seed=seed)
    assert len(pairs) == len(set(pairs))
    assert set(pairs) == ALL_PAIRS


def test_no_more_pairs_than_asked_for_each_a_real_one(db: Database) -> None:
    _file(db, FILED)
    with db.transaction(write=False) as conn:
        assert training_samples.blocked_pair_ids(conn, limit=0, seed=9) == []
        for limit in (1, 2, 4):
            pairs = training_samples.blocked_pair_ids(conn, limit=limit, seed=9)
            assert len(pairs) == limit == len(set(pairs))
            assert set(pairs) <= ALL_PAIRS


def test_the_walk_starts_where_the_seed_says(db: Database) -> None:
    # Many keys of two records each: a few pairs from different seeds are different pairs, and
    # the same seed gives the same ones.
    _file(db, {key * 2**51: [f"r{key}a", f"r{key}b"] for key in range(-4096, 4096)})
    with db.transaction(write=False) as conn:
        first = {seed: training_samples.blocked_pair_ids(conn, limit=5, seed=seed) for seed in range(5)}
        again = training_samples.blocked_pair_ids(conn, limit=5, seed=3)
    assert again == first[3]
    assert len({tuple(pairs) for pairs in first.values()}) == 5
