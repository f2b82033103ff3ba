"""How a service's name is read before the sensitive-service vocabulary is matched against it
(`sensitive` says why): word tokens, case-folded, accents stripped, apostrophes dropped, "&" read
as "and", Cyrillic and Greek lookalikes read as Latin letters, letters and digits split, runs of
single letters joined, plurals made singular, a few abbreviations written out and a few two-word
spellings joined."""

from __future__ import annotations

import re
import unicodedata

_DROP_AND_SPELL = str.maketrans(
    {"'": None, "\u2018": None, "\u2019": None, "\u02bc": None, "`": None, "\u2032": None, "&": " and "}
)
_WORD = re.compile(r"[^\W\d_]+|\d+")
_KEEP_PLURAL = frozenset({"minds"})
_SPELLED_OUT = {
    "svc": "service",
    "srvc": "service",
    "serv": "service",
    "dept": "department",
    "hlth": "health",
    "subst": "substance",
    "contracep": "contraception",
    "counseling": "counselling",
    "counselor": "counsellor",
    "behavioral": "behavioural",
    "pediatric": "paediatric",
    "orthopedic": "orthopaedic",
    "fetal": "foetal",
    "gonorrhea": "gonorrhoea",
    "mentalization": "mentalisation",
}
_JOINED = {
    ("well", "being"): "wellbeing",
    ("genito", "urinary"): "genitourinary",
    ("self", "harm"): "selfharm",
    ("self", "injury"): "selfinjury",
}


# Cyrillic and Greek letters that look like Latin ones (a Cyrillic "ie" in "Sexual"), read as
# the Latin letter: a name must not pass for ordinary because one letter came from another script.
_LOOKALIKES = str.maketrans(
    "\u0430\u0432\u0435\u0451\u043a\u043c\u043d\u043e\u0440\u0441\u0442\u0443\u0445"
    "\u0456\u0457\u0458\u0455\u04bb\u0501\u051b\u051d"
    "\u03b1\u03b2\u03b5\u03b9\u03ba\u03bd\u03bf\u03c1\u03c4\u03c5\u03c7\u03bc\u03b7",
    "abeekmhopctyxiijshdqwabeikvoptuxmn",
)
# Digits and signs written for letters inside a word ("M3ntal", "Ment@l", "5exual").
_AS_LETTERS = {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"}
_INSIDE_A_WORD = re.compile(r"(?<=[^\W\d_])[013457@$]|[013457@$](?=[^\W\d_])")


def with_letters_for_digits(service_name: str) -> str:
    """`service_name` with a digit or sign that stands beside a letter read as the letter it looks
    like ("M3ntal" -> Mental); a number on its own ("Tier 4", "Year 5") stays."""
    return _INSIDE_A_WORD.sub(lambda m: _AS_LETTERS[m.group()], service_name)


def singular(token: str) -> str:
    """`token` made singular ("therapies" → therapy), unless it is short or kept plural."""
    if len(token) <= 3 or token in _KEEP_PLURAL:
        return token
    if token.endswith("ies"):
        return token[:-3] + "y"
    if token[-1] == "s" and token[-2] not in "siu":
        return token[:-1]
    return token


def service_name_tokens(service_name: str) -> tuple[str, ...]:
    """The words of a service name as they are matched: `"Young People's Substance Misuse Svcs"` →
    `("young", "people", "substance", "misuse", "service")`, `"C.A.M.H.S."` → `("camh",)`."""
    if service_name.isascii():
        text = service_name.lower()
    else:
        # Signs (a trade mark, an emoji) part words; compatibility forms come apart before case is
        # folded, so that a mathematical bold capital is a plain letter ("CAMHS(TM)" is CAMHS).
        signs_apart = "".join(" " if unicodedata.category(ch)[0] == "S" else ch for ch in service_name)
        folded = unicodedata.normalize("NFKD", signs_apart.casefold()).casefold().translate(_LOOKALIKES)
        decomposed = unicodedata.normalize("NFKD", folded)
        text = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    raw = _WORD.findall(text.translate(_DROP_AND_SPELL))
    words: list[str] = []
    letters: list[str] = []  # a run of single letters: C.A.M.H.S.
    for word in raw:
        if len(word) == 1 and word.isalpha():
            letters.append(word)
            continue
        if letters:
            words.append("".join(letters))
            letters.clear()
        words.append(word)
    if letters:
        words.append("".join(letters))
    tokens: list[str] = []
    for word in words:
        token = singular(word)
        token = _SPELLED_OUT.get(token, token)
        if tokens and (joined := _JOINED.get((tokens[-1], token))):
            tokens[-1] = joined
        else:
            tokens.append(token)
    return tuple(tokens)
