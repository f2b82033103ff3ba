"""Re-estimating the match model from the registry's own records, on SQLite and PostgreSQL: a
trained model is stored, and used only once activated."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from contactpoint.cli.synthetic import synthetic_feed
from contactpoint.common.v1 import child_pb2
from contactpoint.platform.db import Database
from services.records import admin
from services.records.linkage import default_model
from services.records.matching import Matcher
from services.records.preparing import Submission
from services.records.training import estimate_from_registry
from tests.services.records.conftest import BIRTH_YEAR, ORG_A, make_record


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


def test_a_model_trained_without_pairs_keeps_the_size_its_prior_was_set_for(db: Database) -> None:
    """Two children that no blocking key brings together: nothing to estimate m or λ from, so the
    shipped prior stays, with the registry size it was set for (it must still scale as the
    registry grows, not count as set for any size)."""
    other = make_record(
        "b", nhs_number="", name=child_pb2.PersonName(given_names="Zebedee", family_name="Quist")
    )
    other.date_of_birth.year, other.date_of_birth.month, other.date_of_birth.day = BIRTH_YEAR - 3, 9, 2
    other.address.CopyFrom(child_pb2.Address(lines=["77 Long Lane"], town="Carlisle", postcode="CA1 1AA"))
    submissions = [Submission("t-a", make_record("a", nhs_number="")), Submission("t-b", other)]
    admin.ingest(db, organisation=ORG_A, submissions=submissions, matcher=Matcher())
    model, pairs = db.run_sync(lambda c: estimate_from_registry(c, iterations=5, sample=5_000), write=False)
    assert pairs == 0
    assert model.prior == default_model().prior
    assert model.children == default_model().children > 0
    assert model.family_frequency != default_model().family_frequency  # the registry's names
