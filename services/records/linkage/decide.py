"""The ingestion decision: link a new source record to the best candidate child, send it to a data
manager for review, or create a new child — with the reasons, field by field and rule by rule.

Rules, in order: (1) children a data manager kept apart from this record are ignored; (2) a
child scores as its best-matching source record, and the best child is chosen; (3) the same NHS
number and date of birth links whatever the score (unless the records still look like two
children — twins, given names that cannot be one, or another family name and gender: then it is
reviewed), the same NHS number with another date of birth is reviewed (unless only its day and
month are swapped and the other fields reach the review threshold on their own), and different NHS
numbers are never linked automatically; (4) twins are neither linked nor proposed, and a link
whose other given names clash or whose dates of birth are more than one slip apart is reviewed; (5) a source
system's second record for one child (unless its weight reaches `Thresholds.same_source`, when
set, or it has the same NHS number and date of birth), and (6) any link while automatic linking
is off, are reviewed instead; (7) otherwise the score decides. A record that links to one child
but would link to another as well names that other child too: the two are likely one child
already split in two, for a data manager to decide — unless the two are children of one
household (twins, siblings), when the record is reviewed instead of linked."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import replace

from services.records.linkage.features import Features
from services.records.linkage.judging import ChildVerdict, judge
from services.records.linkage.model import Model, Score, compare
from services.records.linkage.twins import siblings, twins
from services.records.linkage.verdicts import (
    RULE_EITHER,
    RULE_SHIELDED,
    RULE_SHIELDED_ALIKE,
    RULE_SPLIT,
    Action,
    Also,
    Candidate,
    Decision,
    Thresholds,
)


def _household_pair(a: Features, b: Features) -> bool:
    # Two children of one household: twins (by the rule) or siblings.
    return twins(a, b) or siblings(a, b)


def _shielded_elsewhere(child: ChildVerdict, organisation: str) -> bool:
    # A shielded child none of whose records found is the organisation's.
    return child.best.shielded and organisation not in child.organisations


def _shielded_itself(child: ChildVerdict) -> bool:
    # Shielded by a data manager, not only shown so beside another (found by re-probing: a child
    # shown shielded only while a task paired it counted, and the shield spread on through every
    # record like it, kept after its cause was decided).
    return child.best.shielded_itself


def _shielded_alike(decision: Decision, chosen: ChildVerdict, children: Sequence[ChildVerdict]) -> Decision:
    # A record reviewed against one child that is a possible match of a shielded child as well
    # (or would link to it): the new child is that shielded child's possible match too, shown
    # shielded until its data managers decide (found by probing: a record like a shielded child
    # and more like an unshielded namesake at its new address was reviewed against the namesake
    # alone, and its child shown in full).
    alike = tuple(
        Also(child.best, child.score.weight, (*child.score.reasons(), *child.rules, RULE_SHIELDED_ALIKE))
        for child in children
        if child is not chosen and _shielded_itself(child) and child.action != Action.CREATE
    )
    return replace(decision, shielded_alike=alike) if alike else decision


def decide(
    new: Features,
    *,
    organisation: str,
    source_system: str,
    source_record_id: str,
    candidates: Sequence[Candidate],
    kept_apart: Collection[str],
    model: Model,
    thresholds: Thresholds,
) -> Decision:
    """Link, review or create for a new source record, given the candidate records blocking found.

    Candidates are grouped by child, each child scoring as its best-matching record, and the best
    child is chosen, children sharing the NHS number first (unless they share only the number and
    another child links far more strongly); children a data manager kept apart
    from this record are ignored and twins are never chosen. When nothing is good enough to
    review, the highest-scoring child is still reported, with its reasons, for the audit trail."""
    by_child: dict[str, list[tuple[Candidate, Score]]] = {}
    for candidate in candidates:
        if candidate.contactpoint_id not in kept_apart:
            by_child.setdefault(candidate.contactpoint_id, []).append(
                (candidate, compare(new, candidate.features, model))
            )
    if not by_child:
        return Decision(Action.CREATE, None, 0.0, ())
    children = [
        judge(
            new,
            records,
            organisation=organisation,
            source_system=source_system,
            source_record_id=source_record_id,
            thresholds=thresholds,
        )
        for records in by_child.values()
    ]
    chosen = max(children, key=lambda child: child.rank)
    if chosen.nhs_only and chosen.action != Action.LINK:
        # A child that shares only the NHS number (its records' names cannot be this record's, and
        # their dates of birth are more than a slip from it) gives way to a child the record links
        # to on its own by a link's worth of weight more, the number included: the number is then
        # the likelier slip (the quality bench lost true links to children whose record bore
        # another child's number). With names that could be one ("Noa", "J" beside Joshua), a date
        # the same or a slip out (a child known by his middle name after a move, beside a namesake
        # next door), or weights nearer, the number still comes first (found by probing).
        clear = [
            child
            for child in children
            if child.action == Action.LINK
            and not child.nhs_same
            and child.score.weight >= chosen.score.weight + thresholds.link
        ]
        if clear:
            chosen = max(clear, key=lambda child: child.rank)
    own_shielded = [
        c for c in children if c.action == Action.LINK and c.best.shielded and organisation in c.organisations
    ]
    if own_shielded and organisation not in chosen.organisations:
        # A record its own organisation's shielded child would take is never turned to another
        # organisation's child, by a shared NHS number or anything else: found by re-probing, a
        # decoy filed elsewhere under the child's NHS number and date of birth drew the council's
        # next record of it into a new child, unshielded, whose review the decoy's council decided.
        chosen = max(own_shielded, key=lambda child: child.rank)
    if chosen.action == Action.LINK and _shielded_elsewhere(chosen, organisation):
        # A record joining a shielded child would let its organisation's data managers see the
        # child in full, merge it and lift its shield: found by probing, a council's record with
        # nothing but another council's shielded child's name and date of birth (or its NHS
        # number) joined it. It joins a child it may join otherwise, the shielded one becoming a
        # split task; else it is reviewed. Either way the child's own organisations decide
        # (`review.next_task`: a task's candidate's).
        others = [c for c in children if c.action == Action.LINK and not _shielded_elsewhere(c, organisation)]
        if not others:
            decision = chosen.decision()
            return replace(decision, action=Action.REVIEW, reasons=(*decision.reasons, RULE_SHIELDED))
        chosen = max(others, key=lambda child: child.rank)
    if chosen.action == Action.REVIEW and organisation not in chosen.organisations:
        # One of the organisation's own children, if it is a possible match too, is the one put
        # to its data managers (its duplicate must not wait on a task about another
        # organisation's child, which that organisation decides).
        own = [c for c in children if c.action == Action.REVIEW and organisation in c.organisations]
        if own:
            chosen = max(own, key=lambda child: child.rank)
    if chosen.action == Action.CREATE:
        # Only twins' reviews (of a shielded child, or sharing the NHS number) rank below a new
        # child: they are still reviews. Else the closest child is reported, for the audit trail.
        reviews = [child for child in children if child.action == Action.REVIEW]
        if reviews:
            chosen = max(reviews, key=lambda child: child.rank)
        else:
            chosen = max(children, key=lambda child: child.score.weight)
    decision = chosen.decision()
    if chosen.action != Action.LINK:
        return _shielded_alike(decision, chosen, children) if decision.action == Action.REVIEW else decision
    others = [child for child in children if child is not chosen and child.action == Action.LINK]
    if any(_household_pair(chosen.best.features, child.best.features) for child in others):
        # "J Whitfield" when Jacob and Joshua Whitfield are both known: which twin is a guess.
        reviewed = replace(decision, action=Action.REVIEW, reasons=(*decision.reasons, RULE_EITHER))
        return _shielded_alike(reviewed, chosen, children)
    also = tuple(
        Also(child.best, child.score.weight, (*child.score.reasons(), *child.rules, RULE_SPLIT))
        for child in others
    )
    # Carried by the link too: a rule applied after this decision may make it a review (found by
    # review: a link turned into a review by a kept-apart pair lost the shielded child it was a
    # possible match of, and the new child, at a shielded child's new address, was shown in full).
    return _shielded_alike(replace(decision, also=also) if also else decision, chosen, children)
