"""The ingestion decision: link a new source record to the best candidate child, send it to a data
manager for review, or create a new child — with the reasons, field by field and rule by rule.

Rules, in order: (1) children a data manager kept apart from this record are ignored; (2) a
child scores as its best-matching source record, and the best child is chosen; (3) the same NHS
number and date of birth links whatever the score (unless the records still look like two
children — twins, given names that cannot be one, or another family name and gender: then it is
reviewed), the same NHS number with another date of birth is reviewed (unless the date is
one slip out and the other fields reach the review threshold on their own), and different NHS
numbers are never linked automatically; (4) twins are neither linked nor proposed; (5) a source
system's second record for one child (unless its weight reaches `Thresholds.same_source`, when
set, or it has the same NHS number and date of birth), and (6) any link while automatic linking
is off, are reviewed instead; (7) otherwise the score decides. A record that links to one child
but would link to another as well names that other child too: the two are likely one child
already split in two, for a data manager to decide — unless the two are children of one
household (twins, siblings), when the record is reviewed instead of linked."""

from __future__ import annotations

import enum
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace

from services.records.linkage.comparisons import FIELDS, dob_level
from services.records.linkage.features import Features
from services.records.linkage.given_alike import middles_clash
from services.records.linkage.model import Model, Score, compare
from services.records.linkage.twins import (
    compatible_first_names,
    may_be_twins,
    siblings,
    twins,
    two_children_despite_nhs,
    vouches,
)

# Default thresholds on the total match weight (log2 odds, prior included), chosen on simulated
# English children's records (`contactpoint.cli.synthetic`): from LINK_WEIGHT, fewer than one
# link in a thousand is wrong; between the two, about one proposal in three is the same child.
LINK_WEIGHT = 11.0
REVIEW_WEIGHT = 4.0

RULE_NHS = "rule: same NHS number and date of birth"
RULE_NHS_DOB = "rule: same NHS number, another date of birth (review, unless a slip the rest confirms)"
RULE_NHS_CONFLICT = "rule: different NHS numbers (never linked automatically)"
RULE_NHS_NAMES = (
    "rule: same NHS number and date of birth, but two children by their names or genders (review)"
)
RULE_EITHER = "rule: a record that fits either of two children of one household (review)"
RULE_EITHER_KEPT_APART = "rule: a record that fits either of two children a data manager kept apart (review)"
RULE_MIDDLES = "rule: other given names that cannot be one child's (review)"
RULE_TWINS = "rule: twins (same family name, date of birth and address, different given names)"
RULE_TWIN_AND_VAGUE = "rule: a twin of one record of this child, like a vaguer one (review)"
RULE_SAME_SOURCE = "rule: the same source system holds another record for this child (review)"
RULE_MANUAL = "rule: automatic linking is off (review)"
RULE_SHIELDED = "rule: a shielded child is joined by another organisation's first record only on review"
RULE_SPLIT = "rule: a new record links to both children (review)"
# Dates of birth one slip apart: day and month swapped, or one of day, month and year wrong.
_DOB_SLIPS = frozenset({"day_month_swapped", "one_part"})


@dataclass(frozen=True, slots=True)
class Candidate:
    """A source record already in the registry, found by blocking, and its child. `shielded` is
    carried for the caller (a review task must not show a shielded child's address), and
    `archived` (a record of an archived child joins it, and is never a review task's)."""

    contactpoint_id: str
    organisation: str
    source_system: str
    source_record_id: str
    features: Features
    shielded: bool = False
    archived: bool = False


@dataclass(frozen=True)
class Thresholds:
    """Total match weights (bits) at and above which a record is linked, or sent for review, and
    at and above which a source system's second record for a child is linked (None: never; the
    same NHS number and date of birth then link it too)."""

    link: float = LINK_WEIGHT
    review: float = REVIEW_WEIGHT
    auto_link: bool = True
    same_source: float | None = None


class Action(enum.StrEnum):
    """LINK: join the candidate child. REVIEW: create a child and a review task. CREATE: a new child."""

    LINK = "LINK"
    REVIEW = "REVIEW"
    CREATE = "CREATE"


