"""An unmerge never leaves what was received into a shielded child readable through an unshielded
one (found by probing: a shielded child merged into an unshielded one, the child's new address and
school arrived and joined the merged child, and the unmerge left them with the unshielded
survivor for every practitioner to read). And a shield set through a retired id is in its
survivor's subject-access report."""

from __future__ import annotations

import pytest

from contactpoint.common.v1 import child_pb2
from contactpoint.records.v1 import records_service_pb2 as pb
from tests.services.records.conftest import World
from tests.services.records.test_data_managers import accesses, another_child

pytestmark = pytest.mark.asyncio(loop_scope="module")

NEW_HOME = child_pb2.Address(lines=["1 New Secret Close"], postcode="M9 7NN")


async def _shield(world: World, contactpoint_id: str, shielded: bool = True) -> None:
    await world.records.SetShielded(
        pb.SetShieldedRequest(contactpoint_id=contactpoint_id, shielded=shielded, reason="court order"),
        metadata=world.services.manager_a,
    )


async def _merge(world: World, survivor: str, retired: str) -> None:
    await world.records.MergeChildren(
        pb.MergeChildrenRequest(survivor_id=survivor, retired_id=retired, reason="duplicate"),
        metadata=world.services.manager_a,
    )


async def _unmerge(world: World, retired: str) -> None:
    await world.records.UnmergeChildren(
        pb.UnmergeChildrenRequest(retired_id=retired, reason="not the same"),
        metadata=world.services.manager_a,
    )


def _letters(world: World) -> str:
    return "".join(chr(97 + int(c, 16)) for c in world.prefix)


def _other(world: World) -> pb.SourceRecord:
    # Another child, named for this test alone (the tests share the services: another test's
    # child of the same name and address would be its possible match).
    # The family name is all the test's own: "Mensah" and a suffix made two tests' children alike
    # enough (one name's sound, one address) to be reviewed as one child born on another date.
    record = another_child(world)
    # From a system the child's later records do not come from: a system's second record of a
    # merged child is reviewed, never joined automatically.
    record.source_system = "youth-justice"
    record.name.family_name = _letters(world).capitalize() + "ley"
    # Born two years later and living elsewhere: never a possible match of the first child.
    record.date_of_birth.year = world.dob.year + 2
    house = int(world.prefix[:4], 16) % 900 + 10
    record.address.CopyFrom(child_pb2.Address(lines=[f"{house} Far Lane"], postcode="LS6 2AB"))
    return record


async def _two_children(world: World) -> tuple[str, str]:
    first = await world.submit(world.record("sc-1"), "r1")
    second = await world.submit(_other(world), "r2")
    assert second.outcome == pb.MATCH_OUTCOME_CREATED
    return first.contactpoint_id, second.contactpoint_id


async def _merged_with_arrival(world: World) -> tuple[str, str, pb.SourceRecord]:
    # A shielded child merged into another, and the child's new address arriving from another
    # system, joining the merged child: (survivor, retired, the record that arrived).
    survivor, retired = await _two_children(world)
    await _shield(world, retired)
    await _merge(world, survivor, retired)
    arriving = world.record("ed-9", source_system="education", address=NEW_HOME)
    assert (await world.submit(arriving, "r3")).contactpoint_id == survivor
    return survivor, retired, arriving


async def test_a_record_received_while_merged_with_a_shielded_child_keeps_the_survivor_shielded(
    world: World,
) -> None:
    # The child's new address arrives from another system and joins the merged child, shielded.
    survivor, retired, _ = await _merged_with_arrival(world)
    assert (await world.get(survivor)).shielded
    await _unmerge(world, retired)
    kept = await world.get(survivor)
    assert kept.shielded and (await world.get(retired)).shielded
    # Said in the unmerge's event; a data manager can lift it.
    assert accesses(world, survivor)[-1] == "UnmergeChildren"
    await _shield(world, survivor, shielded=False)
    assert not (await world.get(survivor)).shielded


async def test_a_new_version_of_the_retired_childs_record_while_merged_with_a_shielded_survivor(
    world: World,
) -> None:
    survivor, retired = await _two_children(world)
    await _shield(world, survivor)
    await _merge(world, survivor, retired)
    moved = _other(world)
    moved.address.CopyFrom(NEW_HOME)
    assert (await world.submit(moved, "r3")).contactpoint_id == survivor
    await _unmerge(world, retired)
    put_back = await world.get(retired)
    assert put_back.shielded  # its new address was received only into the shielded child


async def test_nothing_received_while_merged_leaves_each_child_as_before(world: World) -> None:
    survivor, retired = await _two_children(world)
    await _shield(world, retired)
    await _merge(world, survivor, retired)
    await _unmerge(world, retired)
    assert not (await world.get(survivor)).shielded
    assert (await world.get(retired)).shielded


async def test_records_received_while_merged_with_no_shield_on_either_stay_unshielded(world: World) -> None:
    survivor, retired = await _two_children(world)
    await _merge(world, survivor, retired)
    arriving = world.record("ed-9", source_system="education", address=NEW_HOME)
    assert (await world.submit(arriving, "r3")).contactpoint_id == survivor
    await _unmerge(world, retired)
    assert not (await world.get(survivor)).shielded and not (await world.get(retired)).shielded


