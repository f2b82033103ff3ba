"""Children split in two: a new record that links to one child but would have linked to another as
well says the two are likely one child held twice (each made before the records that join them
arrived). Matching cannot join them itself — merging children is a data manager's decision, and
about one pair in ten such pairs on simulated feeds is two children — so it raises a review task
pairing them (LINK merges the child the record joined into the other, whose organisations decide;
KEEP_APART is remembered), and, failing safe, shows each shielded while the other is shielded.

A child merged away while the batch decided makes the batch decide again (`placement.flush`); one
whose every record was withdrawn meanwhile leaves a task that a data manager is never handed
(`review.next_task` skips it) and that the lifecycle's sweep ends (`task_upkeep.close_overtaken`).
Two batches that share no blocking key may, rarely, both raise the same pair; the second task
closes with the first (KEEP_APART closes every task between the pair; after a LINK the other is
obsolete). The pairs come from the candidates the matcher read: on a decision settled by the
strong keys, not the weak keys' (reading those as well found the same 24 pairs on the 20,000
children's feed)."""

from __future__ import annotations

from contactpoint.platform.ids import RANDOM
from services.records.evidence import record_of
from services.records.linkage import Decision
from services.records.repository import review as review_repo


def split_tasks(decision: Decision, joined: str) -> list[review_repo.NewTask]:
    """A task for each other child a record joining `joined` would have joined too (raised at
    flush by `task_upkeep.raise_pairs`, which leaves out pairs kept apart or already waiting)."""
    # The other child is the task's candidate: its organisations decide, never the sender of the
    # record alone (found by probing: with the joined child as candidate, the council that sent
    # the record was handed another council's shielded child in full, and could merge it). A
    # shielded child joined is the candidate beside an unshielded other: its own organisations
    # decide, and the other's never see it.
    joined_shielded = decision.candidate is not None and decision.candidate.shielded
    tasks = []
    for also in decision.also:
        other = also.candidate.contactpoint_id
        new_child, candidate = (
            (other, joined) if joined_shielded and not also.candidate.shielded else (joined, other)
        )
        records = {joined: record_of(decision.candidate) if decision.candidate else None}
        records[other] = record_of(also.candidate)
        tasks.append(
            review_repo.NewTask(
                RANDOM.hex_id(),
                new_child,
                candidate,
                also.score,
                also.reasons,
                new_child_record=records[new_child],
                candidate_record=records[candidate],
            )
        )
    return tasks
