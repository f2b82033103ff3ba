"""Matching at ingestion: the registry's side of record linkage. The pure scoring lives in
`services.records.linkage`; this module holds the model in use and turns candidate rows into a
decision."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property

from sqlalchemy import Connection

from services.records.children import due_children
from services.records.linkage import (
    Action,
    Candidate,
    Decision,
    Features,
    Model,
    Thresholds,
    compare,
    decide,
    default_model,
)
from services.records.linkage.verdicts import RULE_LIKER_GONE
from services.records.model import AgeLimits
from services.records.repository import candidates as candidate_repo
from services.records.repository.rows import CandidateRow, SourceKey


@dataclass(frozen=True)
class Matcher:
    """The m/u model and thresholds in use, and the registry's size (active children) when last
    counted. Immutable: a re-estimated model or a new count means a new Matcher."""

    model: Model = field(default_factory=default_model)
    thresholds: Thresholds = field(default_factory=Thresholds)
    model_id: int = 0
    children: int = 0

    @cached_property
    def scoring(self) -> Model:
        """The model decisions are scored with: `model` for a registry of `children`."""
        return self.model.for_registry(self.children)

    def still_its_child(self, old: Features, new: Features) -> bool:
        """Whether a source record's new content (a correction, or the record sent again after it
        was withdrawn) can still be the child its old content was: the two versions share an NHS
        number, or their fields say "the same child" at least as loudly as "another" (the
        weight without the prior: one record id is not two records drawn at random). A
        correction, however many fields it fixes at once (a date and a move, a new family name
        and a move), is; only a record reused for another child (name, date of birth and address
        all different) is not. The twins rule is not asked: a council's own record id is
        evidence no score has."""
        if old.nhs and old.nhs == new.nhs:
            return True
        return compare(new, old, self.scoring).weight - self.scoring.prior_weight >= 0.0

    def decide(self, features: Features, *, key: SourceKey, candidates: Sequence[Candidate]) -> Decision:
        """LINK, REVIEW or CREATE for a new source record among its candidates. A record of an
        archived child joins it (one id for life; it stays archived unless the record moves its
        archive date on: an extended record of a care leaver). Only a link does: an archived
        child (or one whose archive date has come) is never a review task's, as no data manager
        may see it, nor another child's "also", so then the record is decided among the active
        children alone."""
        decision = self._decide(features, key, candidates)
        chosen = decision.candidate
        if chosen is not None and chosen.gone and decision.action != Action.LINK:
            gone = decision.score
            decision = self._decide(features, key, [c for c in candidates if not c.gone])
            if decision.action == Action.LINK and decision.score < gone:
                # It is likelier the child no one may see: joining it to this one would file that
                # child's record under another (found by re-probing: a council's second record of
                # a child dead over a year joined a living namesake by a nickname). Reviewed.
                decision = replace(
                    decision, action=Action.REVIEW, reasons=(*decision.reasons, RULE_LIKER_GONE), also=()
                )
        chosen = decision.candidate
        also = () if chosen is not None and chosen.gone else decision.also
        also = tuple(a for a in also if not a.candidate.gone)
        alike = tuple(a for a in decision.shielded_alike if not a.candidate.gone)
        if also == decision.also and alike == decision.shielded_alike:
            return decision
        return replace(decision, also=also, shielded_alike=alike)

    def _decide(self, features: Features, key: SourceKey, candidates: Sequence[Candidate]) -> Decision:
        return decide(
            features,
            organisation=key.organisation,
            source_system=key.source_system,
            source_record_id=key.source_record_id,
            candidates=candidates,
            kept_apart=(),
            model=self.scoring,
            thresholds=self.thresholds,
        )


def candidate_rows(
    conn: Connection, source_ids: Collection[str], *, limits: AgeLimits, today: dt.date
) -> dict[str, CandidateRow]:
    """`candidates_of`, each row of a child whose archive date has come marked `due` (found by
    probing: a record like a child dead over a year, not yet archived by the hourly run, answered
    POSSIBLE_MATCH with a task no data manager could ever be handed, and its new child was
    shown)."""
    rows = candidate_repo.candidates_of(conn, source_ids)
    months = {r.contactpoint_id: r.archive_on for r in rows.values() if r.archive_on is not None}
    due = due_children(conn, months, limits=limits, today=today)
    if not due:
        return rows
    return {sid: replace(r, due=True) if r.contactpoint_id in due else r for sid, r in rows.items()}


class FeatureCache:
    """The candidate source records a batch read, each parsed once however many of the batch's
    records it is a candidate of."""

    def __init__(self, rows: Mapping[str, CandidateRow]) -> None:
        self._rows = dict(rows)
        self._made: dict[str, Candidate] = {}

    def add(self, rows: Mapping[str, CandidateRow]) -> None:
        """Rows read later (a second stage)."""
        self._rows.update(rows)

    def candidates(self, source_ids: Iterable[str]) -> list[Candidate]:
        """One Candidate per distinct source record among `source_ids` that the batch read (the
        rest are withdrawn, or their child is no longer active)."""
        out: dict[str, Candidate] = {}
        for source_id in source_ids:
            if source_id in out:
                continue
            made = self._made.get(source_id)
            if made is None:
                row = self._rows.get(source_id)
                if row is None:
                    continue
                made = self._made[source_id] = Candidate(
                    contactpoint_id=row.contactpoint_id,
                    organisation=row.source.organisation,
                    source_system=row.source.source_system,
                    source_record_id=row.source.source_record_id,
                    features=Features.from_json(row.features),
                    shielded=row.shielded,
                    shielded_itself=row.shielded_itself,
                    archived=row.archived,
                    due=row.due,
                )
            out[source_id] = made
        return list(out.values())
