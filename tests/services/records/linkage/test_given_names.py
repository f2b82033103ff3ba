"""The list of known given names the twins rule asks: large, in `name_key` form, without typos."""

from __future__ import annotations

from services.records.linkage import frequencies
from services.records.linkage.given_names import is_name, names


def test_names_from_many_origins_are_known() -> None:
    for name in ("jason", "molly", "holly", "tanisha", "ngozi", "siobhan", "wojciech", "zoe", "garry"):
        assert is_name(name), name
    assert len(names()) > 10_000
    assert set(frequencies.GIVEN) <= names()


def test_slips_and_keys_of_other_forms_are_not() -> None:
    for key in ("rmily", "ganisha", "lsabella", "frde", "", "j", "Jason", "zoë"):
        assert not is_name(key), key
