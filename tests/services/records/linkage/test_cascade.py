"""Two-stage candidate reading: no record that shares none of a record's strong blocking keys can
score above `unblocked_bound`, so a decision that `settles` on the strong keys' candidates is the
decision all candidates give. Tried by property (records built to just miss the strong keys) and
on every such pair of simulated children's records."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict

from hypothesis import given, settings
from hypothesis import strategies as st

from contactpoint.cli.synthetic import synthetic_feed
from services.records.linkage import (
    Action,
    Candidate,
    Decision,
    Features,
    blocking_keys,
    compare,
    decide,
    default_model,
)
from services.records.linkage import Thresholds as LinkThresholds
from services.records.linkage.cascade import ROUNDING, is_strong, settles, unblocked_bound
from services.records.linkage.features import features_of
from services.records.validation import normalise_record
from tests.services.records.linkage import NHS, child
from tests.services.records.linkage.test_model import features as model_features

MODEL = default_model()
GIVEN = [
    "oliver",
    "olivia",
    "olvier",
    "ollie",
    "bill",
    "william",
    "j",
    "james",
    "mary",
    "maryjane",
    "h",
    "hh",
]
FAMILY = ["smith", "smyth", "srnith", "okonkwo", "jones", "brown", "smithjones", "h", "wh", "oliver"]
DATES = [
    dt.date(2015, 3, 7),
    dt.date(2015, 7, 3),
    dt.date(2016, 3, 7),
    dt.date(2015, 3, 8),
    dt.date(2014, 12, 31),
]


def strong_keys(f: Features) -> set[str]:
    return {k for k in blocking_keys(f) if is_strong(k)}


def unblocked(a: Features, b: Features) -> bool:
    return not strong_keys(a) & strong_keys(b)


@st.composite
def features(draw: st.DrawFn) -> Features:
    # The model tests' records, with odder names (one letter, no sound) and dates one slip apart.
    family = st.lists(st.sampled_from(FAMILY), max_size=2).map(tuple)
    return dataclasses.replace(
        draw(model_features()),
        given=draw(st.lists(st.sampled_from(GIVEN), max_size=3).map(tuple)),
        family=draw(family),
        former_family=draw(
            st.lists(st.lists(st.sampled_from(FAMILY), min_size=1, max_size=2).map(tuple), max_size=2).map(
                tuple
            )
        ),
        dob=draw(st.none() | st.sampled_from(DATES)),
    )


@settings(max_examples=2000, deadline=None)
@given(features(), features())
def test_no_record_without_a_strong_key_scores_above_the_bound(a: Features, b: Features) -> None:
    if unblocked(a, b):
        assert compare(a, b, MODEL).weight <= unblocked_bound(a, MODEL) + 1e-9


def test_no_simulated_record_without_a_strong_key_scores_above_the_bound() -> None:
    # Every pair of 8,000 simulated children's records that shares a weak key but no strong one:
    # the pairs the second stage would read, most of them the same child with a fault or two.
    records = [
        features_of(normalise_record(r.record)) for r in synthetic_feed(8000, 7, today=dt.date(2026, 1, 1))
    ]
    by_key: dict[str, list[int]] = defaultdict(list)
    for i, f in enumerate(records):
        for k in blocking_keys(f):
            by_key[k].append(i)
    pairs = {(i, j) for k, ids in by_key.items() if not is_strong(k) for i in ids for j in ids if i != j}
    checked = 0
    for i, j in pairs:
        if unblocked(records[i], records[j]):
            checked += 1
            assert compare(records[i], records[j], MODEL).weight <= unblocked_bound(records[i], MODEL) + 1e-9
    assert checked > 300


def _decide(new: Features, candidate: Candidate) -> Decision:
    return decide(
        new,
        organisation="E1",
        source_system="health",
        source_record_id="H-1",
        candidates=[candidate],
        kept_apart=(),
        model=MODEL,
        thresholds=LinkThresholds(),
    )


def test_a_good_match_settles_and_a_moved_child_does_not() -> None:
    new = child(nhs="")
    same = Candidate("A", "E1", "education", "E-1", child())
    decision = _decide(new, same)
    assert decision.action == Action.LINK
    bound = unblocked_bound(new, MODEL)
    assert decision.score > bound and settles(decision, bound)

    moved = Candidate(
        "A", "E1", "education", "E-1", child(postcode="LS16AB", house="3", street=("park", "rd"))
    )
    decision = _decide(new, moved)
    assert decision.action == Action.LINK and not settles(decision, bound)
    # The same NHS number outranks any score a weak-key candidate could reach.
    with_nhs = dataclasses.replace(new, nhs=NHS)
    decision = _decide(
        with_nhs, dataclasses.replace(moved, features=dataclasses.replace(moved.features, nhs=NHS))
    )
    assert decision.nhs_same and settles(decision, unblocked_bound(with_nhs, MODEL))


def test_a_score_at_the_ceiling_does_not_settle() -> None:
    # Found by a review: names swapped, the same date of birth and sector, the best of the rest.
    # Under key scheme 1 (whose dnm key made the first record a strong candidate), a record of the
    # strong keys' child and a weak-key record of another child reached exactly the ceiling
    # (computed in another order, it came out 3.6e-15 low), and in the full read the other child
    # came first in key order and won the tie. Such a score must not settle; one clear of rounding
    # above the ceiling does.
    base = child(house="12", street=("high", "st"), town="manchester", gender=1, nhs="")
    new = dataclasses.replace(base, given=("ka",), family=("caxxxy",), postcode="M11AE")
    strong = dataclasses.replace(base, given=("caxxxy",), family=("ka",), postcode="M11AF")
    weak = dataclasses.replace(strong, given=("ca", "xxxx"), former_family=(("cqqq",),))
    assert unblocked(new, weak)
    bound = unblocked_bound(new, MODEL)
    assert abs(compare(new, weak, MODEL).weight - bound) < 1e-9
    decision = _decide(new, Candidate("Y", "E1", "education", "E-1", strong))
    assert decision.action == Action.LINK and abs(decision.score - bound) < 1e-9
    assert not settles(decision, bound)
    assert settles(dataclasses.replace(decision, score=bound + 2 * ROUNDING), bound)


def test_the_other_sex_with_the_same_date_and_family_name_stays_under_the_bound() -> None:
    # dfp holds the gender, so a boy's record does not share it with a girl's of the same date of
    # birth and family name. With the shipped weights another case is always higher; with weights
    # a registry trained in which a different gender says little, and rare names, this one is the
    # ceiling (it failed before the bound had it).
    m = {**MODEL.m, "gender": {"same": 0.7, "different": 0.3}}
    u = {**MODEL.u, "gender": {"same": 0.6, "different": 0.4}}
    model = dataclasses.replace(MODEL, m=m, u=u)
    boy = child(given=("zebulon",), family=("okonkwo",), gender=1, postcode="", nhs="")
    girl = dataclasses.replace(boy, gender=2)
    assert unblocked(boy, girl)
    assert compare(boy, girl, model).weight <= unblocked_bound(boy, model) + 1e-9
