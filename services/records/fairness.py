"""Ingestion shared fairly between organisations: each organisation's records are checked and
stored a few batches at a time, however many streams and calls it opens, so that one council's
feed cannot take every thread of the service from the others (found by probing: twenty streams
of one council held every worker thread; another council's record waited 12 s and practitioners'
reads failed UNAVAILABLE). The rest wait their turn, first come first served; nothing is
refused for it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class OrganisationSlots:
    """At most `per_organisation` holders at once for each organisation."""

    def __init__(self, per_organisation: int) -> None:
        if per_organisation < 1:
            raise ValueError("per_organisation must be at least 1")
        self._per_organisation = per_organisation
        self._slots: dict[str, asyncio.Semaphore] = {}

    @contextlib.asynccontextmanager
    async def of(self, organisation: str) -> AsyncIterator[None]:
        """Hold one of the organisation's slots (waiting for one) while the block runs."""
        slots = self._slots.get(organisation)
        if slots is None:
            slots = self._slots[organisation] = asyncio.Semaphore(self._per_organisation)
        async with slots:
            yield

    def in_use(self, organisation: str) -> int:
        """How many of the organisation's slots are held now."""
        slots = self._slots.get(organisation)
        return 0 if slots is None else self._per_organisation - slots._value
