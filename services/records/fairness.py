"""Ingestion shared fairly between organisations: each organisation's records are checked and
stored a few batches at a time, however many streams and calls it opens, so that one council's
feed cannot take every thread of the service from the others (found by probing: twenty streams
of one council held every worker thread; another council's record waited 12 s and practitioners'
reads failed UNAVAILABLE). And a few at a time in all, however many organisations send at once,
so that the service's threads, memory and (on SQLite) write lock are never all taken by feeds
(found by re-probing: three councils with ten streams each made a data manager's shield wait
22.7 s). The rest wait their turn, first come first served; nothing is refused for it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class OrganisationSlots:
    """At most `per_organisation` holders at once for each organisation, and `total` in all. An
    organisation waits for one of its own slots first, so that a flooding one queues only for its
    own and the shared slots go to the organisations in the order they asked."""

    def __init__(self, per_organisation: int, total: int) -> None:
        if per_organisation < 1 or total < 1:
            raise ValueError("slots must be at least 1")
        self._per_organisation = per_organisation
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._total = total
        self._all = asyncio.Semaphore(total)

    @contextlib.asynccontextmanager
    async def of(self, organisation: str) -> AsyncIterator[None]:
        """Hold one of the organisation's slots and one of all (waiting for them) while the block
        runs."""
        slots = self._slots.get(organisation)
        if slots is None:
            slots = self._slots[organisation] = asyncio.Semaphore(self._per_organisation)
        async with slots, self._all:
            yield

    def all_in_use(self) -> int:
        """How many slots are held now, of every organisation."""
        return self._total - self._all._value

    def in_use(self, organisation: str) -> int:
        """How many of the organisation's slots are held now."""
        slots = self._slots.get(organisation)
        return 0 if slots is None else self._per_organisation - slots._value
