"""ContactPoint IDs: 12 decimal digits, the last a Damm check digit, drawn at random."""

from __future__ import annotations

import os
import threading

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


_BODY = 10 ** (ID_LENGTH - 1)


class RandomBytes:
    """The operating system's randomness, drawn 4 KiB at a time and handed out in pieces.

    Each `os.urandom` call releases the GIL for a system call, and a busy thread then waits for
    the GIL back: one call per id made that wait a twentieth of ingestion. Thread-safe; what it
    hands out is as unpredictable as `secrets`, and never handed out twice."""

    CHUNK = 4096

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)  # a child neither repeats nor inherits a held lock

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._buffer = b""
        self._at = 0

    def take(self, n: int) -> bytes:
        with self._lock:
            if self._at + n > len(self._buffer):
                self._buffer, self._at = os.urandom(max(self.CHUNK, n)), 0
            out = self._buffer[self._at : self._at + n]
            self._at += n
            return out

    def below(self, bound: int) -> int:
        """A uniform integer in [0, bound), by rejection (no modulo bias)."""
        if bound <= 0:
            raise ValueError("bound must be positive")
        size = (bound.bit_length() + 7) // 8
        excess = 8 * size - bound.bit_length()
        while True:
            value = int.from_bytes(self.take(size), "big") >> excess
            if value < bound:
                return value

    def hex_id(self) -> str:
        """128 random bits as 32 hex digits (the shape of `uuid4().hex`)."""
        return self.take(16).hex()


RANDOM = RandomBytes()


def new_contactpoint_id() -> str:
    """A fresh random ID (the caller makes sure it was never issued before)."""
    body = f"{RANDOM.below(_BODY):0{ID_LENGTH - 1}d}"  # one draw, not one a digit
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
