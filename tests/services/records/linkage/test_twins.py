"""Whether two given names could be one child's: generous, because one child's badly misspelt
record must not be taken for a twin; strict enough that twins' names are told apart."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contactpoint.common.v1 import child_pb2
from services.records.linkage import Features, compare, default_model
from services.records.linkage.comparisons import FIELDS
from services.records.linkage.given_alike import how_alike, middles_clash
from services.records.linkage.nicknames import canonical_forms, nicknames, nicknames_with_typo
from services.records.linkage.twins import (
    scored_twins,
    siblings,
    twins,
    two_children_despite_nhs,
    vouches,
)
from tests.services.records.linkage import child


@pytest.mark.parametrize(
    ("a", "b", "alike"),
    [
        (("oliver",), ("oliver",), "same"),
        (("james", "oliver"), ("oliver",), "same"),  # known by the middle name
        (("xqtom", "edward"), ("harry", "edward"), "middle"),  # a first name mangled into no name
        # Two names beside one middle name are two children's (found by probing: joined).
        (("tom", "edward"), ("harry", "edward"), None),
        (("emily", "rose"), ("ruby", "rose"), None),
        (("ava", "rose"), ("lily", "rose"), None),  # "Lily-Rose"
        (("sophie", "ann"), ("charlotte", "ann"), None),
        (("j",), ("james",), "initial"),
        (("marigo",), ("marigold",), "short"),  # cut short by a field's length
        (("mari",), ("marigold",), None),  # Mari is a name given in England (917 babies)
        (("bill",), ("william",), "nickname"),
        (("leonnard",), ("lenny",), "nickname"),  # a nickname, and a typo in the full name
        (("jonathon",), ("jonathan",), "spelling"),
        (("gyu",), ("guy",), "typo"),  # two letters swapped in a short name, making no name
        (("je",), ("joe",), "typo"),  # a letter dropped
        (("albie",), ("alby",), "spelling"),  # the same sound
        (("jacqucline",), ("jacqueyine",), "spelling"),  # two typos in a long name
        (("muariceeric",), ("maurice", "eric"), "spelling"),  # joined up, with a typo
        (("eva",), ("ava",), None),  # a changed letter in a short name makes another name
        (("holly",), ("molly",), None),  # twins' rhyming names: only the first letter differs
        (("lily",), ("lola",), None),  # a two-letter sound is no proof of one name
        (("elly",), ("ellie",), "spelling"),  # ...but it is when the names begin alike
        (("max",), ("mas",), "typo"),  # a known name and a neighbouring key that makes no name
        (("leo",), ("lep",), "typo"),
        (("isabelle",), ("isbaelle",), "typo"),  # two letters swapped
        (("emily",), ("rmily",), "typo"),  # a slip in the first letter that makes no name
        (("jack",), ("nack",), "typo"),
        (("tanisha",), ("ganisha",), "typo"),
        (("rlla",), ("eella",), "typo"),  # no names, each one slip from Ella
        (("avs",), ("avq",), "typo"),
        (("lucy",), ("olivia", "lcy"), "typo"),  # known by a middle name, a letter dropped
        (("sophie", "ava"), ("avva",), "typo"),
        (("mason",), ("jason",), None),  # rhyming twins: both are names, the keys neighbours
        (("mia",), ("nia",), None),
        (("harry",), ("garry",), None),
        (("tom",), ("tim",), None),  # neither is a known name: they may be twins' names
        (("poppy",), ("pippa",), None),  # two letters apart in a short name
        (("emily", "eleqnor"), ("eleanor",), "typo"),  # known by a middle name, mistyped
        (("louie", "mason", "lucas"), ("masno", "lucas"), "typo"),
        (("holly", "rose"), ("molly",), None),  # the middle name is no help to a rhyme
        (("oliver",), ("jack",), None),
        (("j",), ("k",), None),
        ((), ("jack",), "same"),
        # A double first name written as one word by one system (found by the quality bench).
        (("freya", "mae", "zara"), ("freyamae", "zara"), "same"),
        (("chloe", "leigh"), ("chloeleigh", "freya"), "same"),
        (("lily",), ("lilymae",), None),  # one name is not two joined
    ],
)
def test_how_alike(a: tuple[str, ...], b: tuple[str, ...], alike: str | None) -> None:
    assert how_alike(child(given=a), child(given=b)) == alike
    assert how_alike(child(given=b), child(given=a)) == alike


def test_names_swapped_between_fields_are_the_same_name() -> None:
    assert how_alike(child(family=("smith",)), child(given=("smith",), family=("oliver",))) == "same"


def test_twins_need_a_household_and_a_birthday() -> None:
    jack = child(given=("jack",))
    assert twins(child(), jack)
    assert not twins(child(), child(given=("jack",), postcode="LS16AB"))  # another home
    assert not twins(child(), child(given=("jack",), dob=dt.date(2012, 1, 2)))  # a sibling
    assert siblings(child(), child(given=("jack",), dob=dt.date(2012, 1, 2)))
    assert not twins(child(), child(given=("jack",), family=("patel",)))
    assert not twins(child(), child(given=("olly",)))


def test_close_names_with_different_genders_are_twins_unless_vouched_for() -> None:
    alexander, alexandra = child(given=("alexander",), gender=1), child(given=("alexandra",), gender=2)
    assert twins(alexander, alexandra)
    assert not vouches(alexander, alexandra)
    assert vouches(alexander, child(given=("alex",), gender=1))  # a nickname vouches...
    assert vouches(alexander, child(given=("alex",), gender=0))
    # ...but not a girl's for a boy: "Alex" (a girl) is Alexandra, Alexander's twin sister.
    assert not vouches(alexander, child(given=("alex",), gender=2))
    assert not vouches(child(given=("willow",)), child(given=("w",)))  # an initial does not


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("louis", "louise"),
        ("daniel", "danielle"),
        ("daniel", "daniela"),  # a letter added, though "daniela" is not in the table
        ("george", "georgia"),
        ("olivia", "oliver"),
    ],
)
def test_a_boy_and_a_girl_with_near_names_are_twins(a: str, b: str) -> None:
    boy, girl = child(given=(a,), gender=1), child(given=(b,), gender=2)
    assert twins(boy, girl) and twins(girl, boy)
    assert not vouches(boy, girl)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("harry", "harriet"),
        ("sam", "samantha"),
        ("alex", "alexandra"),
        ("jo", "joanna"),
        ("freddie", "frederica"),
    ],
)
def test_a_boy_and_a_girl_whose_names_share_a_nickname_are_twins(a: str, b: str) -> None:
    """Found by probing: Harry (a boy) and Harriet (a girl), same family, date of birth and home,
    were joined into one child, shown as a girl with her brother as a former name."""
    boy, girl = child(given=(a,), gender=1), child(given=(b,), gender=2)
    assert twins(boy, girl) and twins(girl, boy)
    assert not vouches(boy, girl) and not vouches(girl, boy)
    # The same name by nickname, one gender, is one child.
    assert not twins(child(given=(a,), gender=2), girl)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (("ava", "grace"), ("ava", "rose")),
        (("lily", "mae"), ("lily", "rose")),  # Lily-Mae and Lily-Rose
        (("muhammad", "ibrahim"), ("muhammad", "hassan")),
        (("mary", "jane"), ("mary", "ann")),
    ],
)
def test_one_first_name_with_clashing_middle_names_is_twins(a: tuple[str, ...], b: tuple[str, ...]) -> None:
    first, second = child(given=a), child(given=b)
    assert middles_clash(first, second) and twins(first, second) and not vouches(first, second)
    # One record without the middle name, with its initial, or with it misspelt: one child.
    for same in ((a[0],), (a[0], a[1][0]), (a[0], a[1] + a[1][-1])):
        assert not middles_clash(first, child(given=same)), same


def test_a_double_first_name_joined_up_is_one_child_not_a_twin() -> None:
    freya_mae = child(given=("freya", "mae", "zara"))
    joined = child(given=("freyamae", "zara"))
    assert not twins(freya_mae, joined) and vouches(freya_mae, joined) and vouches(joined, freya_mae)
    # The names after the joined ones are compared as middle names: no clash with none after...
    assert not middles_clash(child(given=("chloeleigh", "freya")), child(given=("chloe", "leigh")))
    # ...and a clash when both give another.
    assert middles_clash(child(given=("freyamae", "rose")), child(given=("freya", "mae", "grace")))
    # Lily and a twin given the double name Lily-Mae stay two.
    assert twins(child(given=("lily",)), child(given=("lilymae",)))


def test_nickname_helpers() -> None:
    assert nicknames("liam", "william") and not nicknames("william", "william")
    assert not nicknames("alexander", "alexandra")  # Alex is short for both; they are not one name
    assert canonical_forms("alex") == ("alexander", "alexandra")
    assert canonical_forms("bill") == ("william",)
    assert canonical_forms("zebedee") == ("zebedee",)
    assert nicknames_with_typo("riceky", "richard")
    assert not nicknames_with_typo("roy", "robin")  # a typo in a short name makes another name


@pytest.mark.parametrize(("a", "b"), [("evelyn", "evelyh"), ("max", "msx"), ("isabelle", "isbaelle")])
def test_a_typo_of_a_known_name_is_one_child_unless_the_genders_clash(a: str, b: str) -> None:
    one, other = child(given=(a,), gender=2), child(given=(b,), gender=2)
    assert not twins(one, other) and vouches(one, other)
    # A name missing from the table may still be a name: with a girl and a boy, twins.
    boy = child(given=(b,), gender=1)
    assert twins(one, boy) and twins(boy, one) and not vouches(one, boy)


@pytest.mark.parametrize(("a", "b"), [("ethan", "ethna"), ("kian", "kina"), ("leo", "lei")])
def test_a_boy_and_a_girl_one_slip_apart_are_twins(a: str, b: str) -> None:
    boy, girl = child(given=(a,), gender=1), child(given=(b,), gender=2)
    assert twins(boy, girl) and twins(girl, boy)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (("grace", "louise"), ("louisa",)),
        (("amelia", "rose"), ("rosa",)),
        (("lily", "mae"), ("may",)),
        (("ava", "grace"), ("gracie",)),
        (("emily", "kate"), ("katie",)),
        (("jack", "stephen"), ("steven",)),
    ],
)
def test_a_twin_named_like_the_other_twins_middle_name_is_a_twin(
    a: tuple[str, ...], b: tuple[str, ...]
) -> None:
    assert twins(child(given=a), child(given=b)) and twins(child(given=b), child(given=a))


def test_twins_known_by_their_middle_names_stay_twins() -> None:
    # Twins whose names share nothing, even when one of them is known by a middle name.
    assert twins(child(given=("jack", "ryan")), child(given=("oscar",)))
    assert not twins(child(given=("jack", "ryan")), child(given=("ryna",)))  # "Ryan", misspelt


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (("muhammad", "ibrahim"), ("mohammed", "hassan")),  # the first name spelt another way
        (("ava", "rose"), ("grace", "ava")),  # the shared name in another place
        (("ava", "grace", "mary"), ("ava", "rose", "mary")),  # a second middle name shared too
    ],
)
def test_clashing_other_names_beside_a_shared_one_are_twins(a: tuple[str, ...], b: tuple[str, ...]) -> None:
    assert middles_clash(child(given=a), child(given=b)) and twins(child(given=a), child(given=b))
    # The same names in another order are one child.
    assert not middles_clash(child(given=a), child(given=tuple(reversed(a))))


def test_one_record_lacking_a_middle_name_is_no_clash() -> None:
    assert not middles_clash(child(given=("ava", "grace", "mary")), child(given=("ava", "mary")))


def test_a_middle_name_with_a_slip_that_makes_no_name_is_no_clash() -> None:
    # "Lro" is Leo mistyped (neighbouring keys), not a twin's other middle name.
    assert not middles_clash(child(given=("christopher", "leo")), child(given=("christopher", "lro")))
    assert middles_clash(child(given=("christopher", "leo")), child(given=("christopher", "max")))
    # Two slips in a middle name are one name when they make no name (found by the quality bench).
    assert not middles_clash(child(given=("esme", "grace", "poppy")), child(given=("esme", "graek", "poppy")))
    assert not middles_clash(child(given=("zara", "leigh")), child(given=("zara", "liefh")))
    assert not middles_clash(child(given=("poppy", "esem")), child(given=("poppy", "esmr")))
    # ...but two names two letters apart are twins' middle names, and so are short ones.
    assert middles_clash(child(given=("ava", "grace")), child(given=("ava", "bryce")))
    assert middles_clash(child(given=("ava", "mae")), child(given=("ava", "kai")))


@pytest.mark.parametrize(
    ("a", "b", "two"),
    [
        ("hannah", "gannah", False),  # a slip of the first letter making no name: one child
        ("hannah", "jannah", True),  # both names given in England (Jannah: 1,086 babies)
        ("jack", "nack", False),
        ("mason", "jason", True),  # both names: two children with a copied number
        ("holly", "molly", True),
    ],
)
def test_a_shared_nhs_number_doubts_a_rhyme_only_between_two_names(a: str, b: str, two: bool) -> None:
    assert two_children_despite_nhs(child(given=(a,)), child(given=(b,))) is two


@pytest.mark.parametrize(
    ("a", "b", "alike"),
    [
        ("isabella", "lsabella", "typo"),  # a letter read for one like it, making no name
        ("leo", "ieo", "typo"),
        ("jack", "jaek", "typo"),
        ("frederick", "frde", "nickname"),  # Fred, two letters swapped
        ("ella", "ila", None),  # no slip of hand or eye
        ("aisha", "ayesha", "spelling"),  # listed spellings of one name
        ("niamh", "neve", "spelling"),
        ("ahmed", "ahmad", "spelling"),  # transliterated: one name, no twins (bench: they were kept apart)
        ("freya", "freja", "spelling"),
    ],
)
def test_slips_of_the_eye_and_of_a_nickname(a: str, b: str, alike: str | None) -> None:
    assert how_alike(child(given=(a,)), child(given=(b,))) == alike
    assert how_alike(child(given=(b,)), child(given=(a,))) == alike


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("jack", "jake"),  # two names, alike: twins (found by probing: they were joined)
        ("mia", "mila"),
        ("lena", "lana"),
        ("ella", "bella"),
        ("nia", "nina"),
        ("saoirse", "sorcha"),  # names that sound alike are not spellings of one name
        ("aoife", "effie"),
        ("ciara", "kira"),
        ("millie", "mollie"),  # two of England's commonest names, however long: twins' (found by
        ("harvey", "harley"),  # listing every pair of the commonest names that counted as one)
        ("bailey", "bradley"),
        ("harper", "harley"),
        ("nathan", "jonathan"),
        ("amelia", "emilia"),
        ("olivia", "hollie"),  # was "Ollie" misspelt: a nickname of Olivia's
        ("mia", "millie"),  # both short for Amelia, each a name of its own
        ("charlie", "lottie"),
        ("evie", "eva"),  # both short for Eve (found by probing: twins Evie and Eva were joined)
        ("zara", "sara"),  # a first letter of another sound (found by probing: joined)
        ("sajid", "said"),  # a "j" is no "y" (found by re-probing: joined by a rule of a day)
        ("sajida", "saida"),
        ("rajan", "rayan"),
        ("dija", "diya"),
        ("raja", "raya"),  # nor a final "ja" (found by re-probing a rule that read it so: joined)
        ("teja", "teya"),
        ("sanja", "sanya"),
    ],
)
def test_two_real_names_alike_are_twins_names(a: str, b: str) -> None:
    assert how_alike(child(given=(a,)), child(given=(b,))) is None
    assert twins(child(given=(a,)), child(given=(b,)))
    assert two_children_despite_nhs(child(given=(a,)), child(given=(b,)))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("harry", "henry"),  # a short form and its full form
        ("katie", "catherine"),  # ... the full form spelt another way
        ("finn", "finley"),
        ("muhammad", "mohammad"),
        ("kate", "katie"),  # two short forms spelt alike
        ("millie", "amelia"),
        ("evie", "eve"),
        ("evie", "evelyn"),
        ("annie", "anne"),
        # Found by a probe's own feeds: each pair was two children, created with no review.
        ("grace", "gracie"),
        ("jakub", "kuba"),  # Polish
        ("zofia", "zosia"),
        ("louis", "louie"),
        ("temitope", "tope"),  # Yoruba
        ("folasade", "sade"),
        ("folasade", "shade"),  # re-probed
        ("chukwuemeka", "emeka"),  # Igbo
    ],
)
def test_a_nickname_of_a_common_name_is_still_one_name(a: str, b: str) -> None:
    assert how_alike(child(given=(a,)), child(given=(b,))) == "nickname"
    assert not twins(child(given=(a,)), child(given=(b,)))


@pytest.mark.parametrize(
    ("a", "b"), [("holly", "hollie"), ("katy", "katie"), ("lily", "lilly"), ("alfie", "alfy")]
)
def test_one_name_with_another_pet_ending_is_one_name(a: str, b: str) -> None:
    assert how_alike(child(given=(a,)), child(given=(b,))) is not None


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("sofia", "sophia"),
        ("oscar", "oskar"),
        ("artur", "arthur"),
        ("maya", "maia"),
        ("zahra", "zara"),
        # Another language's spelling, listed (found by probing and re-probing: Maja and Maya,
        # Zofia and Sofia were kept apart as twins').
        ("maja", "maya"),
        ("anja", "anya"),
        # Arabic names transliterated (found by a probe's own feeds: with one NHS number and date
        # of birth, reviewed as though two children's).
        ("kareem", "karim"),
        ("uthman", "usman"),
        ("nour", "noor"),
        ("sonja", "sonya"),
        ("katja", "katya"),
        ("katja", "katia"),
        ("kaja", "kaya"),  # listed (found by re-probing: split with no review)
        ("tanja", "tania"),
        ("anja", "ania"),
        ("dunja", "dunya"),
        ("zofia", "sofia"),
        ("zuzanna", "susanna"),
        ("zahra", "sahra"),
        ("xander", "zander"),
    ],
)
def test_one_name_spelt_as_it_sounds_is_one_name(a: str, b: str) -> None:
    assert how_alike(child(given=(a,)), child(given=(b,))) is not None
    assert not two_children_despite_nhs(child(given=(a,)), child(given=(b,)))  # one NHS number: linked


def test_leo_and_leon_are_two_names() -> None:
    """Found by probing: twin boys Leo and Leon were joined as one child's nickname."""
    assert twins(child(given=("leo",)), child(given=("leon",)))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("daniel", "danielle"),
        ("joseph", "josephine"),
        ("paul", "paula"),
        ("harry", "harriet"),
        # Found by probing: names Faker's tables lack, or call both (Toni: 99% girls here).
        ("suhail", "suhaila"),
        ("tony", "toni"),
    ],
)
def test_a_boy_and_the_girls_name_made_of_his_are_twins_when_gender_is_missing(a: str, b: str) -> None:
    """Found by probing: Daniel and Danielle with no gender recorded were joined."""
    unknown = child_pb2.GENDER_UNSPECIFIED
    assert twins(child(given=(a,), gender=unknown), child(given=(b,), gender=unknown))
    assert twins(child(given=(a,), gender=child_pb2.GENDER_MALE), child(given=(b,), gender=unknown))
    assert not vouches(child(given=(b,), gender=unknown), child(given=(a,), gender=unknown))


