"""Ingestion shared between organisations: each has a few slots, and waits for its own, never for
another's (found by probing: one council's twenty streams made another's single record wait 12 s
and practitioners' reads fail)."""

from __future__ import annotations

import asyncio

import pytest

from services.records.fairness import OrganisationSlots


class _Holders:
    """Tasks that each hold a slot of an organisation until released, noting when they got it."""

    def __init__(self, slots: OrganisationSlots) -> None:
        self.slots = slots
        self.release = asyncio.Event()
        self.entered: list[str] = []

    async def hold(self, organisation: str, name: str) -> None:
        async with self.slots.of(organisation):
            self.entered.append(name)
            await self.release.wait()


async def test_an_organisation_waits_for_its_own_slots_and_never_for_anothers() -> None:
    slots = OrganisationSlots(2, total=8)
    holders = _Holders(slots)
    release, entered, hold = holders.release, holders.entered, holders.hold

    flood = [asyncio.create_task(hold("E08000003", f"a{i}")) for i in range(5)]
    await asyncio.sleep(0.05)
    assert entered == ["a0", "a1"] and slots.in_use("E08000003") == 2  # the rest wait their turn
    other = asyncio.create_task(hold("E08000004", "b0"))
    await asyncio.sleep(0.05)
    assert entered[-1] == "b0"  # not behind the first organisation's queue
    release.set()
    await asyncio.gather(*flood, other)
    assert sorted(entered) == ["a0", "a1", "a2", "a3", "a4", "b0"]
    assert slots.in_use("E08000003") == 0 and slots.in_use("E08000004") == 0


async def test_every_organisation_together_holds_at_most_the_total_in_the_order_they_asked() -> None:
    slots = OrganisationSlots(2, total=3)
    holders = _Holders(slots)
    release, entered, hold = holders.release, holders.entered, holders.hold

    tasks = []
    for name, organisation in [("a0", "A"), ("a1", "A"), ("b0", "B"), ("b1", "B"), ("c0", "C"), ("a2", "A")]:
        tasks.append(asyncio.create_task(hold(organisation, name)))
        await asyncio.sleep(0.01)
    assert entered == ["a0", "a1", "b0"] and slots.all_in_use() == 3  # the rest wait
    release.set()
    await asyncio.gather(*tasks)
    # b1 and c0 asked for a shared slot before a2, which waited for one of A's own first.
    assert entered == ["a0", "a1", "b0", "b1", "c0", "a2"]
    assert slots.all_in_use() == 0


def test_at_least_one_slot() -> None:
    with pytest.raises(ValueError):
        OrganisationSlots(0, total=4)
    with pytest.raises(ValueError):
        OrganisationSlots(2, total=0)
