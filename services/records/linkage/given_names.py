"""Whether a given name is a name at all: one that parents in England give. The twins rule needs it
to tell a slip of the keyboard ("Rmily", "Ganisha", "Edwar") from a twin's real name ("Molly"
beside "Holly", "Jason" beside "Mason", "Zayd" beside "Zayn").

The list is the ONS's tables of baby names given in England and Wales from 1996 to 2024 (every
name given to three or more babies of a sex in a year: about 38,000 names once folded by
`name_key`, shipped in `data/ons_given_names.tsv.gz`, built by `scripts/ons_given_names.py`;
Crown copyright, Open Government Licence v3.0), with Faker's English-speaking first-name tables
and the shipped table of children's names (`frequencies.GIVEN`). A name no family here gave three
times in a year in 29 years (Faker's Colombian "Edwar", Icelandic "Olver") is a slip when it is one
of a name they give. Both lists are pinned, so they only change with a deliberate update. They
are built once per process, on first use; the records service builds them before it starts
serving (`warm`)."""

from __future__ import annotations

import gzip
import importlib
import pkgutil
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path

from services.records.linkage import frequencies
from services.records.names import name_key

# Faker's provider attributes that hold first names: a list, a tuple or a name → weight mapping.
_FIRST_NAME_TABLES = ("first_names", "first_names_male", "first_names_female", "first_names_nonbinary")


def _faker_first_names(
    tables: tuple[str, ...] = _FIRST_NAME_TABLES, *, english: bool = False
) -> Iterable[str]:
    import faker.providers.person as person

    for module in pkgutil.iter_modules(person.__path__):
        if english and not module.name.startswith("en_"):
            continue  # (the bare "en" table mixes boys' and girls' names: not a locale's)
        provider = importlib.import_module(f"{person.__name__}.{module.name}").Provider
        for attribute in tables:
            table = provider.__dict__.get(attribute)
            if isinstance(table, dict | list | tuple):  # a name → weight mapping, or a list
                yield from table


@cache
def _gendered(table: str, *, english: bool = False) -> frozenset[str]:
    names = map(name_key, _faker_first_names((table,), english=english))
    return frozenset(key for key in names if key.isascii())


# Short forms given to boys and girls alike in England, whatever one table says.
_UNISEX = frozenset((
    "alex", "ali", "billie", "bobbie", "charlie", "chris", "frankie", "georgie", "jamie", "jo", "jordan",
    "morgan", "nicky", "ollie", "olly", "ronnie", "sam", "steph", "stevie", "toni",
))  # fmt: skip


# The share of a name's babies of one sex for it to count as that sex's name. At 0.8, Andrea
# (88% girls here) stays a girl's name beside Andrew and Harley (87% boys) a boy's beside Hayley,
# so that twins so named with a gender missing stay two; at 0.9 each pair was one child.
ONE_SEX = 0.8


def _sex(key: str) -> str | None:
    # "m" or "f": by the ONS's tables where families here gave the name to `GIVEN_HERE` babies or
    # more, `ONE_SEX` of them or more of one sex (Vinnie and Freddie are boys', Edie and Maisie
    # girls'; Eden, 75% girls, is given to both); else by the English-speaking countries'
    # tables where they name it (Nicola, Christina and Stephanie are girls' though a table
    # elsewhere lists them for boys: found by probing), else by every table; None for a name
    # given to both.
    if key in _UNISEX:
        return None
    boys, girls = babies_named().get(key, (0, 0))
    if boys + girls >= GIVEN_HERE:
        return "m" if boys >= ONE_SEX * (boys + girls) else "f" if girls >= ONE_SEX * (boys + girls) else None
    for english in (True, False):
        boy = key in _gendered("first_names_male", english=english)
        girl = key in _gendered("first_names_female", english=english)
        if boy or girl:
            return None if boy and girl else "m" if boy else "f"
    return None


def boys_name(key: str) -> bool:
    """Whether a given-name key is a boy's name and never a girl's ("daniel", "francis"; not
    "isabel", nor "alex", which is both)."""
    return _sex(key) == "m"