def test_with_the_same_known_gender_a_longer_name_with_a_feminine_ending_is_a_slip() -> None:
    male = child_pb2.GENDER_MALE
    assert not twins(child(given=("daniel",), gender=male), child(given=("danielle",), gender=male))


@pytest.mark.parametrize(("a", "b"), [("isabel", "isabella"), ("jasmin", "jasmine"), ("yasmin", "yasmine")])
def test_one_girls_name_spelt_two_ways_is_no_boy_and_girl(a: str, b: str) -> None:
    """Found by re-probing: with one gender missing these were split as a boy and a girl."""
    female, unknown = child_pb2.GENDER_FEMALE, child_pb2.GENDER_UNSPECIFIED
    assert not twins(child(given=(a,), gender=female), child(given=(b,), gender=unknown))


@pytest.mark.parametrize(("a", "b"), [("chloe", "khloe"), ("caleb", "kaleb")])
def test_a_first_letter_spelt_as_it_sounds_is_one_name(a: str, b: str) -> None:
    """Found by re-probing: Chloe and Khloe were kept apart as a rhyme (Holly/Molly)."""
    assert how_alike(child(given=(a,)), child(given=(b,))) is not None
    assert not twins(child(given=(a,)), child(given=(b,)))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Emily Rose", "Ruby Rose"),
        ("Ava Rose", "Lily-Rose"),
        ("Isla Grace", "Poppy Grace"),
        ("Sophie Ann", "Charlotte Ann"),
        # Found by re-probing.
        ("E Rose", "Ruby Rose"),  # an initial that is not the other's
        ("Hasan Ali", "Husain Ali"),
        ("Ronnie James", "Robbie James"),
    ],
)
def test_twins_sharing_a_middle_name_are_twins(a: str, b: str) -> None:
    # Found by probing: the shared middle name made their first names "alike", and they were joined.
    first, second = (
        child(given=tuple(a.lower().replace("-", " ").split())),
        child(given=tuple(b.lower().replace("-", " ").split())),
    )
    assert twins(first, second) and not vouches(first, second)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("ronnie", "robbie"),  # two names two letters apart
        ("hassan", "hussain"),  # two names that only sound alike
        ("hassan", "hussein"),
    ],
)
def test_two_names_that_are_only_spelt_or_sounded_alike_are_twins(a: str, b: str) -> None:
    # Found by re-probing: each pair was joined as one name misspelt.
    assert twins(child(given=(a,)), child(given=(b,)))


