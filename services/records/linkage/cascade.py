"""Reading candidates in two stages: the records sharing a strong key first, the rest only when
they could change the decision.

In a large registry the keys built to survive a wrong part of the date of birth are the ones
whose candidates are mostly other children (with key scheme 1, "same family sound and initial,
same year and month", about 13 of 18 a record at 1,000,000 children). The strong keys (NHS number, the whole
date of birth with a name, the postcode with the year or a name) find a child whose records agree
with the new one. When those alone already link it, with a weight no record sharing none of them
can reach, the weak keys' other children cannot change the decision, and they are not read.

`unblocked_bound` is that ceiling, worked out from what not sharing a strong key implies about
each field; `settles` is the test. Both are exact, not heuristics: the decision is the one the
full candidate list gives (a property test compares the two)."""

from __future__ import annotations

from collections.abc import Iterable

from services.records.linkage.blocking import FEMALE, MALE, STRONG_KINDS, key_kind
from services.records.linkage.features import Features
from services.records.linkage.model import Model
from services.records.linkage.spelling import sound
from services.records.linkage.verdicts import Action, Decision

# The family-name levels that mean the two records share a family name's sound (as the blocking
# keys code it): the same name, a former name of the other, one part of it, or the same sound.
_SHARED_FAMILY_SOUND = frozenset({"exact", "former", "part", "phonetic"})
# The given-name levels that mean the same first given name's sound.
_SHARED_FIRST_SOUND = frozenset({"exact", "first", "phonetic"})
_NONE = frozenset[str]()
# The ceiling adds the same weights as `compare` in another order, so it can come out a few units in
# the last place low: a score must clear it by more than that, or a tie at the ceiling (decided by
# candidate order in the full read) could go the other way.
ROUNDING = 1e-6


def is_strong(key: str) -> bool:
    """Whether a blocking key is of a kind read in the first stage."""
    return key_kind(key) in STRONG_KINDS


def _sounded(names: Iterable[tuple[str, ...]]) -> bool:
    # Every part of every name, and each name joined up, has a sound: then two records that agree
    # at a level in _SHARED_FAMILY_SOUND share a blocking code.
    names = [name for name in names if name]
    return (
        bool(names)
        and all(sound(t) for name in names for t in name)
        and all(sound("".join(n)) for n in names)
    )


def _best(model: Model, field: str, excluded: frozenset[str] = _NONE, exact: float | None = None) -> float:
    # The highest weight `field` can have (a missing field weighs nothing), swapped names aside.
    best = 0.0
    for level, weight in model.weights[field].items():
        if level in excluded or level == "swapped":
            continue
        best = max(best, exact if level == "exact" and exact is not None else weight)
    return best


def _names(
    model: Model, new: Features, *, given_excluded: frozenset[str], family_excluded: frozenset[str]
) -> float:
    # Both name fields together: "swapped" is set on both at once, so it is a pair of its own.
    given_exact = model.exact_weight("given_names", new.given[0]) if new.given else None
    family_exact = model.exact_weight("family_name", "".join(new.family)) if new.family else None
    apart = _best(model, "given_names", given_excluded, given_exact) + _best(
        model, "family_name", family_excluded, family_exact
    )
    swapped = model.weights["given_names"]["swapped"] + model.weights["family_name"]["swapped"]
    return max(apart, swapped)


def unblocked_bound(new: Features, model: Model) -> float:
    """The highest weight `compare(new, c, model)` can reach for any record `c` that shares none
    of `new`'s strong blocking keys.

    Not sharing them means, for two records that both have the fields: not the same date of birth
    and postcode (pcy); with the same date of birth, no family name's sound in common, former names
    included, or else one a boy and the other a girl (dfp); with the same postcode, another year of
    birth (pcy), and neither the family name's nor the first given name's sound in common (pcf,
    pcg); and never the same NHS number. The ceiling is the best of those cases, each field at the
    best level left to it."""
    # Gender, address and town at their best; the NHS number missing or another one (the same one
    # is a strong key).
    nhs = _best(model, "nhs_number", frozenset({"same"})) if new.nhs else 0.0
    rest = _best(model, "gender") + _best(model, "address") + _best(model, "town") + nhs
    dob_w, postcode_w = model.weights["date_of_birth"], model.weights["postcode"]
    family_sounded = _sounded([new.family, *new.former_family])
    current_family_sounded = _sounded([new.family])
    first_sounded = bool(new.given) and bool(sound(new.given[0]))
    cases: list[float] = []
    # The same date of birth, another postcode (or none).
    if new.dob is not None:
        names = _names(
            model,
            new,
            given_excluded=_NONE,
            family_excluded=_SHARED_FAMILY_SOUND if family_sounded else _NONE,
        )
        postcode = _best(model, "postcode", frozenset({"full"})) if new.postcode else 0.0
        cases.append(names + dob_w["exact"] + postcode)
        if new.gender in (MALE, FEMALE):
            # Or a family name's sound in common, but the other sex (dfp holds the gender).
            names = _names(model, new, given_excluded=_NONE, family_excluded=_NONE)
            other_sex = model.weights["gender"]["different"] - _best(model, "gender")
            cases.append(names + dob_w["exact"] + postcode + other_sex)
    # The same postcode, another year of birth (or a date missing).
    if new.postcode:
        names = _names(
            model,
            new,
            given_excluded=_SHARED_FIRST_SOUND if first_sounded else _NONE,
            family_excluded=(_SHARED_FAMILY_SOUND - {"former"}) if current_family_sounded else _NONE,
        )
        dob = _best(model, "date_of_birth", frozenset({"exact", "day_month_swapped"})) if new.dob else 0.0
        cases.append(names + dob + postcode_w["full"])
    # Neither the same date of birth nor the same postcode.
    names = _names(model, new, given_excluded=_NONE, family_excluded=_NONE)
    dob = _best(model, "date_of_birth", frozenset({"exact"})) if new.dob is not None else 0.0
    postcode = _best(model, "postcode", frozenset({"full"})) if new.postcode else 0.0
    cases.append(names + dob + postcode)
    return model.prior_weight + max(cases) + rest


def settles(decision: Decision, bound: float) -> bool:
    """Whether a LINK decided on the strong keys' candidates stands whatever records of *other*
    children the weak keys would add: its child shares the NHS number (which outranks any score),
    or scores above every such record's ceiling. (Records of the children already considered must
    still be added: they can change that child's verdict.)"""
    return (
        decision.action == Action.LINK
        and decision.candidate is not None
        and (decision.nhs_same or decision.score > bound + ROUNDING)
    )
