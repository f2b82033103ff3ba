"""Whether two records' given names could be one child's name (`how_alike`), and whether their
middle names clash (`middles_clash`): the name tests the twins rule (`twins`) is built on.

Deliberately generous about what "could be one name" means, because a record of one child with a
badly misspelt name must not be taken for a twin's; strict enough that twins' names (Holly/Molly,
Jack/Jake, Eva/Ava) stay two."""

from __future__ import annotations

import re
from functools import lru_cache

from rapidfuzz.distance import DamerauLevenshtein, JaroWinkler

from services.records.linkage import frequencies
from services.records.linkage.comparisons import MIN_SOUND, first_name_level, names_swapped
from services.records.linkage.features import Features
from services.records.linkage.given_names import as_names, known_enough
from services.records.linkage.nicknames import (
    groups_near,
    groups_of,
    nicknames,
    nicknames_with_typo,
    shared_full_forms,
)
from services.records.linkage.spelling import (
    PAIR_CACHE_SIZE,
    keyboard_slip,
    lookalike_slip,
    one_edit,
    rhyme,
    sound,
    spelling_key,
)
from services.records.name_variants import variants

# First given names that may be one name misspelt.
_SPELLINGS = frozenset({"jaro_winkler_0.92", "one_edit"})
# Names at least this long may have two typos and still be one name.
LONG_NAME = 6
# Two names (both known) that sound alike are one name spelt two ways only when they are spelt
# this much alike too (Jaro-Winkler): "Stephen"/"Steven" 0.89; not "Hassan"/"Hussain" 0.86.
SOUND_ALIKE_NAMES = 0.88
# The commonest children's first names in England (the shipped table): two spellings that are no
# name at all, each one slip from one of these ("Rlla"/"Eella" for "Ella"), are that name misspelt.
COMMON_GIVEN = tuple(frequencies.GIVEN)


def _typos(a: str, b: str) -> int:
    return int(DamerauLevenshtein.distance(a, b, score_cutoff=3))


def _slip(a: str, b: str) -> bool:
    # A letter dropped, added or two swapped: "Je"/"Joe", "Gyu"/"Guy". (A letter changed in a
    # short name often makes another name: "Eva"/"Ava", so that needs four letters.)
    if not one_edit(a, b):
        return False
    return len(a) != len(b) or sorted(a) == sorted(b)


def _sound_alike(a: str, b: str) -> bool:
    # "Albie"/"Alby", "Stephen"/"Steven": spelt apart, but one name to the ear. A sound of two
    # letters is shared by different names ("Lily"/"Lola"), so it counts only when the names also
    # begin alike.
    if min(len(a), len(b)) < MIN_SOUND or not sound(a) or sound(a) != sound(b):
        return False  # no sound (a script metaphone does not read) is no evidence
    if _two_sounding_names(a, b):
        return False  # two names that only sound alike: "Hassan"/"Hussein" (found by probing)
    return len(sound(a)) >= MIN_SOUND or a[:2] == b[:2]


def _two_sounding_names(a: str, b: str) -> bool:
    # Two known names that sound alike but are spelt apart, and not as one sound is spelt two ways
    # (Sophia/Sofia) nor with another pet ending (Albie/Alby): "Hassan"/"Hussain", twins' names.
    if not all(_names(a, b)) or JaroWinkler.normalized_similarity(a, b) >= SOUND_ALIKE_NAMES:
        return False
    return spelling_key(a) != spelling_key(b) and not _one_pet_name(a, b)


def _slip_of(name: str, other: str) -> bool:
    # One slip of the hand or the eye: a neighbouring key struck for another, a letter read for
    # one like it, two letters swapped, or a letter dropped or added ("Lro"/"Leo",
    # "Lsabella"/"Isabella", "Lcy"/"Lucy", "Avva"/"Ava").
    if len(name) == len(other):
        if keyboard_slip(name, other) or lookalike_slip(name, other):
            return True
        return one_edit(name, other) and sorted(name) == sorted(other)
    return min(len(name), len(other)) >= 2 and one_edit(name, other)