def test_one_name_spelt_or_sounded_two_ways_is_still_one_child() -> None:
    for a, b in [("stephen", "steven"), ("jonathon", "jonathan"), ("matthew", "mathew"), ("emily", "emliy")]:
        assert not twins(child(given=(a,)), child(given=(b,))), (a, b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("ava", "ada"),
        ("aiden", "jaiden"),
        ("luna", "lena"),
        ("ryan", "aryan"),
        # Found by probing a first version that took any name outside England's tables, or any
        # rare one a letter short of a common one, for a slip: each pair was joined.
        ("jayden", "ayden"),
        ("maya", "may"),
        ("laila", "lila"),
        ("roman", "roma"),
        ("jesse", "jess"),
        ("zayn", "zayd"),
        ("felix", "filip"),
        ("szymon", "tymon"),
        ("emeka", "ebuka"),
        ("timi", "tomi"),
        ("cian", "ciaran"),
        ("zorvyn", "xorvyn"),  # two names no list knows, one letter apart: may be twins'
        ("jaylani", "kaylani"),
        # Found by re-probing a narrower version (a letter dropped making a name outside
        # England's tables): names given here that the tables lack.
        ("maya", "aya"),
        ("laila", "aila"),
        ("sienna", "senna"),
        ("rowan", "roan"),
        ("lewis", "louie"),  # two of England's commonest names
        ("anna", "anay"),
    ],
)
def test_two_names_one_slip_apart_stay_twins_names(a: str, b: str) -> None:
    one, other = child(given=(a,)), child(given=(b,))
    assert twins(one, other) and twins(other, one)
    assert two_children_despite_nhs(one, other)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        # A slip of a name commonly given in England that makes a name only other countries'
        # tables hold, which no family here gave three times in a year from 1996 to 2024 (the
        # ONS's tables): the quality bench lost true pairs to each.
        ("edward", "edwar"),  # Colombian
        ("oliver", "olver"),  # Icelandic
        ("james", "jame"),
        ("wiktoria", "qiktoria"),  # a neighbouring key: Wiktoria is given here (1,725 babies)
    ],
)
def test_a_slip_of_a_common_name_into_a_name_not_given_here_is_one_child(a: str, b: str) -> None:
    one, other = child(given=(a,)), child(given=(b,))
    assert not twins(one, other) and not twins(other, one)
    assert not two_children_despite_nhs(one, other)
    assert how_alike(one, other) in ("typo", "short")


