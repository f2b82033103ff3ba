"""One candidate child's verdict on a new source record: rules 3 to 7 of `decide`, over all of
the child's source records among the candidates."""

from __future__ import annotations

from dataclasses import dataclass

from services.records.linkage.comparisons import FIELDS, dob_level, placeholder
from services.records.linkage.features import Features
from services.records.linkage.given_alike import how_alike, middles_clash
from services.records.linkage.model import Score
from services.records.linkage.twins import (
    compatible_first_names,
    scored_twins,
    twins,
    two_children_despite_nhs,
    vouches,
)
from services.records.linkage.verdicts import (
    RULE_DOB_APART,
    RULE_MANUAL,
    RULE_MIDDLES,
    RULE_NHS,
    RULE_NHS_CONFLICT,
    RULE_NHS_DOB,
    RULE_NHS_NAMES,
    RULE_NHS_TWINS,
    RULE_PLACEHOLDER,
    RULE_SAME_SOURCE,
    RULE_TWIN_AND_VAGUE,
    RULE_TWIN_OF_SHIELDED,
    RULE_TWINS,
    Action,
    Candidate,
    Decision,
    Thresholds,
)

_NHS = FIELDS.index("nhs_number")


def _twins(new: Features, candidate: Candidate, score: Score) -> bool:
    # The score already holds the date-of-birth, postcode and family-name levels `twins` starts
    # from: most candidates are ruled out by them.
    if not score.levels:
        return twins(new, candidate.features)
    return scored_twins(new, candidate.features, score.levels)


def same_source_links(thresholds: Thresholds, weight: float, nhs_and_dob: bool) -> bool:
    """Whether a source system's second record for a child may join it without a data manager."""
    return thresholds.same_source is not None and (nhs_and_dob or weight >= thresholds.same_source)


def _weight(pair: tuple[Candidate, Score]) -> float:
    return pair[1].weight


def _nhs_weight(score: Score) -> float:
    return score.weights[_NHS] if score.weights else 0.0


def _by_an_initial(new: Features, records: list[tuple[Candidate, Score]], thresholds: Thresholds) -> bool:
    # Whether one of a twin-like child's records would link the new one alone, its first name only
    # an initial of the new one's (an initial vouches for no one: `vouches`).
    return any(s.weight >= thresholds.link and how_alike(new, c.features) == "initial" for c, s in records)


@dataclass(frozen=True, slots=True)
class ChildVerdict:
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


