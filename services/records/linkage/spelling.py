"""How name keys are spelt alike: OCR-folded skeletons, phonetic codes and Jaro-Winkler similarity.

Every function is cached on its string arguments, because the same few thousand names are
compared again and again at ingestion (one call per candidate), and metaphone is slow in Python
terms. All of them are symmetric where they take two names, so that comparisons are too."""

from __future__ import annotations

import re
from functools import lru_cache

import jellyfish
from rapidfuzz.distance import JaroWinkler

# Letter sequences that scanners and tired eyes read as one another. Folding both sides the same
# way makes "Srnith"/"Smith" and "Cleo"/"Deo" spelt alike; it is symmetric, so "Byrne" still only
# ever meets "Byrne" (both become "byme"). "li" for "h" is folded for spelling only, not for sound
# ("Phillips" must keep the sound of "Philips").
_OCR_FOLDS = (("rn", "m"), ("cl", "d"), ("vv", "w"))
_SHAPE_FOLDS = (*_OCR_FOLDS, ("li", "h"))
# Digits that OCR puts in place of letters, for text that should hold letters only.
DIGITS_AS_LETTERS = str.maketrans("0123456789", "olzeasbtbg")
# Letters that OCR puts in place of digits, for house numbers and postcodes.
LETTERS_AS_DIGITS = str.maketrans("OoIiLlSsBZz", "00111155822")
MAX_CODE = 12
CACHE_SIZE = 1 << 16
# The caches of pairs of names (`comparisons`, `given_alike`): a pair comes back within a stream
# (a new child's other records meet the same candidates; a record decided twice), so a few
# thousand recent pairs hold nearly every hit. Over 26,861 records at 1,000,000 children, 8,192
# entries kept 0.54 of given names' comparisons against 0.57 with 65,536, for an eighth of the
# memory (the larger caches grew the records service by 84 MB).
PAIR_CACHE_SIZE = 1 << 13


def _fold(key: str, folds: tuple[tuple[str, str], ...]) -> str:
    for wrong, right in folds:
        if wrong in key:
            key = key.replace(wrong, right)
    return key


@lru_cache(maxsize=CACHE_SIZE)
def skeleton(key: str) -> str:
    """A name key with letter groups that OCR confuses folded together: "srnith" → "smith"."""
    return _fold(key, _OCR_FOLDS)


@lru_cache(maxsize=CACHE_SIZE)
def _shape(key: str) -> str:
    return _fold(key, _SHAPE_FOLDS)


@lru_cache(maxsize=CACHE_SIZE)
def sound(key: str) -> str:
    """The metaphone code of a name key's skeleton, at most 12 letters ("" for an empty key)."""
    return jellyfish.metaphone(skeleton(key))[:MAX_CODE] if key else ""


@lru_cache(maxsize=CACHE_SIZE)
def jaro_winkler(a: str, b: str) -> float:
    """Jaro-Winkler similarity of two name keys, the better of their plain and OCR-folded spellings
    ("aislia" is "aisha" misread).

    Arguments are put in order first, so the result never depends on which side is which."""
    if a > b:
        a, b = b, a
    plain = JaroWinkler.similarity(a, b)
    sa, sb = _shape(a), _shape(b)
    if (sa, sb) == (a, b):
        return plain
    return max(plain, JaroWinkler.similarity(sa, sb))


def one_edit(a: str, b: str) -> bool:
    """Whether two strings differ by at most one substitution, insertion, deletion or swap of
    neighbours (Damerau-Levenshtein distance ≤ 1), without computing the whole distance."""
    if a == b:
        return True
    la, lb = len(a), len(b)
    if abs(la - lb) > 1:
        return False
    i = 0
    while i < min(la, lb) and a[i] == b[i]:
        i += 1
    if la == lb:
        return a[i + 1 :] == b[i + 1 :] or (a[i + 2 :] == b[i + 2 :] and a[i : i + 2] == b[i : i + 2][::-1])
    if la > lb:
        return a[i + 1 :] == b[i:]
    return a[i:] == b[i + 1 :]


