"""Account names: one canonical form, and one name space for people and machines (found by
probing: "prac1\n" made a second account, and a council system could be called "prac1")."""

from __future__ import annotations

import pytest

from contactpoint.platform import migrate
from contactpoint.platform.errors import FailedPrecondition, InvalidArgument
from services.identity import domain
from services.identity.main import MIGRATIONS
from tests.harness import create_service_account, create_user


@pytest.fixture
def identity_url(database_url: str) -> str:
    migrate.upgrade("identity", MIGRATIONS, database_url)
    return database_url


@pytest.mark.parametrize("name", ["prac1\n", "prac1\r\n", "\nprac1"])
def test_a_name_with_a_line_break_is_no_name(name: str) -> None:
    assert not domain.plausible_name(name)


@pytest.mark.parametrize(("name", "org"), [("prac1\n", "E08000003"), ("prac2", "E08000003\n")])
def test_an_account_with_a_line_break_in_its_name_is_refused(identity_url: str, name: str, org: str) -> None:
    with pytest.raises(InvalidArgument):
        create_user(identity_url, name, "practitioner", org=org)
    with pytest.raises(InvalidArgument):
        create_service_account(identity_url, name, "council-system", org=org)


def test_people_and_machines_share_one_name_space(identity_url: str) -> None:
    create_user(identity_url, "prac1", "practitioner")
    with pytest.raises(FailedPrecondition):
        create_service_account(identity_url, "prac1", "council-system")
    create_service_account(identity_url, "mis-feed", "council-system")
    with pytest.raises(FailedPrecondition):
        create_user(identity_url, "mis-feed", "practitioner")
