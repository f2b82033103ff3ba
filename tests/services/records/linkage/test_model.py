"""The model and its scores: symmetric, explainable field by field, term-frequency adjusted, and
storable as JSON."""

from __future__ import annotations

import datetime as dt
import json
import math

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from services.records.linkage import Features, Model, Score, compare, default_model
from services.records.linkage.comparisons import FIELDS
from services.records.linkage.model import TF_FLOOR
from tests.services.records.linkage import NHS, OTHER_NHS, child

MODEL = default_model()

GIVEN = ["oliver", "olivia", "olvier", "bill", "william", "j", "james", "mary", "maryjane", "jane", "kate"]
FAMILY = ["smith", "smyth", "srnith", "okonkwo", "jones", "brown", "smithjones"]


@st.composite
def features(draw: st.DrawFn) -> Features:
    names = st.lists(st.sampled_from(GIVEN), max_size=3).map(tuple)
    return child(
        given=draw(names),
        family=draw(st.lists(st.sampled_from(FAMILY), max_size=2).map(tuple)),
        former_family=draw(
            st.lists(st.lists(st.sampled_from(FAMILY), min_size=1, max_size=2).map(tuple), max_size=2).map(
                tuple
            )
        ),
        dob=draw(
            st.none()
            | st.sampled_from(
                [dt.date(2015, 3, 7), dt.date(2015, 7, 3), dt.date(2016, 3, 7), dt.date(2012, 1, 1)]
            )
        ),
        gender=draw(st.integers(0, 4)),
        postcode=draw(st.sampled_from(["", "M11AE", "M11AF", "M12BD", "ML1AE", "LS16AB"])),
        house=draw(st.sampled_from(["", "12", "14"])),
        street=draw(st.sampled_from([(), ("high", "st"), ("park", "rd")])),
        town=draw(st.sampled_from(["", "manchester", "leeds"])),
        nhs=draw(st.sampled_from(["", NHS, OTHER_NHS])),
    )


@given(features(), features())
def test_compare_is_symmetric(a: Features, b: Features) -> None:
    assert compare(a, b, MODEL) == compare(b, a, MODEL)


@given(features())
# Found by this test (4 December): a common name now and a rare former one matched a record that
# bears the former name better than itself, until a shared former name counted with the same.
@example(
    Features(
        given=(),
        family=("smith",),
        former_family=(("okonkwo",),),
        former_given=(),
        dob=None,
        gender=0,
        postcode="",
        house="",
        street=(),
        town="",
        nhs="",
    )
)
def test_a_record_matches_itself_at_least_as_well_as_anything(a: Features) -> None:
    assert compare(a, a, MODEL).weight >= compare(a, child(), MODEL).weight or a == child()


def test_the_weight_is_the_prior_plus_the_fields() -> None:
    score = compare(child(nhs=NHS), child(nhs=NHS, postcode="LS16AB"), MODEL)
    assert [r.field for r in score.fields] == list(FIELDS)
    assert math.isclose(score.weight, MODEL.prior_weight + sum(r.weight for r in score.fields))
    assert math.isclose(MODEL.prior_weight, math.log2(MODEL.prior / (1 - MODEL.prior)))


def test_reasons_explain_each_field() -> None:
    reasons = compare(child(given=("bill",)), child(given=("william",)), MODEL).reasons()
    assert len(reasons) == len(FIELDS)
    assert reasons[0] == f"given_names: nickname (+{MODEL.weights['given_names']['nickname']:.1f})"
    assert reasons[-2:] == ["nhs_number: missing (+0.0)", "carers: missing (+0.0)"]


def test_probability_follows_the_weight() -> None:
    assert Score(0.0, ()).probability == 0.5
    assert math.isclose(Score(10.0, ()).probability, 1024 / 1025)
    assert Score(-5000.0, ()).probability < 1e-300
    assert Score(5000.0, ()).probability == 1.0


def test_exact_names_weigh_by_rarity() -> None:
    """Term-frequency adjustment: agreeing on "Smith" says less than agreeing on "Okonkwo"."""

    def family_weight(name: str) -> float:
        return compare(child(family=(name,)), child(family=(name,)), MODEL).fields[1].weight

    def given_weight(name: str) -> float:
        return compare(child(given=(name,)), child(given=(name,)), MODEL).fields[0].weight

    assert family_weight("smith") < family_weight("jones") < family_weight("okonkwo")
    assert math.isclose(family_weight("okonkwo"), math.log2(MODEL.m["family_name"]["exact"] / TF_FLOOR))
    assert given_weight("oliver") < given_weight("zebedee")
    assert given_weight("j") < given_weight("oliver")  # an initial is never a rare name
    smith_smith = compare(child(family=("smith",)), child(family=("smith",)), MODEL).weight
    smith_smyth = compare(child(family=("smith",)), child(family=("smyth",)), MODEL).weight
    assert smith_smith > smith_smyth


def test_a_different_nhs_number_is_a_strong_negative() -> None:
    same = compare(child(nhs=NHS), child(nhs=NHS), MODEL).weight
    different = compare(child(nhs=NHS), child(nhs=OTHER_NHS), MODEL).weight
    assert same - different > 25


def test_model_survives_json() -> None:
    text = MODEL.to_json()
    again = Model.from_json(text)
    assert again == MODEL
    assert again.to_json() == text
    assert json.loads(text)["prior"] == MODEL.prior


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: d["m"]["gender"].pop("same"),
        lambda d: d["u"]["postcode"].__setitem__("full", 0.0),
        lambda d: d["m"]["town"].__setitem__("else", 1.5),
        lambda d: d.__setitem__("prior", 1.0),
    ],
)
def test_a_broken_model_is_refused(damage: object) -> None:
    data = json.loads(MODEL.to_json())
    damage(data)  # type: ignore[operator]
    with pytest.raises(ValueError, match="between 0 and 1"):
        Model.from_json(json.dumps(data))


def test_the_prior_is_scaled_down_in_a_larger_registry_than_it_was_set_for() -> None:
    # Set for 20,000 active children: twice as many needs one bit more evidence for the same odds,
    # fifty times as many log2(50) bits, and a pair's weight falls by exactly that.
    assert MODEL.children == 20_000
    twice, fifty = MODEL.for_registry(40_000), MODEL.for_registry(1_000_000)
    assert twice.prior_weight == pytest.approx(MODEL.prior_weight - 1.0, abs=0.01)
    assert fifty.prior_weight == pytest.approx(MODEL.prior_weight - math.log2(50), abs=0.01)
    pair = (child(), child(postcode="LS61AA", town="leeds"))
    shift = compare(*pair, MODEL).weight - compare(*pair, fifty).weight
    assert shift == pytest.approx(math.log2(50), abs=0.01)
    # Scaled from the size it was set for, whatever the size it was scaled to before.
    assert fifty.for_registry(40_000).prior != twice.prior  # a scaled model is not the base
    assert MODEL.for_registry(40_000).prior == twice.prior


@pytest.mark.parametrize("children", [0, 1, 19_999, 20_000])
def test_the_prior_is_never_raised_for_a_smaller_registry(children: int) -> None:
    assert MODEL.for_registry(children) is MODEL


def test_a_model_set_for_any_size_is_never_scaled() -> None:
    # A model stored before the size was kept (its JSON has none) keeps its prior as it was.
    data = json.loads(MODEL.to_json())
    del data["children"]
    old = Model.from_json(json.dumps(data))
    assert old.children == 0
    assert old.for_registry(10_000_000) is old
    assert json.loads(MODEL.for_registry(50_000).to_json())["children"] == 50_000