# Keys next to each other on a UK keyboard (QWERTY), letters only.
_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")


def _neighbours() -> dict[str, frozenset[str]]:
    near: dict[str, set[str]] = {}
    for r, row in enumerate(_ROWS):
        for c, key in enumerate(row):
            keys = near.setdefault(key, set())
            keys.update(row[max(c - 1, 0) : c + 2])
            # The row below is offset half a key to the right: "s" sits under "w" and "e".
            if r + 1 < len(_ROWS):
                keys.update(_ROWS[r + 1][max(c - 1, 0) : c + 1])
            if r > 0:
                keys.update(_ROWS[r - 1][c : c + 2])
            keys.discard(key)
    return {key: frozenset(keys) for key, keys in near.items()}


_NEAR_KEYS = _neighbours()


def keyboard_slip(a: str, b: str) -> bool:
    """Whether two strings of one length differ in exactly one letter, and the two letters are
    neighbouring keys ("max"/"mas", "leo"/"lep")."""
    if len(a) != len(b):
        return False
    differ = [(x, y) for x, y in zip(a, b, strict=True) if x != y]
    return len(differ) == 1 and differ[0][1] in _NEAR_KEYS.get(differ[0][0], ())


# Single letters that a scanner or a reader takes for one another ("lsabella", "Jaek").
_LOOKALIKES = frozenset({("i", "l"), ("l", "i"), ("c", "e"), ("e", "c"), ("u", "v"), ("v", "u")})


def lookalike_slip(a: str, b: str) -> bool:
    """Whether two strings of one length differ in exactly one letter, and the two letters look
    alike on paper ("isabella"/"lsabella", "jack"/"jaek")."""
    if len(a) != len(b):
        return False
    differ = [(x, y) for x, y in zip(a, b, strict=True) if x != y]
    return len(differ) == 1 and differ[0] in _LOOKALIKES


_SPELLINGS_OF_A_SOUND = (
    ("ph", "f"),
    ("th", "t"),
    ("ck", "c"),
    ("k", "c"),
    ("q", "c"),
    ("z", "s"),
    ("y", "i"),
)
_SILENT_H = re.compile(r"(?<=[^aeiou])h|h(?=[^aeiou])|h$")
_DOUBLED = re.compile(r"(.)\1")


def spelling_key(name: str) -> str:
    """A name with the spellings of one sound made one (`given_alike`, `rhyme`)."""
    # A name with the spellings of one sound made one: Sophia/Sofia, Oscar/Oskar, Arthur/Artur,
    # Maya/Maia, Zahra/Zara, Lily/Lilly. Different names stay different: Jack "jac"/Jake "jace",
    # and Zara/Sara, whose first letters are two sounds (found by probing: twins Zara and Sara
    # were one child). Another language's spelling of a name is listed (`name_variants`:
    # Zofia/Sofia, Maja/Maya, Tanja/Tania): no rule reads a "j" as a "y" (found by re-probing: one
    # joined twins Sajid and Said, Rajan and Rayan; one for a final "ja" joined Raja and Raya,
    # Teja and Teya).
    first = name[:1]
    for written, spoken in _SPELLINGS_OF_A_SOUND:
        name = name.replace(written, spoken)
    if first == "z":
        name = "z" + name[1:]
    return _DOUBLED.sub(r"\1", _SILENT_H.sub("", name))


def rhyme(a: str, b: str) -> bool:
    # Twins are often given names that differ only in the first letter ("Holly"/"Molly"); a slip
    # of the pen that changes a first letter makes no name ("Rmily"), which `_typo_of_known` has
    # already taken as a typo when this is asked. (A first letter dropped, "Ella"/"Bella", is
    # also how "Olivia" becomes "Livia" by mistake, so that is left to the other checks.)
    # Chloe/Khloe and Caleb/Kaleb are one name spelt as it sounds (found by re-probing).
    return a[0] != b[0] and a[1:] == b[1:] and spelling_key(a) != spelling_key(b)
