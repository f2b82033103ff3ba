"""ContactPoint IDs: 12 digits with a Damm check digit that catches every single-digit error and
every adjacent transposition."""

from __future__ import annotations

import os
import threading
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contactpoint.platform.ids import RandomBytes, contactpoint_id_problem, damm_digit, new_contactpoint_id


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


def test_random_bytes_are_never_handed_out_twice_across_chunks_and_threads() -> None:
    source = RandomBytes()
    taken: list[bytes] = []

    def draw() -> None:
        mine = [source.take(16) for _ in range(1000)]  # 16,000 bytes: several 4 KiB chunks
        taken.extend(mine)

    threads = [threading.Thread(target=draw) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(taken) == 4000
    assert len(set(taken)) == 4000
    assert len(source.take(10_000)) == 10_000  # more than a chunk at once


def test_below_is_uniform_and_in_range() -> None:
    source = RandomBytes()
    counts = Counter(source.below(3) for _ in range(30_000))
    assert set(counts) == {0, 1, 2}
    assert all(9_000 < n < 11_000 for n in counts.values())  # no modulo bias towards 0 (p < 1e-20)
    assert all(0 <= source.below(10**11) < 10**11 for _ in range(1000))
    assert source.below(1) == 0
    with pytest.raises(ValueError):
        source.below(0)


def test_a_forked_child_does_not_repeat_its_parents_bytes() -> None:
    source = RandomBytes()
    source.take(1)  # the buffer is filled in the parent
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write, source.take(16))
        os._exit(0)
    os.waitpid(pid, 0)
    childs = os.read(read, 16)
    assert childs != source.take(16)
