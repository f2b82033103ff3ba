"""Training: expectation-maximisation recovers m, u and λ from pairs simulated under the model, and
name frequencies are counted from a registry's records."""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter

import pytest

from services.records.linkage import Features, Model, blocking_keys, default_model, estimate, name_frequencies
from services.records.linkage.comparisons import FIELDS, MISSING
from services.records.linkage.em import CLIP
from services.records.linkage.model import levels_of
from tests.services.records.linkage import NHS, OTHER_NHS, child

D = dt.date(2015, 3, 7)
# For each field, pairs of values (as Features changes on each side) that compare at a level.
EXAMPLES: dict[str, dict[str, list[tuple[dict[str, object], dict[str, object]]]]] = {
    "given_names": {
        "exact": [
            ({"given": ("oliver",)}, {"given": ("oliver",)}),
            ({"given": ("amelia",)}, {"given": ("amelia",)}),
        ],
        "first": [({"given": ("mary", "jane")}, {"given": ("mary", "rose")})],
        "nickname": [
            ({"given": ("william",)}, {"given": ("bill",)}),
            ({"given": ("katie",)}, {"given": ("catherine",)}),
        ],
        "jaro_winkler_0.92": [({"given": ("jonathan",)}, {"given": ("jonathon",)})],
        "else": [
            ({"given": ("oliver",)}, {"given": ("amelia",)}),
            ({"given": ("jack",)}, {"given": ("sophie",)}),
        ],
    },
    "family_name": {
        "exact": [
            ({"family": ("smith",)}, {"family": ("smith",)}),
            ({"family": ("patel",)}, {"family": ("patel",)}),
        ],
        "former": [({"family": ("brown",), "former_family": (("smith",),)}, {"family": ("smith",)})],
        "jaro_winkler_0.92": [({"family": ("thompson",)}, {"family": ("thomson",)})],
        "else": [
            ({"family": ("smith",)}, {"family": ("patel",)}),
            ({"family": ("jones",)}, {"family": ("nguyen",)}),
        ],
    },
    "date_of_birth": {
        "exact": [({"dob": D}, {"dob": D})],
        "day_month_swapped": [({"dob": D}, {"dob": dt.date(2015, 7, 3)})],
        "one_part": [({"dob": D}, {"dob": dt.date(2016, 3, 7)})],
        "else": [({"dob": D}, {"dob": dt.date(2011, 10, 20)})],
    },
    "gender": {"same": [({"gender": 2}, {"gender": 2})], "different": [({"gender": 1}, {"gender": 2})]},
    "postcode": {
        "full": [({"postcode": "M11AE"}, {"postcode": "M11AE"})],
        "sector": [({"postcode": "M11AE"}, {"postcode": "M11BD"})],
        "district": [({"postcode": "M11AE"}, {"postcode": "M13XY"})],
        "else": [({"postcode": "M11AE"}, {"postcode": "LS16AB"})],
    },
    "address": {
        "house_street": [({}, {})],
        "street": [({}, {"house": "40"})],
        "else": [({}, {"house": "3", "street": ("park", "rd")})],
    },
    "town": {"same": [({}, {})], "else": [({}, {"town": "leeds"})]},
    "nhs_number": {
        "same": [({"nhs": NHS}, {"nhs": NHS})],
        "different": [({"nhs": NHS}, {"nhs": OTHER_NHS})],
        MISSING: [({"nhs": NHS}, {})],
    },
    "carers": {
        "name": [({"carers": (("grace", "okafor"),)}, {"carers": (("grace", "okafor"),)})],
        "else": [({"carers": (("grace", "okafor"),)}, {"carers": (("karen", "jones"),)})],
        MISSING: [({"carers": (("grace", "okafor"),)}, {})],
    },
}
# The truth: how often each level occurs among matches (m) and non-matches (u). It obeys the rules
# that EM takes as given (see `em._known`).
TRUE_M = {
    # One child's records never disagree outright on given names (the rules would call them twins).
    "given_names": {"exact": 0.8, "first": 0.05, "nickname": 0.07, "jaro_winkler_0.92": 0.08},
    "family_name": {"exact": 0.85, "former": 0.05, "jaro_winkler_0.92": 0.05, "else": 0.05},
    "date_of_birth": {"exact": 0.9, "day_month_swapped": 0.03, "one_part": 0.05, "else": 0.02},
    "gender": {"same": 0.97, "different": 0.03},
    "postcode": {"full": 0.75, "sector": 0.05, "district": 0.05, "else": 0.15},
    "address": {"house_street": 0.7, "street": 0.1, "else": 0.2},
    "town": {"same": 0.8, "else": 0.2},
    "nhs_number": {"same": 0.5, MISSING: 0.5},  # different numbers are never the same child
    "carers": {"name": 0.6, "else": 0.2, MISSING: 0.2},
}
TRUE_U = {
    "given_names": {"exact": 0.05, "first": 0.01, "nickname": 0.01, "jaro_winkler_0.92": 0.03, "else": 0.9},
    "family_name": {"exact": 0.1, "former": 0.005, "jaro_winkler_0.92": 0.05, "else": 0.845},
    "date_of_birth": {"exact": 0.3, "day_month_swapped": 0.01, "one_part": 0.2, "else": 0.49},
    "gender": {"same": 0.5, "different": 0.5},
    "postcode": {"full": 0.05, "sector": 0.05, "district": 0.1, "else": 0.8},
    "address": {"house_street": 0.05, "street": 0.1, "else": 0.85},
    "town": {"same": 0.3, "else": 0.7},
    "nhs_number": {"different": 0.5, MISSING: 0.5},  # the same number is always the same child
    "carers": {"name": 0.05, "else": 0.75, MISSING: 0.2},
}


