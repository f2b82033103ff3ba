"""Twins (and siblings recorded with nearly the same date of birth) are never joined by a score.

Twins share everything the model weighs except their given names and, often, their gender, so
under the model's assumption that fields are independent they score as high as two records of
one child. What tells them apart is that their first names cannot be one name (`given_alike`)."""

from __future__ import annotations

from dataclasses import replace

from rapidfuzz.distance import JaroWinkler

from services.records.linkage.blocking import FEMALE, MALE
from services.records.linkage.comparisons import (
    FIELDS,
    HOUSEHOLD_POSTCODES,
    KNOWN_GENDERS,
    MISSING,
    carers_level,
    dob_level,
    family_level,
    placeholder,
    postcode_level,
    sikh_name_as_family,
)
from services.records.linkage.features import Features
from services.records.linkage.given_alike import how_alike, middles_clash, two_names
from services.records.linkage.given_names import boys_name, girls_name
from services.records.linkage.spelling import rhyme

# Twins live together, but a postcode may be mistyped (`HOUSEHOLD_POSTCODES`), or unknown (an NHS
# pseudo-postcode is no address: found by re-probing, homeless twins Mia and Mila were joined once
# their ZZ99 postcode stopped saying "one household")...
_MAYBE_ONE_HOUSEHOLD = HOUSEHOLD_POSTCODES | {MISSING}
# ...and one of the two records may have the date of birth slightly wrong.
_SAME_DOB = frozenset({"exact", "day_month_swapped", "one_part"})
_DOB, _POSTCODE = FIELDS.index("date_of_birth"), FIELDS.index("postcode")
_FAMILY, _CARERS = FIELDS.index("family_name"), FIELDS.index("carers")
_FAMILY_DIFFERS = frozenset({"else", "swapped"})
# Names only alike (not the same) that known genders tell apart: Alexander/Alexandra,
# Louis/Louise, Harry (male) and Harriet (female) — a nickname shared by a boy's and a girl's name.
_GENDERED = frozenset({"typo", "spelling", "short", "initial", "nickname"})
# Below this Jaro-Winkler similarity two given names are clearly different (Kwame/James 0.73,
# Isla/Ella 0.67, Jacob/Joshua 0.58; Amelia/Emilia 0.76 and Sophie/Sofia 0.76 are not).
_CLEARLY_DIFFERENT = 0.75


def _crossed(a: Features) -> Features:
    # `a` written the other way round ("Okonkwo Oliver"), to compare with a slip in either name.
    return replace(a, given=a.family, family=a.given, former_family=(), former_given=())


def _given_cannot_be_one(a: Features, b: Features) -> bool:
    if not a.given or not b.given:
        return False
    return how_alike(a, b) is None and (not a.family or how_alike(_crossed(a), b) is None)


def _families_alike(a: Features, b: Features) -> bool:
    # A family name alike (`family_level`), or Kaur or Singh as one record's family name and among
    # the other's given names (as `model.levels_of` compares them).
    return family_level(
        a.family, b.family, a.former_family, b.former_family
    ) != "else" or sikh_name_as_family(a.given, a.family, b.given, b.family)


def _family_differs(a: Features, b: Features) -> bool:
    if not a.family or not b.family:
        return False
    if _families_alike(a, b):
        return False
    return not a.given or family_level(a.given, b.family, (), ()) == "else"


def _clearly_different_given(a: Features, b: Features) -> bool:
    # Given names that cannot be one (either way round) and are not even spelt much alike
    # (Jacob/Joshua, Oliver/Priya; not Holly/Molly, Sophie/Sofia): the standard for doubting a
    # shared NHS number and date of birth, higher than the twins rule's.
    if not _given_cannot_be_one(a, b):
        return False
    names = [JaroWinkler.normalized_similarity(x, y) for x in a.given for y in b.given]
    whole = JaroWinkler.normalized_similarity(" ".join(a.given), " ".join(b.given))
    return max(*names, whole) < _CLEARLY_DIFFERENT


def two_children_despite_nhs(a: Features, b: Features) -> bool:
    """Whether two records that share an NHS number and date of birth still look like two
    children (a placeholder or mistyped number that passes the check digit, a twin's number
    copied): given names clearly different or never one name (Holly/Molly), middle names that
    clash, or a clash of genders with any other first or family name (Harry/Harriet, Noah/Nora).
    The same child after a change of family name, or with a nickname or a misspelt name, is not."""
    if placeholder(a.given) != placeholder(b.given):
        # A newborn's placeholder ("Baby") and the name it was given later, under one number and
        # date of birth: the same child, unless a known gender says boy and girl.
        return _genders_differ(a, b)
    if _clearly_different_given(a, b) or middles_clash(a, b):
        return True
    if a.given and b.given and how_alike(a, b) is None:
        a0, b0 = a.given[0], b.given[0]
        if rhyme(a0, b0) or two_names(a0, b0):
            return True  # never one name (Holly/Molly, Mason/Jason, Jack/Jake)
    if not _genders_differ(a, b):
        return False
    # A clash of genders with any other first name (Noah/Nora, Oliver James/Priya James) or family
    # name; the very same names with another gender are a slip of the gender.
    return (a.given[:1] != b.given[:1]) or _family_differs(a, b)


