"""The records service's own value types (the record data itself is the contract's protobuf)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from contactpoint.platform.db import TransactionConflict


class Outcome(enum.StrEnum):
    """How a submitted record was matched to a child (CONTRACT §4 `MatchOutcome`)."""

    CREATED = "CREATED"
    LINKED = "LINKED"
    POSSIBLE_MATCH = "POSSIBLE_MATCH"
    UNCHANGED = "UNCHANGED"


@dataclass(frozen=True)
class Submitted:
    """The answer to one submission (also the answer replayed to a retry)."""

    contactpoint_id: str
    outcome: Outcome


@dataclass(frozen=True)
class AgeLimits:
    """A child is under `max_age_years`; a young person with an extended record under
    `extended_max_age_years`. Records are archived at these ages."""

    max_age_years: int = 18
    extended_max_age_years: int = 25

    def limit(self, *, extended: bool) -> int:
        """The age limit for a record."""
        return self.extended_max_age_years if extended else self.max_age_years


DEFAULT_LIMITS = AgeLimits()


@dataclass(frozen=True)
class FindCriteria:
    """A search for one child (CONTRACT §3 FindChild criteria). `date_of_birth` is (year, month,
    day) as given, or None when it was not given."""

    family_name: str
    given_name: str
    date_of_birth: tuple[int, int, int] | None
    postcode: str = ""
    gender: int = 0
    fuzzy: bool = False


class ConcurrentChange(TransactionConflict):
    """Another transaction wrote the same key first; retrying the whole transaction resolves it."""
