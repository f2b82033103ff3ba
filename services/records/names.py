"""Pure functions for matching people by name and postcode: the keys FindChild stores at
submission and computes at search, and its tolerance of spelling variants. No I/O."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

import jellyfish
from rapidfuzz.distance import DamerauLevenshtein, JaroWinkler

from services.records.name_variants import variants

# Spelling variants of a whole name, never a fragment of one: FindChild must not turn into a prefix
# search ("Reyn" finding every Reynolds). Both names at least this long: shorter ones ("J", "Li")
# match only exactly.
MIN_LENGTH_FOR_VARIANT = 3
# The shorter name at least this share of the longer's letters (a letter or two dropped, no more);
# a name that sounds the same may be a little shorter ("Lee"/"Leigh").
MIN_LENGTH_RATIO = 0.75
MIN_LENGTH_RATIO_FOR_SOUND = 0.6
# Jaro-Winkler at least this and at most MAX_EDITS edits apart (one on a name under LONG_NAME
# letters): Jaro-Winkler alone rewards a shared prefix, so it must not decide by itself.
JARO_WINKLER_THRESHOLD = 0.88
LONG_NAME = 8
MAX_EDITS = 2
# One edit on a very short name turns it into a different name ("Ian"/"Jan").
MIN_LENGTH_FOR_ONE_EDIT = 4
_SEPARATORS = re.compile(r"[\s\u2010-\u2015-]+")
_NOT_ASCII_LETTER = re.compile(r"[^a-z]+")
_NOT_ASCII_LETTER_OR_DIGIT = re.compile(r"[^a-z0-9]+")


# Letters that are apostrophes in a name: Unicode's modifier letters (U+02BC, the Ukrainian
# apostrophe; the modifier acute; the vertical line) and the saltillo. Dropped from keys as
# punctuation is (found by probing and re-probing: a name written with one was found by no search
# without it).
APOSTROPHE_LETTERS = frozenset(
    {chr(c) for c in range(0x02B0, 0x0300) if unicodedata.category(chr(c)) == "Lm"}
    # The saltillo, N'Ko's apostrophes, the Armenian half ring, the Cyrillic payerok, and the
    # Arabic tatweel (a stretch of the line, no letter): found by re-probing.
    | set("\ua788\ua78b\ua78c\u07f4\u07f5\u0559\ua67f\u0640")
)

# Letters whose accent Unicode does not decompose: Łukasz, Sørensen, Đurić, Ærø (found by probing:
# a search without the stroke found nobody).
_UNDECOMPOSED = str.maketrans(
    {
        "ł": "l",
        "ø": "o",
        "đ": "d",
        "ð": "d",
        "æ": "ae",
        "œ": "oe",
        "þ": "th",
        "\u0131": "i",  # dotless i
        "ħ": "h",
        "ŧ": "t",
        "ŀ": "l",
        **dict.fromkeys(APOSTROPHE_LETTERS),
    }
)


def name_key(value: str, *, fold_letters: bool = True) -> str:
    """A name with case, accents, punctuation and spaces removed: `" O'Brién-Smith "` → `obriensmith`,
    `"Łukasz"` → `lukasz` (`fold_letters=False`: `łukasz`, as keys were made before 4 December 2026)."""
    return _key(value, fold_letters=fold_letters, digits=False)


def service_key(value: str) -> str:
    """A service's or organisation's name as `name_key` makes a person's, but keeping its digits:
    "Year 6 Transition Group" → `year6transitiongroup`, another service than Year 7's (found by
    probing: two involvements whose names differed only in a number were shown as one)."""
    return _key(value, fold_letters=True, digits=True)


def _key(value: str, *, fold_letters: bool, digits: bool) -> str:
    if value.isascii():  # nearly every name: no accents to take off, one C-level pass
        return (_NOT_ASCII_LETTER_OR_DIGIT if digits else _NOT_ASCII_LETTER).sub("", value.lower())
    # Apostrophe letters dropped before decomposing (a modifier "h" decomposes to "h") and after
    # (the Greek numeral sign decomposes to one): found by re-probing.
    folded = value.casefold()
    if fold_letters:
        folded = folded.translate(_UNDECOMPOSED)
    decomposed = unicodedata.normalize("NFKD", folded)
    if fold_letters:
        decomposed = decomposed.translate(_UNDECOMPOSED)
    kept = str.isalnum if digits else str.isalpha
    return "".join(ch for ch in decomposed if kept(ch) and not unicodedata.combining(ch))


def fold_key(key: str) -> str:
    """A stored name key made before letters such as "ł" were folded, as `name_key` makes it now."""
    return key if key.isascii() else key.translate(_UNDECOMPOSED)


def name_tokens(value: str) -> list[str]:
    """The keys of each part of a name, split at spaces and hyphens: "Mary-Jane Ann" → mary, jane, ann."""
    return [key for part in _SEPARATORS.split(value) if (key := name_key(part))]


def given_runs(tokens: Sequence[str]) -> set[str]:
    """Every run of consecutive given-name keys joined up, so that "Maryjane", "Mary Jane" and
    "Mary-Jane" all find a child called Mary-Jane, and "Jane" does too."""
    return {"".join(tokens[i:j]) for i in range(len(tokens)) for j in range(i + 1, len(tokens) + 1)}


def postcode_key(value: str) -> str:
    """A postcode without spaces, upper case: `" m1 1ae "` → `M11AE`."""
    return "".join(value.split()).upper()


def similar(a: str, b: str, *, fuzzy: bool) -> bool:
    """Whether two name keys name the same name (exactly, or as a spelling variant of the whole
    name when `fuzzy`: a typo, a letter dropped, a phonetic spelling — never a prefix or fragment)."""
    if a == b:
        return True
    if not fuzzy or not a or not b:
        return False
    if variants(a, b):
        return True  # "Niamh"/"Neve", "Aisha"/"Ayesha", "O'Brien"/"O'Bryan"
    shorter, longer = sorted((a, b), key=len)
    if len(shorter) < MIN_LENGTH_FOR_VARIANT:
        return False
    if len(longer) - len(shorter) > 1 and shorter in longer:
        return False  # a fragment ("reyn" of "reynolds", "nathan" of "jonathan"), not a typo
    ratio = len(shorter) / len(longer)
    if ratio >= MIN_LENGTH_RATIO:
        distance = DamerauLevenshtein.distance(a, b)
        if distance <= 1 and len(shorter) >= MIN_LENGTH_FOR_ONE_EDIT:
            return True
        edits = MAX_EDITS if len(longer) >= LONG_NAME else 1
        if distance <= edits and JaroWinkler.similarity(a, b) >= JARO_WINKLER_THRESHOLD:
            return True
    if ratio < MIN_LENGTH_RATIO_FOR_SOUND:
        return False
    sound_a, sound_b = jellyfish.metaphone(a), jellyfish.metaphone(b)
    return bool(sound_a) and sound_a == sound_b


def given_name_matches(query: str, child_given_keys: Sequence[str], *, fuzzy: bool) -> bool:
    """Whether a searched given name is one of the child's given names (or several in a row)."""
    wanted = name_key(query)
    return any(similar(wanted, run, fuzzy=fuzzy) for run in given_runs(child_given_keys))
