"""What every records write shares: turning a lost race on a unique key into a retry."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import IntegrityError

from services.records.model import ConcurrentChange


@contextmanager
def unique() -> Iterator[None]:
    """Two transactions raced to create the same row; the caller retries the whole transaction."""
    try:
        yield
    except IntegrityError as exc:
        raise ConcurrentChange("a concurrent transaction wrote the same key") from exc
