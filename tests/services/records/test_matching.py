"""The matcher in use scores with the model scaled to the registry's size, which the service
counts (with a stored model) before it matches and on every refresh: the same pair links in a
registry of 20,000 children and is only proposed in one of 1,000,000."""

from __future__ import annotations

import datetime as dt
import math

import pytest

from contactpoint.platform.convert import from_date
from contactpoint.platform.db import Database
from services.records import admin
from services.records.linkage import Action, Candidate, default_model
from services.records.matching import Matcher
from services.records.preparing import Submission
from services.records.repository.rows import SourceKey
from tests.services.records.conftest import ORG_A, make_record
from tests.services.records.linkage import child

KEY = SourceKey("E08000025", "social-care", "SC-1")
# Moved to another town, with a mistyped first name: about 15 bits at 20,000 children.
KNOWN = Candidate("123456789012", "E08000003", "education", "ED-1", child())
NEW = child(given=("olvier", "james"), postcode="LS61AA", house="3", street=("park", "rd"), town="leeds")


@pytest.mark.parametrize(
    ("children", "action"),
    [(0, Action.LINK), (20_000, Action.LINK), (100_000, Action.LINK), (1_000_000, Action.REVIEW)],
)
def test_a_larger_registry_asks_more_evidence_of_a_link(children: int, action: Action) -> None:
    matcher = Matcher(children=children)
    decision = matcher.decide(NEW, key=KEY, candidates=[KNOWN])
    assert decision.action == action
    assert matcher.scoring.children == max(children, 20_000)
    at_base = Matcher().decide(NEW, key=KEY, candidates=[KNOWN]).score
    assert at_base - decision.score == pytest.approx(max(0.0, math.log2(max(children, 1) / 20_000)), abs=1e-6)


def test_the_service_counts_the_registry_before_it_matches_and_on_every_refresh(db: Database) -> None:
    # The fixture's own child under other dates of birth: each a child of its own (siblings), and
    # only the fixture's words reach the database's log (tests/test_at_rest.py looks there).
    def ingest(days: range) -> None:
        submissions = [
            Submission(
                f"r-{d}",
                make_record(f"r-{d}", date_of_birth=from_date(dt.date(2016, 1, 1) + dt.timedelta(d))),
            )
            for d in days
        ]
        admin.ingest(db, organisation=ORG_A, submissions=submissions, matcher=Matcher())

    assert admin.current_matcher(db, Matcher()).children == 0
    ingest(range(0, 60, 3))
    counted = admin.current_matcher(db, Matcher())
    active = db.run_sync(
        lambda c: c.exec_driver_sql("SELECT count(*) FROM children WHERE status = 'active'").scalar_one(),
        write=False,
    )
    assert counted.children == active > 1
    assert admin.current_matcher(db, counted) is counted  # nothing changed: the same matcher
    ingest(range(200, 260, 3))
    again = admin.current_matcher(db, counted)
    assert again.children > counted.children and again.model_id == counted.model_id
    assert again.scoring is default_model()  # far below the size the shipped prior was set for


def test_a_record_likelier_a_gone_childs_is_reviewed_not_joined_to_another() -> None:
    # A council's second record of a child dead over a year (its own system's: never joined
    # automatically, and no data manager may see the dead child) is decided among the living. A
    # living namesake it only half fits must not take it (found by re-probing: a nickname joined
    # it to another child, filing the dead child's record there).
    dead = Candidate("111111111116", KEY.organisation, KEY.source_system, "SC-0", child(), due=True)
    olly = child(given=("olly",), postcode="LS61AA", house="3", street=("park", "rd"), town="leeds")
    living = Candidate("222222222222", "E08000003", "education", "ED-9", olly)
    decision = Matcher().decide(child(), key=KEY, candidates=[dead, living])
    assert decision.action == Action.REVIEW
    assert decision.candidate is not None and decision.candidate.contactpoint_id == living.contactpoint_id
    # Without the gone child it would have joined: the weight alone is a link's.
    assert Matcher().decide(child(), key=KEY, candidates=[living]).action == Action.LINK
