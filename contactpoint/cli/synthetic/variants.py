"""How the same name is written differently: nicknames, phonetic respellings, OCR confusions and
keyboard slips. Pure tables and functions on strings; case is kept."""

from __future__ import annotations

import random


def _table(text: str) -> dict[str, tuple[str, ...]]:
    """ "Alexander:Alex,Xander Benjamin:Ben" → {"Alexander": ("Alex", "Xander"), "Benjamin": ("Ben",)}."""
    return {k: tuple(v.split(",")) for k, v in (item.split(":") for item in text.split())}


def _pairs(text: str) -> tuple[tuple[str, str], ...]:
    """ "ph>f ck>k" → (("ph", "f"), ("ck", "k"))."""
    return tuple((a, b) for a, b in (item.split(">") for item in text.split()))


# Full name → the short forms a practitioner or a parent may use instead.
NICKNAMES = _table(
    """
    Alexander:Alex,Xander Aleksander:Olek,Alex Benjamin:Ben,Benji Charles:Charlie Christopher:Chris
    Daniel:Dan,Danny Edward:Ed,Eddie,Teddy Frederick:Freddie,Fred Henry:Harry,Hal Jacob:Jake
    James:Jamie,Jim Jonathan:Jon,Johnny Joseph:Joe,Joey Joshua:Josh Matthew:Matt Michael:Mike,Mikey
    Mohammed:Mo Muhammad:Mo Nathaniel:Nate,Nathan Nicholas:Nick,Nicky Oliver:Ollie,Olly
    Samuel:Sam,Sammy Sebastian:Seb Stephen:Steve Steven:Steve Theodore:Theo Thomas:Tom,Tommy
    William:Will,Billy,Liam Zachary:Zach,Zak Abigail:Abbie,Abby Catherine:Kate,Cathy
    Katherine:Kate,Katie Kathryn:Kate,Katie Charlotte:Lottie,Charlie Elizabeth:Beth,Lizzie
    Eleanor:Ellie,Nell Isabella:Bella,Izzy Isabelle:Izzy,Belle Jessica:Jess Margaret:Maggie,Meg
    Olivia:Liv,Livvy Rebecca:Becky,Becca Victoria:Tori,Vicky Amelia:Millie,Mia Florence:Flo
    Matilda:Tilly Francesca:Frankie Gabriela:Gabi Alexandra:Alex,Lexi Wiktoria:Wika Zuzanna:Zuzia
    Emmanuel:Manny Oluwaseun:Seun Oluwatoyin:Toyin Jeremiah:Jerry Abdirahman:Abdi Abdullah:Abdul
    """
)

# Spellings that sound the same (groups separated by "|").
_SOUNDALIKES = """
    Stephen Steven | Catherine Katherine Kathryn Katharine | Mohammed Muhammad Mohammad Mohamed
    Sean Shaun Shawn Seán | Jayden Jaden Jaiden Jaydon | Aisha Ayesha Aysha | Zoe Zoey Zoë
    Isabelle Isobel Isabel Isabella | Sophia Sofia | Leah Lea Lia | Niamh Neve | Ellie Elly
    Lily Lilly Lillie | Layla Leila Laila | Jacob Jakob | Lucas Lukas | Yusuf Yousef Yusef
    Ibrahim Ebrahim | Hussain Hussein Husain | Ahmed Ahmad | Chowdhury Choudhury Chaudhry
    Rahman Rehman | Thompson Thomson | Phillips Philips | Matthews Mathews | Davies Davis
    McDonald MacDonald Macdonald | Clarke Clark | Reid Reed Read | Gray Grey | Smith Smyth
    Jonathan Johnathan Jonathon | Matthew Mathew | Philip Phillip | Caitlin Kaitlyn Katelyn
    Madison Maddison | Hannah Hanna | Aaliyah Aliyah | Zara Zahra | Eesa Isa Esa
    Mariam Maryam Miriam | Fatima Fatimah | Khadija Khadijah | Zainab Zaynab | Freya Freja
    Kacper Casper | Harvey Harvie | Louie Louis Lewie | Evie Evey | Amelia Amelie
    Ciara Kiara Keira | Siobhan Shevaun | Roisin Rosheen Róisín | Darragh Dara | Oisin Osheen
    Sinead Shinead | Tyrese Tyreece | Jermaine Germaine | Malachi Malakai | Kelly Kelley
    Murphy Murphey | Walsh Welsh | Byrne Burn Byrnes | Allen Allan Alan | Stewart Stuart
    Wilson Willson | Brown Browne | Green Greene
"""
SOUNDALIKES: dict[str, tuple[str, ...]] = {
    name: tuple(other for other in group.split() if other != name)
    for line in _SOUNDALIKES.strip().splitlines()
    for group in line.split("|")
    for name in group.split()
}
# Spelling changes that keep the sound (applied once, where they occur).
_SOUND_RULES = _pairs(
    "ph>f ck>k ie>y ey>y ee>ea ou>ow ll>l tt>t nn>n ss>s mm>m th>t ai>ay c>k y>i z>s ah>a ei>ie"
)
# Letter shapes a scanner or a tired eye confuses (letters only: names may hold no digits).
_OCR_NAME = _pairs("rn>m m>rn cl>d d>cl l>I I>l li>h h>li e>c c>e vv>w u>v n>h")
_OCR_TEXT = _pairs("0>O 1>l 1>I 5>S 8>B O>0 l>1")