def girls_name(key: str) -> bool:
    """Whether a given-name key is a girl's name and never a boy's ("danielle", "harriet",
    "nicola"; not "charlie")."""
    return _sex(key) == "f"


# Names given to children in England that Faker's tables lack in Latin letters (found by probing:
# "Hussain" was taken for a misspelt "Hassan", and twins Hassan and Hussain were joined).
_ALSO_GIVEN = (
    "hussain", "husain", "husayn", "zayn", "rayyan", "zakariya", "sumaya", "ananya", "chidi",
    "chioma", "adebayo", "oluwaseun",
)  # fmt: skip


_ONS_TABLE = Path(__file__).parent / "data" / "ons_given_names.tsv.gz"


@cache
def babies_named() -> Mapping[str, tuple[int, int]]:
    """How many babies born in England and Wales from 1996 to 2024 were given each name, as
    (boys, girls), by `name_key` (the ONS's tables: names given fewer than three times in a year
    are not counted)."""
    counts: dict[str, tuple[int, int]] = {}
    with gzip.open(_ONS_TABLE, "rt", encoding="utf-8") as lines:
        for line in lines:
            name, boys, girls = line.rstrip("\n").split("\t")
            key = name_key(name)
            before = counts.get(key, (0, 0))
            counts[key] = (before[0] + int(boys), before[1] + int(girls))
    return counts


def _keys(names: Iterable[str]) -> frozenset[str]:
    # In Latin letters: a name written in another script never meets a record's Latin-letter key.
    return frozenset(key for key in map(name_key, names) if key.isascii() and len(key) > 1)


# Babies in England and Wales given a name from 1996 to 2024 for it to count as a name families
# here give (three or four a year). The rarest name of twins' that probes found joined is "Senna"
# (258 babies, beside Sienna); slips of common names make many of the rarer ones.
GIVEN_HERE = 100


@cache
def given_here() -> frozenset[str]:
    """Every given name families in England give, as `name_key` forms: given to `GIVEN_HERE`
    babies or more in the ONS's tables, in Faker's English-speaking tables, in the shipped table
    of children's names, or among the names probes found."""
    babies = babies_named()
    here = [key for key, (boys, girls) in babies.items() if boys + girls >= GIVEN_HERE]
    return _keys([*here, *_faker_first_names(english=True), *frequencies.GIVEN, *_ALSO_GIVEN])


@cache
def names() -> frozenset[str]:
    """Every known given name, given here or anywhere Faker has a table for ("wojciech", "ngozi",
    and "edwar", Colombian, which no family here has given three times in a year)."""
    return given_here() | _keys([*babies_named(), *_faker_first_names()])


# Babies in England and Wales given a name from 1996 to 2024 (about 35 a year) for it to count as
# commonly given: enough that a name no family here gives, one slip from it, is far likelier its
# slip than a twin's name (Edward, 53,212 babies, beside "Edwar").
COMMONLY_GIVEN = 1_000


def commonly_given(key: str) -> bool:
    """Whether a given-name key is a name commonly given in England ("edward", "wiktoria"; not
    "emeka", 55 babies, nor "kaylani", 24)."""
    return key in frequencies.GIVEN or sum(babies_named().get(key, (0, 0))) >= COMMONLY_GIVEN


def is_name(key: str) -> bool:
    """Whether a given-name key is a known name ("jason", "molly"; not "rmily", "ganisha")."""
    return key in names()


def as_names(a: str, b: str) -> tuple[bool, bool]:
    """Whether each of two given-name keys counts as a name beside the other, one a twin may bear:
    a name given in England; or a name given elsewhere, unless the other is commonly given here,
    for then a name no family here gives one slip from it is most likely its slip ("Edwar" beside
    Edward, "Olver" beside Oliver; but "Ebuka" beside Emeka, which few families give, is a name)."""
    here = given_here()
    return (
        a in here or (is_name(a) and not commonly_given(b)),
        b in here or (is_name(b) and not commonly_given(a)),
    )


def warm() -> None:
    """Build the lists now, so that no request pays for them."""
    names()
    boys_name("")