@pytest.mark.parametrize(
    ("a", "b", "gender"),
    [
        ("olive", "oliver", child_pb2.GENDER_MALE),
        ("eva", "evan", child_pb2.GENDER_MALE),
        ("lois", "louis", child_pb2.GENDER_MALE),
        ("aria", "ari", child_pb2.GENDER_FEMALE),
        ("amir", "amira", child_pb2.GENDER_MALE),
        ("haley", "harley", child_pb2.GENDER_FEMALE),
    ],
)
def test_a_boy_and_girl_a_letter_apart_recorded_one_gender_stay_twins(a: str, b: str, gender: int) -> None:
    # Found by probing a rule that took the girl's name beside a commonest boy's name, both
    # recorded boys, for his name misspelt: boy-and-girl twins named one letter apart are a real
    # habit, and one twin's gender entered wrongly then joined them.
    assert twins(child(given=(a,), gender=gender), child(given=(b,), gender=gender))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (("caitlin",), ("katelyn",)),  # listed spellings of one name
        (("miriam",), ("maryam",)),
        (("caoimhe", "niamh"), ("caoimhe", "neve")),  # a listed spelling of the middle name
        (("leo", "lewie"), ("leo", "louie")),
    ],
)
def test_spellings_and_pet_forms_of_one_name_are_one_child(a: tuple[str, ...], b: tuple[str, ...]) -> None:
    assert not twins(child(given=a), child(given=b)) and not middles_clash(child(given=a), child(given=b))