def compatible_first_names(a: Features, b: Features) -> bool:
    """Whether two records' given names could be one child's (see `how_alike`)."""
    return how_alike(a, b) is not None


def _genders_differ(a: Features, b: Features) -> bool:
    return a.gender in KNOWN_GENDERS and b.gender in KNOWN_GENDERS and a.gender != b.gender


def _boy_and_girl(a: Features, b: Features) -> bool:
    # Names alike, one a boy's (never a girl's) and the other a girl's (never a boy's), when the
    # genders cannot say which is which (one or both missing): twins' names, a boy and a girl
    # (found by probing: Daniel/Danielle and Harry/Harriet with a gender missing were one child).
    # A known gender counts as one side too: Charlie recorded male beside Charlotte with no
    # gender (found by probing: Charlie/Charlotte and Frankie/Francesca, a short form both boys
    # and girls are given, were one child). With the same known gender, one name misspelt; one
    # girl's name spelt two ways (Isabel/Isabella) is no boy and girl.
    if not a.given or not b.given or (a.gender in KNOWN_GENDERS and b.gender in KNOWN_GENDERS):
        return False
    x, y = _sex_of(a), _sex_of(b)
    return x is not None and y is not None and x != y


def _sex_of(f: Features) -> str | None:
    # "m" or "f" by the recorded gender, else by a first name only one sex is given; None when
    # neither says.
    if f.gender in (MALE, FEMALE):
        return "m" if f.gender == MALE else "f"
    first = f.given[0]
    boy, girl = boys_name(first), girls_name(first)
    return "m" if boy and not girl else "f" if girl and not boy else None


def _household(a: Features, b: Features) -> bool:
    # The same postcode (or one slip from it), or a carer named alike (one twin's record written
    # before a move and the other's after it: found by the linkage bench once carers counted),
    # and a similar family name. House numbers are not compared: a flat number may stand for the
    # house on one record.
    if (
        postcode_level(a.postcode, b.postcode) not in _MAYBE_ONE_HOUSEHOLD
        and carers_level(a.carers, b.carers) != "name"
    ):
        return False
    return _families_alike(a, b)


def siblings(a: Features, b: Features) -> bool:
    """Whether two records are of two children of one household, whatever their dates of birth:
    a similar family name, the same postcode (or a carer in common), and given names that cannot
    be one name."""
    return _household(a, b) and how_alike(a, b) is None


def twins(a: Features, b: Features) -> bool:
    """Whether two records look like twins: a similar family name, the same date of birth (or one
    slip from it) and postcode (or a carer in common), and given names that cannot be one name,
    or names only spelt alike (Alexander/Alexandra), one the start of the other (Louis/Louise), an
    initial, or a nickname (Harry/Harriet), with different known genders; or the same first name
    and middle names that clash (`middles_clash`)."""
    if dob_level(a.dob, b.dob) not in _SAME_DOB or not _household(a, b):
        return False
    return _twins_by_names(a, b)


def scored_twins(a: Features, b: Features, levels: tuple[str, ...]) -> bool:
    """`twins` for a pair `compare` has scored, from its levels (`comparisons.FIELDS` order): the
    date of birth, postcode and family name are not compared again."""
    dob, postcode, family = levels[_DOB], levels[_POSTCODE], levels[_FAMILY]
    # A family name at "swapped" was "else" before both names were found crossed.
    household = postcode in _MAYBE_ONE_HOUSEHOLD or levels[_CARERS] == "name"
    if dob not in _SAME_DOB or not household or family in _FAMILY_DIFFERS:
        return False
    return _twins_by_names(a, b)


def _twins_by_names(a: Features, b: Features) -> bool:
    # `twins`, once the pair shares a household and a date of birth within a slip.
    if placeholder(a.given) != placeholder(b.given):
        # "Baby Nowak" beside "Lena Nowak": Lena before she was named, or her unnamed twin. No
        # rule can tell, unless a known gender says boy and girl; reviewed (`judging`), not made
        # a second child no one hears of.
        return _genders_differ(a, b)
    alike = how_alike(a, b)
    if alike is None or middles_clash(a, b):
        return True
    return alike in _GENDERED and (_genders_differ(a, b) or _boy_and_girl(a, b))


def vouches(new: Features, old: Features) -> bool:
    """Whether a candidate record says its child is the new record's, not a twin: names that could
    be one (an initial is no proof that Willow is not William's twin), no clash of middle names,
    and, for names only alike, no clash of genders."""
    alike = how_alike(new, old)
    if alike is None or alike == "initial" or middles_clash(new, old):
        return False
    return alike not in _GENDERED or not (_genders_differ(new, old) or _boy_and_girl(new, old))
