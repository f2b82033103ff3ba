"""ContactPoint IDs: 12 digits with a Damm check digit that catches every single-digit error and
every adjacent transposition."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from contactpoint.platform.ids import contactpoint_id_problem, damm_digit, new_contactpoint_id


def test_known_damm_vector() -> None:
    # The published example: the check digit of 572 is 4.
    assert damm_digit("572") == 4
    assert damm_digit("5724") == 0


def test_new_ids_are_valid_and_random() -> None:
    ids = {new_contactpoint_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert all(contactpoint_id_problem(i) is None for i in ids)


@given(st.text(alphabet="0123456789", min_size=11, max_size=11), st.integers(0, 10), st.integers(1, 9))
def test_single_digit_errors_are_caught(body: str, pos: int, delta: int) -> None:
    good = body + str(damm_digit(body))
    bad = good[:pos] + str((int(good[pos]) + delta) % 10) + good[pos + 1 :]
    assert contactpoint_id_problem(good) is None
    assert contactpoint_id_problem(bad) == "has a wrong check digit"


@given(st.text(alphabet="0123456789", min_size=11, max_size=11), st.integers(0, 10))
def test_adjacent_transpositions_are_caught(body: str, pos: int) -> None:
    good = body + str(damm_digit(body))
    swapped = good[:pos] + good[pos + 1] + good[pos] + good[pos + 2 :]
    if swapped != good:
        assert contactpoint_id_problem(swapped) is not None


def test_malformed_ids() -> None:
    assert contactpoint_id_problem("") == "is required"
    assert contactpoint_id_problem("12345") == "must be 12 decimal digits"
    assert contactpoint_id_problem("\uff11" * 12)  # full-width digits == "must be 12 decimal digits"
