"""A person's password: twelve characters or more, and not easily guessed (found by probing:
"password1234", twelve spaces and the username itself were all accepted)."""

from __future__ import annotations

import pytest

from services.identity.passwords import password_problem


@pytest.mark.parametrize(
    "password",
    [
        "password1234",
        "Password1234",
        "123456789012",
        "qwertyuiopas",
        "aaaaaaaaaaaa",
        "abcdefghijkl",
        "letmeinletmein",
        " " * 12,
        "pwtest-user9",  # the username
        "pwtest-user9!!",
        "short",
        "x" * 5000 + "!",  # beyond what zxcvbn estimates, its start is judged
        "   password1234   ",  # the same in disguise (found by re-probing)
        "password1234\u200b",
        "\uff50\uff41\uff53\uff53\uff57\uff4f\uff52\uff44\uff11\uff12\uff13\uff14",  # full width
        "  pwtest-user9  ",
    ],
)
def test_easily_guessed_passwords_are_refused(password: str) -> None:
    assert password_problem(password, username="pwtest-user9") is not None


@pytest.mark.parametrize(
    "password",
    [
        "correct horse battery staple 9",
        "a long passphrase",
        "a long enough password",
        "s3cret-passw0rd-123",
        "Tr0ub4dor&3-orange-kettle",
        "correct horse battery staple " * 10,
    ],
)
def test_passphrases_and_random_passwords_are_accepted(password: str) -> None:
    assert password_problem(password, username="pat") is None
