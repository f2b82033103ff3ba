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


def _faker_first_names(tables: tuple[str, ...] = _FIRST_NAME_TABLES) -> Iterable[str]:
    import faker.providers.person as person

    for module in pkgutil.iter_modules(person.__path__):
        provider = importlib.import_module(f"{person.__name__}.{module.name}").Provider
        for attribute in tables:
            table = provider.__dict__.get(attribute)
            if isinstance(table, dict | list | tuple):  # a name → weight mapping, or a list
                yield from table


@cache
def _gendered(table: str) -> frozenset[str]:
    return frozenset(key for key in map(name_key, _faker_first_names((table,))) if key.isascii())


def boys_name(key: str) -> bool:
    """Whether a given-name key is a boy's name and never a girl's in any of the tables
    ("daniel"; not "isabel", nor "alex", which is both)."""
    return key in _gendered("first_names_male") and key not in _gendered("first_names_female")


def girls_name(key: str) -> bool:
    """Whether a given-name key is a girl's name and never a boy's in any of the tables
    ("danielle", "harriet"; not "charlie")."""
    return key in _gendered("first_names_female") and key not in _gendered("first_names_male")


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
