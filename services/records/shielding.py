"""SetShielded: a data manager shields or unshields a child (CONTRACT §4 "Data managers").

A shield is a council's safeguarding decision, so it is remembered with the organisations that
made it (`repository.shields`). Any data manager of an organisation holding the child may shield
it; only an organisation that shielded it may lift the shield while it still holds the child
(`SHIELDED_BY_ANOTHER_ORGANISATION`). Each organisation lifts its own shield: where two shielded a
child, the first to lift it withdraws its own, and the child stays shielded until the other lifts
its shield too (or holds the child no longer). Found by probing: a council that held a record of a
child unshielded another council's shield on it, which showed the other council's address for the
child to every practitioner. Shields from before 0016, which name no organisation, are lifted by any
organisation holding the child, as they were."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Connection

from contactpoint.platform.errors import FailedPrecondition, NotFound
from contactpoint.platform.logging import get_logger
from services.records import task_upkeep
from services.records.children import locked_chain
from services.records.model import DEFAULT_LIMITS, AgeLimits
from services.records.repository import children as child_repo
from services.records.repository import holdings, kept_shields, task_sides
from services.records.repository import merges as merge_repo
from services.records.repository import review as review_repo
from services.records.repository import shields as shield_repo
from services.records.review import organisations_of
from services.records.stewardship import Manager, active_child, check, id_violations, reason_violations
from services.records.tables import MERGED

log = get_logger(__name__)

SHIELDED_BY_ANOTHER = "SHIELDED_BY_ANOTHER_ORGANISATION"


@dataclass(frozen=True)
class Shielded:
    """What a SetShielded did: the child acted on (a retired id's survivor), and whether another
    organisation's shield still stands on it after this organisation lifted its own."""

    contactpoint_id: str
    still_shielded_by_another: bool = False


def _paired_with_anothers_shield(conn: Connection, contactpoint_id: str, organisation: str) -> bool:
    # Whether an open task pairs the child with a child shielded in its own right that the
    # organisation does not hold.
    for task in review_repo.open_tasks_of(conn, contactpoint_id):
        other = child_repo.child(conn, task.other(contactpoint_id))
        if (
            other is not None
            and other.shielded
            and organisation not in organisations_of(conn, other.contactpoint_id)
        ):
            return True
    return False


def _others_shields(
    conn: Connection, contactpoint_id: str, shielding: set[str], organisation: str
) -> list[str]:
    """Of the organisations `shielding` the child, those other than `organisation` that still hold
    it: their shields stand."""
    sources = holdings.source_organisations(conn, contactpoint_id)
    return sorted((shielding - {organisation}) & {org for org, withdrawn in sources if not withdrawn})


def set_shielded(
    conn: Connection,
    *,
    manager: Manager,
    contactpoint_id: str,
    shielded: bool,
    reason: str,
    limits: AgeLimits = DEFAULT_LIMITS,
    now: dt.datetime,
) -> Shielded:
    """Shield or unshield a child (a retired id acts on its survivor)."""
    check(id_violations("contactpoint_id", contactpoint_id) + reason_violations(reason))
    # Followed with each row locked: a merge of this child committed while this waited leads on
    # to its survivor (found by probing: a shield racing a merge answered NOT_FOUND).
    chain = locked_chain(conn, contactpoint_id)
    if not chain or chain[-1].status == MERGED:
        raise NotFound("no child with this ContactPoint ID is managed by your organisation")
    row = active_child(conn, chain[-1].contactpoint_id, manager, limits=limits, now=now)
    # Unshielding is a data manager's decision, and lifts a provisional shield too, unless an open
    # task pairs the child with another organisation's shielded child: then that task's decision
    # does (found by re-probing: a council unshielded its decoy of another council's shielded
    # child, and the other council's next record of that child joined the decoy, unshielded).
    family = child_repo.merged_family(conn, row.contactpoint_id)
    shielding = shield_repo.organisations(conn, family) if not shielded and row.shielded else set()
    standing = (
        _others_shields(conn, row.contactpoint_id, shielding, manager.organisation) if shielding else []
    )
    if standing:
        if manager.organisation not in shielding:
            # How many, not which: the organisation that shielded a child may give away where it
            # lives, which is what the shield hides (found by review: the refusal named it).
            raise FailedPrecondition(
                "the child was shielded by another organisation, and only it may lift the shield",
                SHIELDED_BY_ANOTHER,
                {"shielding_organisations": str(len(standing))},
            )
        # The organisation lifts its own shield; another's still stands, and the child stays
        # shielded (found by re-probing: a council shielded a child already shielded by another,
        # then lifted every shield on it with its own).
        shield_repo.withdraw(conn, family, manager.organisation)
        log.info("records.own_shield_lifted", contactpoint_id=row.contactpoint_id, others=len(standing))
        return Shielded(row.contactpoint_id, still_shielded_by_another=True)
    keep = not shielded and _paired_with_anothers_shield(conn, row.contactpoint_id, manager.organisation)
    provisional = None if shielded or keep else False
    child_repo.set_shielding(conn, row.contactpoint_id, shielded=shielded, provisional=provisional, now=now)
    # Decided for the merged child, so for each child merged into it should the merge be undone.
    merge_repo.set_shielding_of_live_merges(conn, family, shielded=shielded)
    if shielded:
        # Remembered on each child merged into it too: it stands on either after an unmerge.
        shield_repo.add(conn, family, manager.organisation, now=now)
        # Its open tasks beside an unshielded child are its own organisations' to decide now
        # (found by review: a task raised before the shield, its candidate another council's
        # child, showed that council the shielded child in full and let it join it).
        task_sides.shielded_as_candidate(conn, row.contactpoint_id)
        # Every child an open task pairs with a newly shielded child (a possible match of it, the
        # candidate it may be a copy of, or the other half of a child filed twice) is shown
        # shielded until decided.
        task_upkeep.pair_shields(conn, review_repo.open_tasks_of(conn, row.contactpoint_id), now=now)
    else:
        # The data manager's decision: what the child holds may be read, including what it
        # received while one with a shielded child (`unmerge_shields`); it lifts the child's own
        # provisional shield too; the children shown shielded only because of this one are shown
        # so no longer.
        kept_shields.clear_kept_shielded(conn, row.contactpoint_id)
        shield_repo.clear(conn, family)
        tasks = review_repo.open_tasks_of(conn, row.contactpoint_id)
        others = {t.other(row.contactpoint_id) for t in tasks}
        task_upkeep.lift_provisional_shields(conn, sorted(others), now=now)
    log.info("records.shielding_set", contactpoint_id=row.contactpoint_id, shielded=shielded)
    return Shielded(row.contactpoint_id)