@dataclass(frozen=True)
class Also:
    """Another child a linked record would have joined had the chosen one not been there: its best
    record, its score against the new record, and the reasons."""

    candidate: Candidate
    score: float
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Decision:
    """What to do with a new record; `candidate` is the best candidate (None when there were none),
    `nhs_same` whether its child shares the new record's NHS number, and `also` the other children
    a LINK would have joined as well."""

    action: Action
    candidate: Candidate | None
    score: float
    reasons: tuple[str, ...]
    nhs_same: bool = False
    also: tuple[Also, ...] = ()


_NHS = FIELDS.index("nhs_number")
_DOB = FIELDS.index("date_of_birth")
_POSTCODE = FIELDS.index("postcode")


def _twins(new: Features, candidate: Candidate, score: Score) -> bool:
    # The score already holds the date-of-birth and postcode levels that `twins` starts from.
    if score.levels and not may_be_twins(score.levels[_DOB], score.levels[_POSTCODE]):
        return False
    return twins(new, candidate.features)


def _household_pair(a: Features, b: Features) -> bool:
    # Two children of one household: twins (by the rule) or siblings.
    return twins(a, b) or siblings(a, b)


def _same_source_links(thresholds: Thresholds, weight: float, nhs_and_dob: bool) -> bool:
    # Whether a source system's second record for a child may join it without a data manager.
    return thresholds.same_source is not None and (nhs_and_dob or weight >= thresholds.same_source)


def _nhs_weight(score: Score) -> float:
    return score.weights[_NHS] if score.weights else 0.0


@dataclass(frozen=True, slots=True)
class _Child:
    """One candidate child's verdict, and what ranks it among the others. Its reasons are written
    out only if it is the child the decision reports."""

    action: Action
    best: Candidate
    score: Score
    rules: tuple[str, ...]
    twins: bool
    nhs_same: bool
    nhs_and_dob: bool
    organisations: frozenset[str] = frozenset()  # whose records of this child were candidates
    nhs_only: bool = False  # the NHS number shared, and neither names nor date of birth

    @property
    def rank(self) -> tuple[bool, bool, bool, float]:
        # Twins last; then the child with the same NHS number and date of birth, the same NHS
        # number, and the best score.
        return (not self.twins, self.nhs_and_dob, self.nhs_same, self.score.weight)

    def decision(self) -> Decision:
        return Decision(
            self.action, self.best, self.score.weight, (*self.score.reasons(), *self.rules), self.nhs_same
        )


