"""Blocking keys: the short strings under which a source record is filed, so that a new record is
compared only with the records that share at least one of its keys.

The same function gives the keys to store and the keys to look up, so each key is built to come
out the same on both records of a pair despite the variation it is meant to survive: phonetic
codes survive most typos, OCR slips and spelling variants; nickname groups survive Bill/William;
keys with one part of the date left out survive a wrong day, month or year; sorted day and month
survive a swap; former family names survive a change of name; postcode keys survive a wrong date.
Every key holds a full or nearly full date of birth, an address or an NHS number, so that none
grows with the registry beyond a few dozen records (≈11 million children: ~1,700 per birthday)."""

from __future__ import annotations

from services.records.linkage.features import Features
from services.records.linkage.nicknames import canonical_forms
from services.records.linkage.spelling import sound

# The version of what is derived from a stored record: the keys `blocking_keys` gives, and the
# normalised names and values in its features and FindChild's name keys. Raised whenever any of
# them changes, so that a registry's stored features and keys are derived again from its records
# (`services.records.key_scheme`) before it matches or finds with the new ones.
# 4 (7 December 2026): names normalised afresh (modifier-letter apostrophes, letters folded since
# 4 December) in features and FindChild's name keys; the blocking keys' kinds as in 3.
SCHEME = 4

MALE, FEMALE = 1, 2  # `Features.gender`, as the contract's Gender enum numbers them

# The kinds whose candidates share the whole date of birth with a name, the postcode with the year
# or a name, or the NHS number: read first (`cascade`). The others leave a part of the date out.
STRONG_KINDS = frozenset({"nhs", "dfp", "dii", "pcy", "pcf", "pcg"})


def key_kind(key: str) -> str:
    """A blocking key's kind: "dfp" of "dfp:20150307:OKNK"."""
    return key.partition(":")[0]


def _codes(names: list[tuple[str, ...]]) -> list[str]:
    # Each part of each name and the whole name joined: "Smith-Jones" files under SM0, JNS, SM0JNS.
    codes = {sound(token) for name in names for token in name}
    codes |= {sound("".join(name)) for name in names if len(name) > 1}
    codes.discard("")
    return sorted(codes)


def _first_initials(given: tuple[str, ...]) -> list[str]:
    # The initial as written, and that of the full name a nickname stands for ("Bill" → W too).
    if not given:
        return []
    first = given[0]
    return sorted({first[0]} | {full[0] for full in canonical_forms(first)})


def _given_codes(given: tuple[str, ...]) -> list[str]:
    # The first given name's sound, and those of the full names a nickname stands for ("Bill" →
    # BL and WLM), so that Bill and William share one.
    if not given:
        return []
    codes = {sound(given[0])} | {sound(full) for full in canonical_forms(given[0])}
    codes.discard("")
    return sorted(codes)


# Male or female files under its own; any other gender (unknown, not stated, indeterminate) under
# both, so that it still shares a key with either.
_SEXES: dict[int, tuple[str, ...]] = {MALE: ("m",), FEMALE: ("f",)}
_EITHER_SEX = ("m", "f")


def blocking_keys(f: Features) -> list[str]:
    """The record's blocking keys, each "kind:value" and at most 64 characters, sorted.

    nhs: NHS number · dfp: date of birth + sound of a family name (current or former) · dii:
    date of birth + initials (a nickname's full form gives one too: Bill → W) · nym, nyd, nmd:
    the sounds of the first given name (or the full name a nickname stands for) and of a family
    name (current or former), in sorted order, + the date without its day, month or year · dms:
    initials + year + day and month in sorted order · pcy: postcode + year of birth · pcf, pcg:
    postcode + sound of the family or first given name. dfp, dii and dms also hold the gender
    ("m" or "f"; a record of any other gender files under both).

    Gender is in the three keys whose candidates grow fastest with the registry: the whole date
    of birth (or the year with day and month) and only a family name's sound or two initials.
    About 150 children share a birthday at 1,000,000 children, and 1,700 at 11 million, so those
    keys bring other children in proportion (at 300,000 children's feeds: 0.51, 0.42 and 0.30 a
    record); half of them are of the other sex. A wrong gender (the generator's 0.2% of records)
    is survived through every other key; on 100,000 children's feeds, key scheme 3 reaches the
    same records of a child as scheme 2 but for 5 pairs in 135,715, each with a wrong gender and
    a mistyped family name after a move.

    A wrong part of the date of birth is survived by nym/nyd/nmd when both names keep their sound
    (or are a nickname and its full form), by dms when the day and month are swapped, and by the
    postcode keys when the child has not moved. Key scheme 1 had six kinds for a wrong part of the
    date instead of three, each with one name's sound and only the other's initial: they also
    survived a wrong date with a mistyped name and a move at once, but an initial is shared by one
    child in ten, so at 100,000 children they brought 0.80 other children a record against 0.09
    now, and their number grows with the registry. On 100,000 children's feeds the two schemes
    reach the same records of a child but for 6 pairs in 135,953 (`bench/linkage_quality.py`).
    Scheme 1's dnm (the whole date with both names' sounds in sorted order, for names swapped
    between the fields) is gone too: every pair sharing it shares all three of nym, nyd and nmd.

    Fewer kinds than once: the date-and-given-name kinds (dgp, dgn, dg3) found no record of
    20,000 children's feeds that the others missed, and every key costs an index entry to write,
    a lookup and a lock on every record ingested. (Those feeds have no former given names, which
    only dgp keyed; a child whose given name changed is still found through the date of birth and
    family name, current or former.)"""
    keys: set[str] = set()
    if f.nhs:
        keys.add(f"nhs:{f.nhs}")
    family = _codes([f.family])
    former = _codes([name for name in f.former_family if name])
    first_given = _codes([f.given[:1]])
    initials = _first_initials(f.given)
    family_initials = sorted({name[0][0] for name in (f.family, *f.former_family) if name})
    if f.dob:
        y, m, d = f.dob.year, f.dob.month, f.dob.day
        date = f"{y:04d}{m:02d}{d:02d}"
        sexes = _SEXES.get(f.gender, _EITHER_SEX)
        keys.update(f"dfp:{date}:{code}:{sex}" for code in family + former for sex in sexes)
        keys.update(f"dii:{date}:{g}{s}:{sex}" for g in initials for s in family_initials for sex in sexes)
        for given_code in _given_codes(f.given):
            for family_code in sorted(set(family + former)):
                # In sorted order: names swapped between the fields make the same keys.
                low, high = sorted((given_code, family_code))
                keys.add(f"nym:{low}:{high}:{y:04d}{m:02d}")
                keys.add(f"nyd:{low}:{high}:{y:04d}-{d:02d}")
                keys.add(f"nmd:{low}:{high}:{m:02d}{d:02d}")
        if d <= 12 and d != m:
            low_day, high_day = sorted((d, m))
            keys.update(
                f"dms:{g}{s}:{y:04d}{low_day:02d}{high_day:02d}:{sex}"
                for g in initials
                for s in family_initials
                for sex in sexes
            )
    if f.postcode:
        if f.dob:
            keys.add(f"pcy:{f.postcode}:{f.dob.year:04d}")
        keys.update(f"pcf:{f.postcode}:{code}" for code in family)
        keys.update(f"pcg:{f.postcode}:{code}" for code in first_given)
    return sorted(key[:64] for key in keys)
