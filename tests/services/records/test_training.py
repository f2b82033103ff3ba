"""Re-estimating the match model from the registry's own records, on SQLite and PostgreSQL: a
trained model is stored, and used only once activated."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from contactpoint.cli.synthetic import synthetic_feed
from contactpoint.platform.db import Database
from services.records import admin
from services.records.linkage import default_model
from services.records.matching import Matcher
from services.records.preparing import Submission


def test_a_trained_model_is_used_only_once_activated(db: Database) -> None:
    batches: dict[str, list[Submission]] = defaultdict(list)
    for n, item in enumerate(synthetic_feed(150, 3, today=dt.date(2026, 11, 25))):
        batches[item.organisation].append(Submission(f"t-{n}", item.record))
    for organisation, submissions in batches.items():
        admin.ingest(db, organisation=organisation, submissions=submissions, matcher=Matcher())

    stored = admin.train_matching(db, iterations=5, sample=5_000)
    assert stored.pairs > 0 and not stored.active
    assert admin.current_matcher(db, Matcher()).model_id == 0  # still the shipped default

    active = admin.train_matching(db, iterations=5, sample=5_000, activate=True)
    matcher = admin.current_matcher(db, Matcher())
    assert matcher.model_id == active.model_id > stored.model_id
    # Learnt from the registry: its name frequencies are the registry's, not the shipped table's.
    assert matcher.model.family_frequency != default_model().family_frequency
    # Its prior was estimated in this registry, and is scaled from this size as it grows.
    assert matcher.model.children == matcher.children > 0
    assert admin.current_matcher(db, matcher) is matcher  # nothing newer: the same matcher