def _typo_of_known(a: str, b: str) -> bool:
    # "Mas" for "Max", "Rmily" for "Emily", "Lcy" for "Lucy", "Edwar" for "Edward": a name known
    # well enough (`given_names.known_enough`) and one slip of it that is no name beside it
    # (`given_names.as_names`). Two names ("Eva"/"Ava", "Holly"/"Molly", "Mason"/"Jason") may be
    # twins'. Beside a name few families give ("Kaylani", 24 babies in 29 years), a name missing
    # from the lists may as well be a twin's ("Jaylani": found by probing). A name missing from
    # the lists may still be a name, so with a clash of genders this is no more than a spelling
    # (see `twins`).
    slip = _slip_of(a, b)
    name_a, name_b = as_names(a, b, one_slip=slip)
    if name_a == name_b:
        return False
    return slip and known_enough(a if name_a else b)


def _names(a: str, b: str) -> tuple[bool, bool]:
    # Whether each counts as a name beside the other (`given_names.as_names`).
    return as_names(a, b, one_slip=_slip_of(a, b))


def _slip_of_nickname(a: str, b: str) -> bool:
    # "Frde" for Fred, Frederick's short form: a slip that is no name, of the other's nickname.
    name_a, name_b = _names(a, b)
    if name_a == name_b:
        return False
    slip, name = (b, a) if name_a else (a, b)
    return len(slip) >= 3 and not groups_near(slip, _slip_of).isdisjoint(groups_of(name))


_PET_ENDING = re.compile(r"(ie|ey|ee|y|i)$")


def _one_pet_name(a: str, b: str) -> bool:
    # The same name with the other English pet-name ending: Holly/Hollie, Alfie/Alfy, Katy/Katie,
    # Lily/Lilly (a letter doubled before it).
    stem_a, stem_b = _PET_ENDING.sub("", a), _PET_ENDING.sub("", b)
    if stem_a == a and stem_b == b:
        return False
    if stem_a == stem_b:
        return True
    short, long_ = sorted((stem_a, stem_b), key=len)
    # (A name that is all ending, "Ey", leaves no stem: found by probing, it raised IndexError.)
    return len(long_) == len(short) + 1 >= 2 and long_[-1] == long_[-2] and long_[:-1] == short


def two_names(a: str, b: str) -> bool:
    # Two different names, not one misspelt: both are names, neither a nickname nor a listed
    # spelling of the other (asked before this), not one pet name, and either the shorter is
    # short — Jack/Jake, Mia/Mila, Leo/Leon, Lena/Lana, Ella/Bella are twins' names — or both are
    # among the commonest children's names in England (Millie/Mollie, Harvey/Harley,
    # Bailey/Bradley, Olivia/Hollie, Nathan/Jonathan: a slip of the pen seldom makes another of
    # them, and twins are often given two of them that rhyme). Other long names both in the list,
    # Jonathon/Jonathan or Matthew/Mathew, are mostly one name spelt two ways: left to the
    # spelling tests.
    if a == b or not all(_names(a, b)):
        return False
    if min(len(a), len(b)) >= LONG_NAME and not (a in frequencies.GIVEN and b in frequencies.GIVEN):
        return False
    if _one_pet_name(a, b) or spelling_key(a) == spelling_key(b):
        return False
    return not (len(a) == len(b) and sorted(a) == sorted(b) and one_edit(a, b))  # Mai/Mia


def _two_short_forms(a: str, b: str) -> bool:
    # Mia and Millie are both short for Amelia, Elsie and Eliza for Elizabeth, Evie and Eva for
    # Eve: but each is a name of its own among the commonest in England, and two of them in one
    # household on one date of birth are twins', not one child's two nicknames.
    # (A full form spelt another way is no short form: Catherine/Katie, Finley/Finn,
    # Muhammad/Mohammad; and two short forms spelt alike are one: Kate/Katie. A pet form that
    # sounds like its full form is still a short form: Evie for Eve — found by probing, twins
    # Evie and Eva were one child.)
    if a not in frequencies.GIVEN or b not in frequencies.GIVEN or _spelt_alike(a, b):
        return False
    full = shared_full_forms(a, b)
    return bool(full) and not any(
        x == f or (_spelt_alike(x, f) and not _pet_form_of(x, f)) for f in full for x in (a, b)
    )


def _pet_form_of(name: str, full: str) -> bool:
    # "Evie" of "Eve", "Annie" of "Anne": the start of the full form with the pet ending "ie".
    return name.endswith("ie") and not full.endswith("ie") and full.startswith(name[:-2])


def _slips_of_one_name(a: str, b: str) -> bool:
    # Two spellings that are no name, each one slip from the same common name: "Rlla"/"Eella"
    # (Ella), "Avs"/"Avq" (Ava).
    if any(_names(a, b)):
        return False
    return any(_slip_of(a, name) and _slip_of(b, name) for name in COMMON_GIVEN)