def judge(
    new: Features,
    records: list[tuple[Candidate, Score]],
    *,
    organisation: str,
    source_system: str,
    source_record_id: str,
    thresholds: Thresholds,
) -> ChildVerdict:
    """One candidate child (all its source records among the candidates) and what rules 3 to 7 say."""
    # Most candidate children share no NHS number with the record (often neither gives one), and
    # every candidate child of every ingested record is judged: that case costs no list but one.
    nhs = new.nhs
    same_nhs = [(c, s) for c, s in records if c.features.nhs == nhs] if nhs else []
    nhs_names: list[tuple[Candidate, Score]] = []
    nhs_and_dob: list[tuple[Candidate, Score]] = []
    if same_nhs:
        same_dob = [(c, s) for c, s in same_nhs if new.dob is not None and c.features.dob == new.dob]
        # The same number and date, but what looks like another child (a placeholder or mistyped
        # number that passes the check digit, a twin's number copied): no rule, a data manager
        # decides.
        nhs_names = [(c, s) for c, s in same_dob if two_children_despite_nhs(new, c.features)]
        nhs_and_dob = [pair for pair in same_dob if pair not in nhs_names]
    conflict = not same_nhs and bool(nhs) and any(c.features.nhs for c, _ in records)
    # A child is the new record's twin when one of its records looks like a twin and none of its
    # records vouches for it being the same child. When one looks like a twin and another vouches
    # (a vaguer record: "Ava" beside "Ava Rose", for "Ava Grace"), which child the vaguer record
    # is was a guess: a data manager decides (found by probing: the second twin joined the first
    # through the vaguer record, which arrived first).
    twin_like = not nhs_and_dob and any(_twins(new, c, s) for c, s in records)
    # Asked only of a twin-like child: comparing names is most of a decision's time, and most
    # candidate children are nobody's twin (a fifth of the records service's time at 1,000,000
    # children went on asking it of every child).
    is_twin = twin_like and not any(vouches(new, c.features) for c, _ in records)

    def evidence(pair: tuple[Candidate, Score]) -> float:
        # A shared NHS number with another date of birth may be a mistyped number (a sibling's):
        # its weight is set aside, and the other fields must carry the match.
        candidate, score = pair
        shared = nhs and candidate.features.nhs == nhs and pair not in nhs_and_dob
        return score.weight - _nhs_weight(score) if shared else score.weight

    if same_nhs:
        best, score = max(nhs_and_dob or records, key=evidence)
        weight = evidence((best, score))
    else:  # every record's evidence is its weight
        best, score = records[0] if len(records) == 1 else max(records, key=_weight)
        weight = score.weight
    reasons: list[str] = []
    if is_twin and same_nhs and not nhs_names:
        # Twins never share an NHS number: a name one slip from a twin's with the number and a
        # date one slip out is likelier one child's, and a new child made with no review would be
        # a copy of it (of its address, if shielded) that no data manager hears of.
        action = Action.REVIEW
        reasons.append(RULE_NHS_TWINS)
    elif is_twin and not nhs_names and any(c.shielded for c, _ in records):
        # A new child made beside a shielded child as its twin would show the address it is
        # shielded at, and the twin may be the child itself under a slip the rules read as a
        # twin's name: a data manager decides, the new child shown shielded meanwhile.
        action = Action.REVIEW
        reasons.append(RULE_TWIN_OF_SHIELDED)
    elif is_twin and not nhs_names and _by_an_initial(new, records, thresholds):
        # The child holds a record that names it only by an initial of this record's first name
        # ("J Bennett" beside Joshua, for Jacob): which twin that record was is a guess. Found by
        # probing arrival orders: "J" arriving last is reviewed (`RULE_TWIN_AND_VAGUE` above), but
        # arriving first it was silently Joshua's or Jacob's, whichever came next.
        action = Action.REVIEW
        reasons.append(RULE_TWIN_AND_VAGUE)
    elif is_twin and not nhs_names:
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
        # Reviewed: the same NHS number with another date of birth is for a data manager (issue 5;
        # found by probing: one day apart was linked as a slip). Only day and month swapped, which
        # the contract names among what matching resolves, links, when the other fields are good
        # enough for a review on their own.
        forgiven = {"day_month_swapped", "one_part"} if thresholds.nhs_date_slips else {"day_month_swapped"}
        slip = any(dob_level(new.dob, c.features.dob) in forgiven for c, _ in same_nhs)
        action = Action.LINK if slip and weight >= thresholds.review else Action.REVIEW
        reasons.append(RULE_NHS_DOB)
    elif weight >= thresholds.link:
        action = Action.LINK
        if twin_like:
            action = Action.REVIEW
            reasons.append(RULE_TWIN_AND_VAGUE)
        elif dob_level(new.dob, best.features.dob) == "else":
            # Names and an address alike outweigh a date of birth that is not one slip from the
            # other (found by probing: two Harpreet Sandhus of one address, born four years
            # apart to different mothers, were one child). Cousins, foster and children's homes
            # share an address; the contract forgives a swap or a slip, not another date.
            action = Action.REVIEW
            reasons.append(RULE_DOB_APART)
        elif placeholder(new.given) or placeholder(best.features.given):
            # "Baby Nowak" beside "Lena Nowak" of one mother, address and birthday is most likely
            # Lena before she was named, but may be her unnamed twin: a data manager decides, as
            # the same NHS number (rule 3) would have.
            action = Action.REVIEW
            reasons.append(RULE_PLACEHOLDER)
        elif middles_clash(new, best.features):
            # The score weighs the first given name; other names that cannot be one (Muhammad
            # Ibrahim / Mohammed Hassan) say two children as loudly: a data manager decides.
            action = Action.REVIEW
            reasons.append(RULE_MIDDLES)
    else:
        action = Action.REVIEW if weight >= thresholds.review else Action.CREATE
    if (
        action == Action.LINK
        and not same_source_links(thresholds, weight, bool(nhs_and_dob))
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
    organisations = frozenset([c.organisation for c, _ in records])
    # Only the number in common: every record sharing it gives names that cannot be this record's
    # and a date of birth more than a slip from it.
    nhs_only = bool(same_nhs) and not any(
        compatible_first_names(new, c.features) or dob_level(new.dob, c.features.dob) != "else"
        for c, _ in same_nhs
    )
    return ChildVerdict(
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
