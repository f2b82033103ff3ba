"""Whether a given name is a name at all: one that parents in England give. The twins rule needs it
to tell a slip of the keyboard ("Rmily", "Ganisha", "Edwar") from a twin's real name ("Molly"
beside "Holly", "Jason" beside "Mason", "Zayd" beside "Zayn").

The list is the ONS's tables of baby names given in England and Wales from 1996 to 2024 (every
name given to three or more babies of a sex in a year: about 38,000 names once folded by
`name_key`, shipped in `data/ons_given_names.tsv.gz`, built by `scripts/ons_given_names.py`;
Crown copyright, Open Government Licence v3.0), with Faker's English-speaking first-name tables
and the shipped table of children's names (`frequencies.GIVEN`). A name given here to fewer than
`GIVEN_HERE` babies, or only in other countries' tables (Faker's Colombian "Edwar", Icelandic
"Olver"), is a slip when it is one slip from a name commonly given here (`as_names`). Both lists
are pinned, so they only change with a deliberate update. They are built once per process, on
first use; the records service builds them before it starts serving (`warm`)."""

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
    "morgan", "nicky", "ollie", "olly", "ronnie", "sam", "steph", "stevie",
))  # fmt: skip


# The share of a name's babies of one sex for it to count as that sex's name. At 0.6, Andrea
# (88% girls here) stays a girl's name beside Andrew, Harley (87% boys) a boy's beside Hayley,
# and Charlee (75% girls) and Valentine (64% boys) beside Charles and Valentina, so that twins so
# named with a gender missing stay two (at 0.9 the first two pairs were one child; at 0.8 the
# last two, found by probing).
ONE_SEX = 0.6
# ...and for a name given here to `GIVEN_HERE` to `KNOWN_ENOUGH` babies, where a few babies more
# of one sex could tip a smaller share: Suhaila (99 girls) is a girl's name beside Suhail, so that
# twins so named with a gender missing stay two (found by probing: Faker's tables lack both).
RARE_ONE_SEX = 0.9


def _sex(key: str) -> str | None:
    # "m" or "f": by the ONS's tables where families here gave the name to `KNOWN_ENOUGH` babies
    # or more, `ONE_SEX` of them or more of one sex (Vinnie and Freddie are boys', Edie and Maisie
    # girls'), or to `GIVEN_HERE` babies or more, `RARE_ONE_SEX` of them; else by the
    # English-speaking countries' tables where they name it (Nicola, Christina and Stephanie are
    # girls' though a table elsewhere lists them for boys: found by probing), else by every table;
    # None for a name given to both, and for an initial (69 boys were registered as "C", but a
    # record's "C" is Clare's initial as often as Callum's).
    if key in _UNISEX or len(key) < 2:
        return None
    boys, girls = babies_named().get(key, (0, 0))
    total = boys + girls
    share = ONE_SEX if total >= KNOWN_ENOUGH else RARE_ONE_SEX if total >= GIVEN_HERE else None
    if share is not None:
        if boys >= share * total:
            return "m"
        if girls >= share * total:
            return "f"
    for english in (True, False):  # rarer here, or given to both alike: as the tables say
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
# here give (under one a year is a name only beside a name it is no slip of, or a rare one). A
# probe found twins' names given to 36 to 99 babies beside common ones (Rita/Ruta, Bilal/Hilal,
# Maya/Moya): at 100, each pair was one child; at 0, slips of common names that make names given
# to a handful of babies split one child's records (recall on `test_accuracy`: 0.9896 at 0,
# 0.9908 at 20, 0.9910 before the ONS's tables).
GIVEN_HERE = 20


@cache
def given_here() -> frozenset[str]:
    """Every given name families in England give, as `name_key` forms: given to `GIVEN_HERE`
    babies or more in the ONS's tables, in Faker's English-speaking tables, in the shipped table
    of children's names, or among the names probes found."""
    here = [key for key, (boys, girls) in babies_named().items() if boys + girls >= GIVEN_HERE]
    return _keys([*here, *_faker_first_names(english=True), *frequencies.GIVEN, *_ALSO_GIVEN])


@cache
def _elsewhere() -> frozenset[str]:
    # Names of other countries' tables, and names given here to fewer than `GIVEN_HERE` babies.
    return _keys([*_faker_first_names(), *babies_named()])


@cache
def names() -> frozenset[str]:
    """Every known given name, given here or anywhere Faker has a table for ("wojciech", "ngozi",
    and "edwar", Colombian, which no family here has given three times in a year)."""
    return given_here() | _elsewhere()


# Babies in England and Wales given a name from 1996 to 2024 (about 35 a year) for it to count as
# commonly given: enough that a name no family here gives, one slip from it, is far likelier its
# slip than a twin's name (Edward, 53,212 babies, beside "Edwar").
COMMONLY_GIVEN = 1_000
# ...and for a slip that is no name at all to be taken for it: beside a name fewer families give,
# a name missing from every list may as well be a twin's ("Jaylani" beside Kaylani, 24 babies:
# found by probing).
KNOWN_ENOUGH = 100


def _babies(key: str) -> int:
    boys, girls = babies_named().get(key, (0, 0))
    return boys + girls


def commonly_given(key: str) -> bool:
    """Whether a given-name key is a name commonly given in England ("edward", "wiktoria"; not
    "emeka", 55 babies, nor "kaylani", 24)."""
    return key in frequencies.GIVEN or _babies(key) >= COMMONLY_GIVEN


def known_enough(key: str) -> bool:
    """Whether a name is known well enough that a slip of it making no name is its typo: given to
    `KNOWN_ENOUGH` babies here, or in a table of names ("aditya", 838 babies; "ebuka"; not
    "kaylani", 24)."""
    return _babies(key) >= KNOWN_ENOUGH or key in _listed()


@cache
def _listed() -> frozenset[str]:
    # In a table of names (not merely given to a few babies here).
    return _keys([*_faker_first_names(), *frequencies.GIVEN, *_ALSO_GIVEN])


def is_name(key: str) -> bool:
    """Whether a given-name key is a known name ("jason", "molly"; not "rmily", "ganisha")."""
    return key in names()


def as_names(a: str, b: str, *, one_slip: bool) -> tuple[bool, bool]:
    """Whether each of two given-name keys counts as a name beside the other, one a twin may bear:
    a name given in England; or a name given elsewhere only, unless the two are `one_slip` apart
    and the other is commonly given here: then it is most likely the other's slip ("Edwar"
    beside Edward, "Olver" beside Oliver; but "Ebuka" beside Emeka, which few families give, is
    a name, and so is any such name beside one it is no slip of: found by probing, "Emeka James"
    beside "Oliver James" was one child)."""
    here = given_here()
    return (
        a in here or (is_name(a) and not (one_slip and commonly_given(b))),
        b in here or (is_name(b) and not (one_slip and commonly_given(a))),
    )


def warm() -> None:
    """Build the lists now, so that no request pays for them."""
    names()
    _listed()
    boys_name("")
