"""Re-estimating the match model from the registry's own data (`contactpoint records
train-matching`): name frequencies for the term-frequency adjustment, u from random pairs, and m
and the prior by EM over the pairs blocking brings together — as splink trains its models."""

from __future__ import annotations

import random
from dataclasses import replace

from sqlalchemy import Connection

from services.records.linkage import Features, Model, default_model, estimate, name_frequencies
from services.records.repository import children as children_repo
from services.records.repository import training_samples

RANDOM_PAIRS = 100_000


def estimate_from_registry(
    conn: Connection, *, iterations: int, sample: int, seed: int = 0
) -> tuple[Model, int]:
    """A model re-estimated from up to `sample` records and blocked pairs; (model, pairs used)."""
    records = [Features.from_json(f) for f in training_samples.sample_features(conn, limit=sample)]
    base = default_model()
    if len(records) < 2:
        return base, 0
    family, given = name_frequencies(records)
    # The shipped m, u and prior (and the registry size that prior was set for), this registry's names.
    base = replace(base, family_frequency=family, given_frequency=given)
    rng = random.Random(seed)
    randoms = [tuple(rng.sample(records, 2)) for _ in range(min(RANDOM_PAIRS, len(records) * 10))]
    pairs = [
        (Features.from_json(a), Features.from_json(b))
        for a, b in training_samples.blocked_pairs(conn, limit=sample, seed=seed)
    ]
    if not pairs:
        return base, 0
    model = estimate(base, pairs, iterations=iterations, fix_u_from=[(a, b) for a, b in randoms])
    # λ was estimated in this registry: scaled from its size as it grows (`Model.for_registry`).
    return replace(model, children=children_repo.count_active(conn) or base.children), len(pairs)