async def test_a_shield_set_through_a_retired_id_is_in_the_survivors_report(world: World) -> None:
    survivor, retired = await _two_children(world)
    await _merge(world, survivor, retired)
    await _shield(world, retired)
    assert (await world.get(survivor)).shielded
    assert accesses(world, survivor)[-1] == "SetShielded"


async def _merged_on(world: World, survivor: str, retired: str) -> str:
    # `retired` shielded and merged into `survivor`, then that merged on into a third child.
    third = world.record("yj-3", source_system="youth-justice", nhs_number="")
    third.name.given_names, third.name.family_name = "Tobias", "Pellow" + _letters(world)
    last = (await world.submit(third, "r3")).contactpoint_id
    await _shield(world, retired)
    await _merge(world, survivor, retired)
    await _merge(world, last, survivor)
    return last


async def test_a_chains_last_child_that_received_a_record_meanwhile_keeps_a_shield(world: World) -> None:
    survivor, retired = await _two_children(world)
    last = await _merged_on(world, survivor, retired)  # the merged child merged on into a third
    arriving = world.record("ed-9", source_system="education", address=NEW_HOME)
    assert (await world.submit(arriving, "r4")).contactpoint_id == last
    await _unmerge(world, retired)
    assert (await world.get(last)).shielded and (await world.get(retired)).shielded


async def test_a_chains_last_child_that_received_nothing_meanwhile_is_as_before(world: World) -> None:
    survivor, retired = await _two_children(world)
    last = await _merged_on(world, survivor, retired)
    await _unmerge(world, retired)
    assert not (await world.get(last)).shielded and (await world.get(retired)).shielded


async def test_a_merge_from_before_0014_goes_by_when_records_were_received(world: World) -> None:
    survivor, retired, _ = await _merged_with_arrival(world)
    world.sql("UPDATE merges SET held_at_merge = NULL WHERE retired_id = :r", r=retired)
    await _unmerge(world, retired)
    assert (await world.get(survivor)).shielded


async def test_a_second_unmerge_gives_back_what_was_received_while_shielded_still_shielded(
    world: World,
) -> None:
    # Found by re-probing: the first unmerge kept the chain's last child shielded, and undoing the
    # merge into it then gave both children back unshielded, with the records in full.
    survivor, retired = await _two_children(world)
    third = world.record("yj-3", source_system="youth-justice", nhs_number="")
    third.name.given_names, third.name.family_name = "Tobias", "Pellow" + _letters(world)
    last = (await world.submit(third, "r3")).contactpoint_id
    await _shield(world, retired)
    await _merge(world, survivor, retired)
    first = world.record("ed-9", source_system="education", address=NEW_HOME)
    assert (await world.submit(first, "r4")).contactpoint_id == survivor
    await _merge(world, last, survivor)
    later = world.record("gp-9", source_system="health", address=NEW_HOME)
    assert (await world.submit(later, "r5")).contactpoint_id == last
    await _unmerge(world, retired)
    assert (await world.get(last)).shielded
    await _unmerge(world, survivor)
    assert (await world.get(survivor)).shielded  # holds the first record again
    assert (await world.get(last)).shielded  # holds the later one
    # A data manager's unshield is the decision: it stands through later unmerges.
    await _shield(world, last, shielded=False)
    assert not (await world.get(last)).shielded


async def test_a_record_withdrawn_while_merged_and_sent_again_after_the_unmerge_shields_its_child(
    world: World,
) -> None:
    # Found by re-probing: withdrawn before the unmerge, it was not marked; sent again, it joined
    # the unshielded survivor in full.
    survivor, retired, arriving = await _merged_with_arrival(world)
    await world.records.WithdrawSourceRecord(
        pb.WithdrawSourceRecordRequest(source_system="education", source_record_id=arriving.source_record_id),
        metadata=world.council_a,
    )
    await _unmerge(world, retired)
    assert not (await world.get(survivor)).shielded  # holds only its own records, as before
    assert (await world.submit(arriving, "r4")).contactpoint_id == survivor
    assert (await world.get(survivor)).shielded


async def test_a_record_withdrawn_before_the_merge_and_sent_again_after_the_unmerge_is_no_news(
    world: World,
) -> None:
    # Its version was readable before the shielded child joined: nothing to shield for.
    survivor, retired = await _two_children(world)
    earlier = world.record("ed-8", source_system="education", address=NEW_HOME)
    assert (await world.submit(earlier, "r3")).contactpoint_id == survivor
    await world.records.WithdrawSourceRecord(
        pb.WithdrawSourceRecordRequest(source_system="education", source_record_id=earlier.source_record_id),
        metadata=world.council_a,
    )
    await _shield(world, retired)
    await _merge(world, survivor, retired)
    await _unmerge(world, retired)
    assert (await world.submit(earlier, "r4")).contactpoint_id == survivor
    assert not (await world.get(survivor)).shielded
