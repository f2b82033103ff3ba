"""Placeholders real feeds send. A newborn's for a name ("Baby Smith", "Unborn Patel", "Twin A
Wilson") is no name: it never joins two newborns by itself, and the child it stands for is
reviewed, not joined or made a second child unheard of. The NHS's pseudo-postcodes are no place.
(Found by probing with what maternity, health and council systems send.)"""

from __future__ import annotations

from services.records.linkage import Action, compare, default_model, features_of
from services.records.linkage.verdicts import RULE_NHS, RULE_PLACEHOLDER, RULE_TWINS
from tests.services.records.linkage import NHS, child, source_record
from tests.services.records.linkage.test_decide import MOVED, candidate, run

MODEL = default_model()
BABY = child(given=("baby",), family=("smith",), carers=(("kerry", "smith"),))


def test_baby_weighs_nothing_as_a_name() -> None:
    score = compare(BABY, BABY, default_model())
    assert score.levels[0] == "missing" and score.weights[0] == 0.0


def test_two_newborns_called_baby_smith_are_not_one_child() -> None:
    # Born one day to two mothers in two cities, a boy and a girl: "Baby" weighed as a name joined them.
    girl = child(given=("baby",), family=("smith",), gender=2, carers=(("dawn", "smith"),), **MOVED)
    decision = run(girl, [candidate("c1", BABY)])
    assert decision.action == Action.CREATE


def test_a_placeholder_beside_the_name_given_later_is_reviewed() -> None:
    lena = child(given=("lena",), family=("smith",), carers=(("kerry", "smith"),))
    for new, old in ((lena, BABY), (BABY, lena)):
        decision = run(new, [candidate("c1", old)])
        assert decision.action == Action.REVIEW
        assert RULE_PLACEHOLDER in decision.reasons
    # A boy beside a girl's name is her twin brother, not her.
    boy = child(given=("baby",), family=("smith",), gender=1, carers=(("kerry", "smith"),))
    assert (
        run(boy, [candidate("c1", child(given=("lena",), family=("smith",), gender=2))]).action
        == Action.CREATE
    )


def test_unnamed_twins_stay_apart() -> None:
    a = child(given=("baby", "a"), family=("wilson",))
    b = child(given=("baby", "b"), family=("wilson",))
    decision = run(b, [candidate("c1", a)])
    assert decision.action == Action.CREATE and RULE_TWINS in decision.reasons


def test_the_same_nhs_number_names_the_child() -> None:
    # Newborns have an NHS number from birth: with it and the date, the placeholder is the child.
    baby = child(given=("baby",), family=("kowalska",), nhs=NHS, gender=2)
    zofia = child(given=("zofia",), family=("kowalska",), nhs=NHS, gender=2)
    decision = run(zofia, [candidate("c1", baby)])
    assert decision.action == Action.LINK and RULE_NHS in decision.reasons


def test_an_nhs_pseudo_postcode_is_no_place() -> None:
    # ZZ99 3WZ ("address not known") and ZZ99 3VZ ("no fixed abode") are where thousands of
    # children are filed: two such records share no household (found by probing: they scored
    # "postcode: full (+8.1)", and the twins rule counted them one household).
    unknown = features_of(source_record(postcode="ZZ99 3WZ", lines=("No fixed abode",), town="Unknown"))
    assert (unknown.postcode, unknown.house, unknown.street, unknown.town) == ("", "", (), "")
    for other in ("ZZ99 3WZ", "ZZ99 3VZ"):
        elsewhere = features_of(source_record(postcode=other, lines=("No fixed abode",)))
        assert compare(unknown, elsewhere, MODEL).levels[4:7] == ("missing", "missing", "missing")


def test_homeless_twins_stay_apart() -> None:
    # With no address to share, twins' names that cannot be one still make two children (found
    # by re-probing: Mia and Mila Quinlan, both of no fixed abode, were joined once the
    # pseudo-postcode stopped saying "one household").
    nfa = {"postcode": "", "house": "", "street": (), "town": ""}
    mia = child(given=("mia",), family=("quinlan",), gender=2, **nfa)
    mila = child(given=("mila",), family=("quinlan",), gender=2, **nfa)
    decision = run(mila, [candidate("c1", mia)])
    assert decision.action == Action.CREATE and RULE_TWINS in decision.reasons