def _spelt_alike(a: str, b: str) -> bool:
    # Jaro-Winkler 0.92, one typo (none changing a letter of a short name), the same sound, or two
    # typos in a long name.
    if first_name_level(a, b) in _SPELLINGS or _slip(a, b) or _sound_alike(a, b):
        return True
    # Two typos make one long name only when the other is no name: two names two letters apart
    # are two children's ("Ronnie"/"Robbie": found by probing, twins joined).
    return min(len(a), len(b)) >= LONG_NAME and _typos(a, b) <= 2 and not all(_names(a, b))


def _joined_up(first: str, given: tuple[str, ...]) -> bool:
    # A double first name written as one word by one system: "Freyamae" for "Freya Mae" (or
    # "Freya-Mae"), "Noahjames" for "Noah James". Whole names joined, at least two: "Lily" beside
    # "Lilymae" is not this (found by the quality bench: such records were kept apart as twins).
    joined = given[0]
    for part in given[1:]:
        joined += part
        if len(joined) >= len(first):
            return joined == first
    return False


def _unjoined(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
    # `b` with the names `a`'s first name joins up made one ("Chloe Leigh" beside "Chloeleigh
    # Freya" → "Chloeleigh"), so that the names after them are compared as middle names.
    joined = b[0]
    for end, part in enumerate(b[1:], start=2):
        joined += part
        if joined == a[0]:
            return (joined, *b[end:])
        if len(joined) > len(a[0]):
            break
    return b


def _misspelt_middle(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    # A child known by a middle name mistyped in one record: "Eleanor" for "Emily Eleqnor". Only
    # a typo of a known name: a twin's first name may well be spelt like the other's middle name
    # ("Louisa" and "Grace Louise", "May" and "Lily Mae").
    return any(_typo_of_known(a[0], name) for name in b[1:])


def how_alike(a: Features, b: Features) -> str | None:
    """How two records' given names could be one child's, or None when they cannot: "same" (the
    same first name, or one's first name among the other's names), "middle" (the same middle
    names, a first name that is no name), "initial" (an initial for the other), "short" (one the
    start of the other: "Jo"/"Joanna"), "nickname" (even with a typo), "typo" (a name and one
    slip of it that is no name, "Max"/"Mas", "Emily"/"Rmily", or such a slip of the other's
    middle name; or two spellings that are no name, slips of one common name), "spelling"
    (Jaro-Winkler 0.92, one typo, two in a long name, none changing a letter of a three-letter
    name, or the same sound).
    Two names that differ only in their first letter ("Holly"/"Molly", "Mason"/"Jason") cannot be
    one name. Missing names, and names swapped between the given and family fields, are "same"."""
    return _how_alike(a.given, a.family, b.given, b.family)


@lru_cache(maxsize=PAIR_CACHE_SIZE)
def _how_alike(
    a_given: tuple[str, ...], a_family: tuple[str, ...], b_given: tuple[str, ...], b_family: tuple[str, ...]
) -> str | None:
    # `how_alike` from the names alone, cached: it is asked of most candidates' records.
    if not a_given or not b_given:
        return "same"
    a0, b0 = a_given[0], b_given[0]
    if a0 == b0 or a0 in b_given or b0 in a_given or names_swapped(a_given, a_family, b_given, b_family):
        return "same"
    if _joined_up(a0, b_given) or _joined_up(b0, a_given):
        return "same"
    if (
        len(a_given) > 1
        and a_given[1:] == b_given[1:]
        and min(len(a0), len(b0)) > 1  # an initial is judged as one below ("E Rose"/"Ruby Rose")
        and not all(_names(a0, b0))
    ):
        # A first name mangled past the other tests, the middle names intact ("Xmiyl Rose"). Two
        # first names that are both names are two children's: twins and siblings share middle
        # names ("Emily Rose"/"Ruby Rose", "Ava Rose"/"Lily-Rose": found by probing, joined).
        return "middle"
    if not (a0.isascii() and b0.isascii()):
        return None  # another script: the same name or two (`comparisons.first_name_level`)
    if min(len(a0), len(b0)) == 1:
        return "initial" if a0[0] == b0[0] else None
    if nicknames(a0, b0) and not _two_short_forms(a0, b0):
        return "nickname"
    if variants(a0, b0):
        return "spelling"  # a listed spelling of one name: "Niamh"/"Neve", "Aisha"/"Ayesha"
    misspelt_middle = _misspelt_middle(a_given, b_given) or _misspelt_middle(b_given, a_given)
    if two_names(a0, b0):
        return "typo" if misspelt_middle else None  # known by a middle name, or two names
    if a0.startswith(b0) or b0.startswith(a0):
        return "short"
    if _typo_of_known(a0, b0) or _slips_of_one_name(a0, b0):
        return "typo"  # even in the first letter: "Rmily" is no twin of Emily's
    if rhyme(a0, b0):
        return None
    if _spelt_alike(a0, b0):
        return "spelling"
    ja, jb = "".join(a_given), "".join(b_given)
    if min(len(ja), len(jb)) >= LONG_NAME and _typos(ja, jb) <= 1:
        return "spelling"  # "Mauriceeric" for "Maurice Eric"
    if nicknames_with_typo(a0, b0) or _slip_of_nickname(a0, b0):
        return "nickname"
    return "typo" if misspelt_middle else None


def _one_name(x: str, y: str) -> bool:
    # Two given names (a middle name, a hyphenated name's second part) that may be one name:
    # the same, an initial of it, one the start of the other, a nickname, or spelt alike.
    if x == y or x.startswith(y) or y.startswith(x) or variants(x, y):
        return True  # ...or a listed spelling of it ("Caoimhe Niamh"/"Caoimhe Neve")
    return min(len(x), len(y)) > 1 and (nicknames(x, y) or _spelt_alike(x, y) or _typo_of_known(x, y))


def _one_middle(x: str, y: str) -> bool:
    # Beside one shared first name, two other names one slip or one sound apart are one name
    # misspelt ("Lauren Ivy"/"Lauren Ivo", "Ava Sienna"/"Ava Synna", "Lily Mae"/"Lily May"): twins
    # are told apart by their first names, and the quality bench lost true pairs to this.
    if _one_name(x, y):
        return True
    if min(len(x), len(y)) < 3:
        return False
    if _typos(x, y) <= 1 or first_name_level(x, y) == "phonetic":
        return True
    # Two slips, when one of them makes no name at all ("Grace"/"Graek", "Leigh"/"Liefh", and
    # "Esem"/"Esmr", both Esme): a twin given the same first name still has a real middle name
    # (found by the quality bench: such records were kept apart as twins, or their shared NHS
    # number doubted).
    return min(len(x), len(y)) >= 4 and _typos(x, y) <= 2 and not all(_names(x, y))


def middles_clash(a: Features, b: Features) -> bool:
    """Whether both records give more than one given name, one of each alike, and none of the
    others of one could be one of the other's: "Ava Grace"/"Ava Rose", "Lily-Mae"/"Lily-Rose",
    "Muhammad Ibrahim"/"Mohammed Hassan", "Ava Rose"/"Grace Ava" (twins may share a name; one
    child's records do not give it two different other names)."""
    if len(a.given) < 2 or len(b.given) < 2:
        return False
    return _middles_clash(a.given, b.given)


@lru_cache(maxsize=PAIR_CACHE_SIZE)
def _middles_clash(a_given: tuple[str, ...], b_given: tuple[str, ...]) -> bool:
    # `middles_clash` from the given names alone, cached.
    a_given, b_given = _unjoined(b_given, a_given), _unjoined(a_given, b_given)
    # The name both share must be one's first name ("Dev Yusuf"/"Dwv Yusuf" share only a middle
    # name: a misspelt first name, for how_alike to judge).
    pairs = [
        (i, j)
        for i, x in enumerate(a_given)
        for j, y in enumerate(b_given)
        if (i == 0 or j == 0) and _one_name(x, y)
    ]
    if not pairs:
        return False  # nothing alike: how_alike's to judge
    i, j = min(pairs, key=lambda p: (p[0] + p[1], p))  # the first names first
    rest_a = a_given[:i] + a_given[i + 1 :]
    rest_b = b_given[:j] + b_given[j + 1 :]
    # Each gives a name the other has nothing like ("Ava Grace Mary"/"Ava Rose Mary"); one with
    # names the other lacks is not a clash ("Ava Grace Mary"/"Ava Mary").
    alike = _one_middle if i == 0 and j == 0 else _one_name
    alone_a = [x for x in rest_a if not any(alike(x, y) for y in rest_b)]
    alone_b = [y for y in rest_b if not any(alike(x, y) for x in rest_a)]
    return bool(alone_a) and bool(alone_b)
