"""What matching decides for a new source record, and the rules it names: the thresholds, a
candidate record, and the decision (`decide`)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from services.records.linkage.features import Features

# Default thresholds on the total match weight (log2 odds, prior included), chosen on simulated
# English children's records (`contactpoint.cli.synthetic`): from LINK_WEIGHT, fewer than one
# link in a thousand is wrong; between the two, about one proposal in three is the same child.
LINK_WEIGHT = 11.0
REVIEW_WEIGHT = 4.0

RULE_NHS = "rule: same NHS number and date of birth"
RULE_NHS_DOB = "rule: same NHS number, another date of birth (review, unless day and month swapped)"
RULE_NHS_CONFLICT = "rule: different NHS numbers (never linked automatically)"
RULE_NHS_NAMES = (
    "rule: same NHS number and date of birth, but two children by their names or genders (review)"
)
RULE_NHS_TWINS = "rule: same NHS number, another date of birth and names like twins' (review)"
RULE_EITHER = "rule: a record that fits either of two children of one household (review)"
RULE_EITHER_KEPT_APART = "rule: a record that fits either of two children a data manager kept apart (review)"
RULE_MIDDLES = "rule: other given names that cannot be one child's (review)"
RULE_DOB_APART = "rule: dates of birth more than one slip apart (review)"
RULE_LIKER_GONE = "rule: likelier a child archived or due to be, whom no data manager may see (review)"
RULE_PLACEHOLDER = 'rule: a newborn\'s placeholder for a name ("Baby"), no NHS number to tell (review)'
RULE_TWINS = "rule: twins (same family name, date of birth and address, different given names)"
RULE_TWIN_OF_SHIELDED = "rule: like a twin of a shielded child (review, shown shielded meanwhile)"
RULE_TWIN_AND_VAGUE = "rule: a twin of one record of this child, like a vaguer one (review)"
RULE_SAME_SOURCE = "rule: the same source system holds another record for this child (review)"
RULE_MANUAL = "rule: automatic linking is off (review)"
RULE_SHIELDED = "rule: a shielded child is joined by another organisation's first record only on review"
RULE_SPLIT = "rule: a new record links to both children (review)"
RULE_SHIELDED_ALIKE = "rule: a possible match of a shielded child too (review, shown shielded meanwhile)"


@dataclass(frozen=True, slots=True)
class Candidate:
    """A source record already in the registry, found by blocking, and its child. `shielded` is
    carried for the caller (a review task must not show a shielded child's address), and
    `archived` (a record of an archived child joins it, and is never a review task's), and `due`
    (its archive date has come, and the lifecycle run has yet to archive it: the same, but the
    child is still stored as active). `shielded_itself`: shielded by a data manager (or a merge),
    not only shown so while a review task pairs it with a shielded child."""

    contactpoint_id: str
    organisation: str
    source_system: str
    source_record_id: str
    features: Features
    shielded: bool = False
    archived: bool = False
    due: bool = False
    shielded_itself: bool = False

    @property
    def gone(self) -> bool:
        """Archived, or as good as: seen by no one, so never a review task's."""
        return self.archived or self.due


@dataclass(frozen=True)
class Thresholds:
    """Total match weights (bits) at and above which a record is linked, or sent for review, and
    at and above which a source system's second record for a child is linked (None: never; the
    same NHS number and date of birth then link it too)."""

    link: float = LINK_WEIGHT
    review: float = REVIEW_WEIGHT
    auto_link: bool = True
    same_source: float | None = None
    # Whether the same NHS number with one part of the date of birth wrong links (when the other
    # fields reach `review`), as day and month swapped does; False: reviewed (issue 5's rule).
    nhs_date_slips: bool = False


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
    `nhs_same` whether its child shares the new record's NHS number, `also` the other children
    a LINK would have joined as well, and `shielded_alike` the other shielded children the record
    is a possible match of: when it is reviewed, each is put to its data managers too, and the new
    child is shown shielded until they decide. A LINK carries them as well, for a rule applied
    after the decision that turns it into a review (a kept-apart pair, a source system's second
    record, a child likelier archived)."""

    action: Action
    candidate: Candidate | None
    score: float
    reasons: tuple[str, ...]
    nhs_same: bool = False
    also: tuple[Also, ...] = ()
    shielded_alike: tuple[Also, ...] = ()