def test_olly_with_no_gender_beside_oliver_is_one_child() -> None:
    # A short form given to boys and girls alike in England (a table elsewhere lists it for girls).
    unknown = child_pb2.GENDER_UNSPECIFIED
    oliver = child(given=("oliver",), gender=child_pb2.GENDER_MALE)
    assert not twins(child(given=("olly",), gender=unknown), oliver)


@pytest.mark.parametrize(("a", "b"), [("bailey", "baylee"), ("jermaine", "germaine"), ("darragh", "dara")])
def test_a_boys_and_a_girls_name_alike_with_a_gender_missing_stay_twins(a: str, b: str) -> None:
    # Found by re-probing: Baylee (a pet ending spelt as it sounds), Germaine and Dara (listed
    # as one name) joined a boy and a girl whose genders were not both recorded.
    unknown = child_pb2.GENDER_UNSPECIFIED
    assert twins(child(given=(a,), gender=unknown), child(given=(b,), gender=child_pb2.GENDER_FEMALE))


@pytest.mark.parametrize(
    ("boy", "girl"),
    [
        # Each a boy's and a girl's name by the ONS's tables (80% of their babies or more of one
        # sex); Faker's tables gave no sex to Eddie's or Edie's, Robin's, Isa's, Laurence's and
        # Sidney's name (the twins were one child), and Andrea's and Harley's stay as they were.
        ("eddie", "edie"),
        ("robin", "robyn"),
        ("isa", "isha"),
        ("laurence", "lauren"),
        ("sidney", "sydney"),
        ("andrew", "andrea"),
        ("harley", "hayley"),
    ],
)
def test_a_boys_and_a_girls_name_by_englands_births_with_no_gender_are_twins(boy: str, girl: str) -> None:
    unknown = child_pb2.GENDER_UNSPECIFIED
    assert twins(child(given=(boy,), gender=unknown), child(given=(girl,), gender=unknown))
    assert twins(child(given=(girl,), gender=unknown), child(given=(boy,), gender=unknown))