_KEYBOARD_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
_NEIGHBOURS: dict[str, str] = {}
for _r, _row in enumerate(_KEYBOARD_ROWS):
    for _i, _ch in enumerate(_row):
        near = _row[max(0, _i - 1) : _i] + _row[_i + 1 : _i + 2]
        for _other in (_r - 1, _r + 1):
            if 0 <= _other < len(_KEYBOARD_ROWS):
                near += _KEYBOARD_ROWS[_other][max(0, _i - 1) : _i + 1]
        _NEIGHBOURS[_ch] = near


def soundalike(rng: random.Random, name: str) -> str | None:
    """Another spelling of `name` with the same sound, or None."""
    if name in SOUNDALIKES:
        return rng.choice(SOUNDALIKES[name])
    rules = [(a, b) for a, b in _SOUND_RULES if a in name[1:].lower()]
    if not rules:
        return None
    old, new = rng.choice(rules)
    at = name.lower().find(old, 1)
    return name[:at] + new + name[at + len(old) :]


def nickname(rng: random.Random, name: str) -> str | None:
    """A short form of `name`, or None."""
    short = NICKNAMES.get(name)
    return rng.choice(short) if short else None


def ocr(rng: random.Random, value: str, *, digits: bool = False) -> str | None:
    """`value` with one character misread, or None when nothing in it is easily misread."""
    pairs = [(a, b) for a, b in (_OCR_TEXT if digits else _OCR_NAME) if a in value]
    if not pairs:
        return None
    old, new = rng.choice(pairs)
    starts = [i for i in range(len(value)) if value.startswith(old, i)]
    at = rng.choice(starts)
    return value[:at] + new + value[at + len(old) :]


def typo(rng: random.Random, name: str) -> str | None:
    """`name` with one keyboard slip (insertion, deletion, substitution or transposition), rarely
    in its first letter; None when the name is too short to survive one."""
    letters = [i for i, ch in enumerate(name) if ch.isalpha()]
    if len(letters) < 3:
        return None
    at = rng.choice(letters[1:]) if rng.random() < 0.92 else letters[0]
    ch = name[at]
    near = _NEIGHBOURS.get(ch.lower(), "aeiou")
    kind = rng.random()
    if kind < 0.3:  # substitution by a neighbouring key
        new = rng.choice(near)
        return name[:at] + (new.upper() if ch.isupper() else new) + name[at + 1 :]
    if kind < 0.55:  # deletion
        return name[:at] + name[at + 1 :] if at else name[1].upper() + name[2:]
    if kind < 0.8:  # insertion: a doubled letter or a neighbouring key
        extra = ch.lower() if rng.random() < 0.5 else rng.choice(near)
        return name[: at + 1] + (extra.upper() if name.isupper() else extra) + name[at + 1 :]
    nxt = at + 1 if at + 1 < len(name) and name[at + 1].isalpha() else at - 1
    if nxt < 0 or name[nxt].lower() == ch.lower():
        return None
    chars = list(name)
    chars[at], chars[nxt] = chars[nxt], chars[at]
    return "".join(c.upper() if o.isupper() else c.lower() for c, o in zip(chars, name, strict=True))
