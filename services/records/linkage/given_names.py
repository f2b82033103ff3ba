"""Whether a given name is a name at all: one that parents give, in England or anywhere its
children's families come from. The twins rule needs it to tell a slip of the keyboard ("Rmily",
"Ganisha") from a twin's real name ("Molly" beside "Holly", "Jason" beside "Mason").

The list is Faker's first-name tables in every locale it ships (census and civil-registration
counts: about 19,000 names in Latin letters once folded by `name_key`), together with the shipped
table of children's names (`frequencies.GIVEN`). Faker is pinned, so the list only changes with a
deliberate upgrade. It is built once per process, on first use (about 0.15 s); the records service
builds it before it starts serving (`warm`)."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable
from functools import cache

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


def _sex(key: str) -> str | None:
    # "m" or "f": by the English-speaking countries' tables where they name it (England's names,
    # as parents here give them: Nicola, Christina and Stephanie are girls' though a table
    # elsewhere lists them for boys: found by probing), else by every table; None for a name
    # given to both.
    if key in _UNISEX:
        return None
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


@cache
def names() -> frozenset[str]:
    """Every known given name, as `name_key` forms in Latin letters (a name written in another
    script never meets a record's Latin-letter key)."""
    keys = {name_key(name) for name in _faker_first_names()}
    keys.update(frequencies.GIVEN)
    keys.update(_ALSO_GIVEN)
    return frozenset(key for key in keys if key.isascii() and len(key) > 1)


def is_name(key: str) -> bool:
    """Whether a given-name key is a known name ("jason", "molly"; not "rmily", "ganisha")."""
    return key in names()


def warm() -> None:
    """Build the lists now, so that no request pays for them."""
    names()
    boys_name("")