@pytest.mark.parametrize(
    ("a", "b", "a_gender", "b_gender"),
    [
        # Found by probing the first version with the ONS's tables, each pair one child there:
        # names given here to 36 to 99 babies beside a common name a slip away...
        (("bilal",), ("hilal",), 0, 0),
        (("maya",), ("moya",), 0, 0),
        (("rita",), ("ruta",), 0, 0),
        (("yasir",), ("yasar",), 0, 0),
        (("julia",), ("julita",), 0, 0),
        (("amira",), ("amra",), 0, 0),
        # ...a rare name taken for another's slip where it is no slip of it, by the sound or
        # two-typo rules or beside a shared middle name...
        (("carter",), ("porter",), 0, 0),
        (("bentley",), ("westley",), 0, 0),
        (("emeka", "james"), ("oliver", "james"), 0, 0),
        (("ngozi", "grace"), ("oliver", "grace"), child_pb2.GENDER_FEMALE, child_pb2.GENDER_MALE),
        # ...and a name most babies given it here are of one sex, beside the other's, a gender missing.
        (("charles",), ("charlee",), child_pb2.GENDER_MALE, 0),
        (("valentina",), ("valentine",), child_pb2.GENDER_FEMALE, 0),
        (("ridley",), ("ripley",), child_pb2.GENDER_MALE, 0),
    ],
)
def test_names_families_here_give_stay_twins_names(
    a: tuple[str, ...], b: tuple[str, ...], a_gender: int, b_gender: int
) -> None:
    one, other = child(given=a, gender=a_gender), child(given=b, gender=b_gender)
    assert twins(one, other) and twins(other, one)


