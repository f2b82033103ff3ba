"""ContactPoint IDs: 12 decimal digits, the last a Damm check digit, drawn at random."""

from __future__ import annotations

import secrets

_DAMM = (
    (0, 3, 1, 7, 5, 9, 8, 6, 4, 2),
    (7, 0, 9, 2, 1, 5, 4, 8, 6, 3),
    (4, 2, 0, 6, 8, 7, 1, 3, 5, 9),
    (1, 7, 5, 0, 9, 8, 3, 4, 2, 6),
    (6, 1, 2, 3, 0, 4, 5, 9, 7, 8),
    (3, 6, 7, 4, 2, 0, 9, 5, 8, 1),
    (5, 8, 6, 9, 7, 2, 0, 1, 3, 4),
    (8, 9, 4, 5, 3, 6, 2, 0, 1, 7),
    (9, 4, 3, 8, 6, 1, 7, 2, 0, 5),
    (2, 5, 8, 1, 4, 3, 6, 7, 9, 0),
)
ID_LENGTH = 12


def damm_digit(digits: str) -> int:
    """The Damm check digit for a string of decimal digits."""
    interim = 0
    for ch in digits:
        interim = _DAMM[interim][int(ch)]
    return interim


def new_contactpoint_id() -> str:
    """A fresh random ID (the caller makes sure it was never issued before)."""
    body = f"{secrets.randbelow(10 ** (ID_LENGTH - 1)):0{ID_LENGTH - 1}d}"  # one draw, not one a digit
    return body + str(damm_digit(body))


def contactpoint_id_problem(value: str) -> str | None:
    """Why `value` is not a valid ContactPoint ID, or None when it is."""
    if not value:
        return "is required"
    if len(value) != ID_LENGTH or not value.isascii() or not value.isdigit():
        return f"must be {ID_LENGTH} decimal digits"
    if damm_digit(value) != 0:
        return "has a wrong check digit"
    return None