def simulate(n: int, prior: float, rng: random.Random) -> tuple[list[tuple[Features, Features]], list[bool]]:
    """Pairs whose fields are drawn independently given the truth, as the model assumes."""
    pairs, matches = [], []
    for _ in range(n):
        match = rng.random() < prior
        a: dict[str, object] = {}
        b: dict[str, object] = {}
        for field in FIELDS:
            shares = (TRUE_M if match else TRUE_U)[field]
            level = rng.choices(list(shares), weights=list(shares.values()))[0]
            left, right = rng.choice(EXAMPLES[field][level])
            a.update(left)
            b.update(right)
        pairs.append((child(**a), child(**b)))  # type: ignore[arg-type]
        matches.append(match)
    return pairs, matches


def observed(
    pairs: list[tuple[Features, Features]], matches: list[bool], want: bool
) -> dict[str, dict[str, float]]:
    counts = {field: Counter[str]() for field in FIELDS}
    for (a, b), match in zip(pairs, matches, strict=True):
        if match == want:
            for field, level in zip(FIELDS, levels_of(a, b), strict=True):
                if level != MISSING:
                    counts[field][level] += 1
    return {f: {lv: n / sum(c.values()) for lv, n in c.items()} for f, c in counts.items()}


def test_the_examples_compare_at_their_levels() -> None:
    for field, levels in EXAMPLES.items():
        for level, examples in levels.items():
            for left, right in examples:
                got = levels_of(child(**left), child(**right))[FIELDS.index(field)]  # type: ignore[arg-type]
                assert got == level, (field, left, right)


def assert_recovered(model: Model, truth: dict[str, dict[str, float]], table: str, tolerance: float) -> None:
    for field, levels in truth.items():
        for level, share in levels.items():
            assert getattr(model, table)[field][level] == pytest.approx(share, abs=tolerance), (
                table,
                field,
                level,
            )


def test_em_recovers_m_u_and_the_prior() -> None:
    rng = random.Random(20260101)
    pairs, matches = simulate(6000, 0.25, rng)
    model = estimate(default_model(), pairs, iterations=40)
    assert model.prior == pytest.approx(sum(matches) / len(matches), abs=0.01)
    assert_recovered(model, observed(pairs, matches, True), "m", 0.02)
    assert_recovered(model, observed(pairs, matches, False), "u", 0.02)
    for field in FIELDS:  # levels never seen are clipped away from zero, not zero
        assert min(model.m[field].values()) >= CLIP / 2
        assert sum(model.m[field].values()) == pytest.approx(1.0)


def test_em_with_u_fixed_from_random_pairs() -> None:
    rng = random.Random(7)
    pairs, matches = simulate(4000, 0.3, rng)
    randoms, _ = simulate(4000, 0.0, rng)
    model = estimate(default_model(), pairs, iterations=40, fix_u_from=randoms)
    assert_recovered(model, observed(randoms, [False] * len(randoms), False), "u", 1e-4)
    assert_recovered(model, observed(pairs, matches, True), "m", 0.03)
    # λ is scaled to random pairs: the share of matches among the blocked pairs, times the share
    # of random pairs blocking would have brought together.
    blocked = sum(bool(set(blocking_keys(a)) & set(blocking_keys(b))) for a, b in randoms) / len(randoms)
    assert model.prior == pytest.approx(sum(matches) / len(matches) * blocked, rel=0.1)


def test_a_trained_model_scores_and_survives_json() -> None:
    pairs, _ = simulate(500, 0.3, random.Random(3))
    model = estimate(default_model(), pairs, iterations=5)
    assert Model.from_json(model.to_json()) == model
    assert model.family_frequency == default_model().family_frequency
    assert estimate(model, []) is model


def test_name_frequencies_count_family_and_first_given_names() -> None:
    records = [
        child(),
        child(),
        child(family=("smith",), given=("amelia", "rose")),
        child(family=(), given=()),
    ]
    family, given = name_frequencies(records)
    assert family == {"okonkwo": 2 / 3, "smith": 1 / 3}
    assert given == {"oliver": 2 / 3, "amelia": 1 / 3}
    assert name_frequencies([]) == ({}, {})


def test_pairs_the_rules_decide_are_held_at_that_answer() -> None:
    from services.records.linkage.em import _known

    sister = child(given=("amelia",), dob=dt.date(2012, 5, 1), gender=2)
    assert _known(child(), sister) == 0.0  # one household, names that cannot be one
    assert _known(child(nhs=NHS), child(nhs=NHS, postcode="LS16AB")) == 1.0
    assert _known(child(nhs=NHS), child(nhs=OTHER_NHS)) == 0.0
    assert _known(child(), child(postcode="LS16AB")) is None
    # Siblings alone: EM finds no match among them whatever it starts from.
    model = estimate(default_model(), [(child(), sister)] * 50, iterations=3)
    assert model.prior < 1e-6