def test_a_slip_of_a_name_a_few_hundred_babies_are_given_is_one_child() -> None:
    # Found by probing: Aditya (838 babies) and "Zditya", Adrianna (656) and "Sdrianna" were kept
    # apart as twins once only names 1,000 babies are given counted for a slip.
    for a, b in [("aditya", "zditya"), ("adrianna", "sdrianna")]:
        assert not twins(child(given=(a,)), child(given=(b,))), (a, b)


def test_a_shared_nhs_number_beside_names_that_cannot_be_one_is_reviewed() -> None:
    # Found by probing: Ita (42 babies) was taken for Ida's slip, and the two joined on a number.
    one = child(given=("ida",), gender=child_pb2.GENDER_FEMALE, nhs="9434765919")
    other = child(given=("ita",), gender=child_pb2.GENDER_FEMALE, nhs="9434765919")
    assert two_children_despite_nhs(one, other)


def test_a_name_that_is_all_pet_ending_is_compared_without_error() -> None:
    # Found by probing: "Ey" left no stem, and the comparison raised IndexError.
    for a, b in [("ey", "mey"), ("cy", "ey"), ("ey", "ky"), ("li", "ey")]:
        how_alike(child(given=(a,)), child(given=(b,)))


@pytest.mark.parametrize(("initial", "girl"), [("j", "jessica"), ("a", "amelia"), ("c", "clare")])
def test_an_initial_with_no_gender_is_no_boys_name(initial: str, girl: str) -> None:
    """Found measuring: "J" (122 boys so registered), "A" and "C" read as boys' names, so "J
    Whitfield" with no gender beside a girl Jessica Whitfield were taken for a boy and a girl."""
    unknown, female = child_pb2.GENDER_UNSPECIFIED, child_pb2.GENDER_FEMALE
    assert not twins(child(given=(initial,), gender=unknown), child(given=(girl,), gender=female))