def _judge(
    new: Features,
    records: list[tuple[Candidate, Score]],
    *,
    organisation: str,
    source_system: str,
    source_record_id: str,
    thresholds: Thresholds,
) -> _Child:
    """One candidate child (all its source records among the candidates) and what rules 3 to 7 say."""
    same_nhs = [(c, s) for c, s in records if new.nhs and c.features.nhs == new.nhs]
    same_dob = [(c, s) for c, s in same_nhs if new.dob is not None and c.features.dob == new.dob]
    # The same number and date, but what looks like another child (a placeholder or mistyped
    # number that passes the check digit, a twin's number copied): no rule, a data manager decides.
    nhs_names = [(c, s) for c, s in same_dob if two_children_despite_nhs(new, c.features)]
    nhs_and_dob = [pair for pair in same_dob if pair not in nhs_names]
    conflict = not same_nhs and any(new.nhs and c.features.nhs for c, _ in records)
    # A child is the new record's twin when one of its records looks like a twin and none of its
    # records vouches for it being the same child. When one looks like a twin and another vouches
    # (a vaguer record: "Ava" beside "Ava Rose", for "Ava Grace"), which child the vaguer record
    # is was a guess: a data manager decides (found by probing: the second twin joined the first
    # through the vaguer record, which arrived first).
    twin_like = not nhs_and_dob and any(_twins(new, c, s) for c, s in records)
    vouched = any(vouches(new, c.features) for c, _ in records)
    is_twin = twin_like and not vouched

    def evidence(pair: tuple[Candidate, Score]) -> float:
        # A shared NHS number with another date of birth may be a mistyped number (a sibling's):
        # its weight is set aside, and the other fields must carry the match.
        candidate, score = pair
        shared = new.nhs and candidate.features.nhs == new.nhs and pair not in nhs_and_dob
        return score.weight - _nhs_weight(score) if shared else score.weight

    best, score = max(nhs_and_dob or records, key=evidence)
    weight = evidence((best, score))
    reasons: list[str] = []
    if is_twin and not nhs_names:
        action = Action.CREATE
        reasons.append(RULE_TWINS)
    elif nhs_and_dob:
        action = Action.LINK
        reasons.append(RULE_NHS)
    elif nhs_names:
        action = Action.REVIEW
        reasons.append(RULE_NHS_NAMES)
    elif conflict:
        action = Action.REVIEW if weight >= thresholds.review else Action.CREATE
        reasons.append(RULE_NHS_CONFLICT)
    elif same_nhs:
        # Reviewed, unless the date is only one slip out (swapped, or one part wrong) and the other
        # fields are good enough for a review on their own: a mistyped NHS number that is another
        # child's, whose date of birth is one slip from this one, is far less likely than a slip.
        slip = any(dob_level(new.dob, c.features.dob) in _DOB_SLIPS for c, _ in same_nhs)
        action = Action.LINK if slip and weight >= thresholds.review else Action.REVIEW
        reasons.append(RULE_NHS_DOB)
    elif weight >= thresholds.link:
        action = Action.LINK
        if twin_like:
            action = Action.REVIEW
            reasons.append(RULE_TWIN_AND_VAGUE)
        elif middles_clash(new, best.features):
            # The score weighs the first given name; other names that cannot be one (Muhammad
            # Ibrahim / Mohammed Hassan) say two children as loudly: a data manager decides.
            action = Action.REVIEW
            reasons.append(RULE_MIDDLES)
    else:
        action = Action.REVIEW if weight >= thresholds.review else Action.CREATE
    if (
        action == Action.LINK
        and not _same_source_links(thresholds, weight, bool(nhs_and_dob))
        and any(
            c.organisation == organisation
            and c.source_system == source_system
            and c.source_record_id != source_record_id
            for c, _ in records
        )
    ):
        action = Action.REVIEW
        reasons.append(RULE_SAME_SOURCE)
    if action == Action.LINK and not thresholds.auto_link:
        action = Action.REVIEW
        reasons.append(RULE_MANUAL)
    organisations = frozenset(c.organisation for c, _ in records)
    # Only the number in common: every record sharing it gives names that cannot be this record's
    # and a date of birth more than a slip from it.
    nhs_only = bool(same_nhs) and not any(
        compatible_first_names(new, c.features) or dob_level(new.dob, c.features.dob) != "else"
        for c, _ in same_nhs
    )
    return _Child(
        action,
        best,
        score,
        tuple(reasons),
        is_twin,
        bool(same_nhs),
        bool(nhs_and_dob),
        organisations,
        nhs_only,
    )


def _shielded_elsewhere(child: _Child, organisation: str) -> bool:
    # A shielded child none of whose records found is the organisation's.
    return child.best.shielded and organisation not in child.organisations


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
        _judge(
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
        chosen = max(children, key=lambda child: child.score.weight)
    decision = chosen.decision()
    if chosen.action != Action.LINK:
        return decision
    others = [child for child in children if child is not chosen and child.action == Action.LINK]
    if any(_household_pair(chosen.best.features, child.best.features) for child in others):
        # "J Whitfield" when Jacob and Joshua Whitfield are both known: which twin is a guess.
        return replace(decision, action=Action.REVIEW, reasons=(*decision.reasons, RULE_EITHER))
    also = tuple(
        Also(child.best, child.score.weight, (*child.score.reasons(), *child.rules, RULE_SPLIT))
        for child in others
    )
    return replace(decision, also=also) if also else decision