# Names twins are given, their slips, and family names, in either field (a record may have them
# crossed: "Smith Oliver").
_NAMES = ["oliver", "olivia", "olvier", "harry", "harriet", "j", "ava", "eva", "smith", "smyth", "okonkwo"]


_DATES = [dt.date(2015, 3, 7), dt.date(2015, 7, 3), dt.date(2015, 3, 8)]


@st.composite
def _household_records(draw: st.DrawFn) -> Features:
    names = st.lists(st.sampled_from(_NAMES), max_size=2).map(tuple)
    return child(
        given=draw(names),
        family=draw(names),
        former_family=draw(st.lists(st.tuples(st.sampled_from(_NAMES)), max_size=1).map(tuple)),
        dob=draw(st.none() | st.sampled_from(_DATES)),
        gender=draw(st.integers(0, 2)),
        postcode=draw(st.sampled_from(["", "M11AE", "M11AF", "M1IAE", "LS16AB"])),
    )


@settings(max_examples=1500, deadline=None)
@given(_household_records(), _household_records())
def test_twins_from_a_score_are_twins(a: Features, b: Features) -> None:
    # Judging reads the date-of-birth, postcode and family-name levels off the pair's score
    # instead of comparing them again: the answer must be the same.
    assert scored_twins(a, b, compare(a, b, default_model()).levels) == twins(a, b)


def test_a_family_name_crossed_or_different_by_the_score_is_no_household() -> None:
    # Jacob and Joshua Whitfield are twins by their score's levels; the same pair with the family
    # name at "else", or at "swapped" (it was "else" before both names were found crossed), is not.
    jacob = child(given=("jacob",), family=("whitfield",))
    joshua = child(given=("joshua",), family=("whitfield",))
    levels = compare(jacob, joshua, default_model()).levels
    assert scored_twins(jacob, joshua, levels) and twins(jacob, joshua)
    family = FIELDS.index("family_name")
    for level in ("else", "swapped"):
        changed = (*levels[:family], level, *levels[family + 1 :])
        assert not scored_twins(jacob, joshua, changed), level


def test_a_carer_in_common_is_one_household_for_the_twins_rule() -> None:
    # One twin's record written before the family moved, the other's after: the carers still say
    # one household (found by the linkage bench once a carer in common counted after a move).
    mother = (("grace", "okonkwo"),)
    moved = {"postcode": "LS61AA", "house": "3", "street": ("park", "rd"), "town": "leeds"}
    noah, harvey = child(given=("noah",), carers=mother), child(given=("harvey",), carers=mother, **moved)
    assert twins(noah, harvey)
    assert scored_twins(noah, harvey, compare(noah, harvey, default_model()).levels)
    strangers = child(given=("harvey",), carers=(("karen", "okonkwo"),), **moved)
    assert not twins(noah, strangers)
    assert not scored_twins(noah, strangers, compare(noah, strangers, default_model()).levels)
