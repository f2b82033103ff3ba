"""Matching at ingestion: the registry's side of record linkage. The pure scoring lives in
`services.records.linkage`; this module holds the model in use and turns candidate rows into a
decision."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from services.records.linkage import Candidate, Decision, Features, Model, Thresholds, decide, default_model
from services.records.repository.rows import CandidateRow, SourceKey


@dataclass(frozen=True)
class Matcher:
    """The m/u model and thresholds in use. Immutable: a re-estimated model means a new Matcher."""

    model: Model = field(default_factory=default_model)
    thresholds: Thresholds = field(default_factory=Thresholds)
    model_id: int = 0

    def decide(self, features: Features, *, key: SourceKey, candidates: Sequence[Candidate]) -> Decision:
        """LINK, REVIEW or CREATE for a new source record among its candidates."""
        return decide(
            features,
            organisation=key.organisation,
            source_system=key.source_system,
            source_record_id=key.source_record_id,
            candidates=candidates,
            kept_apart=(),
            model=self.model,
            thresholds=self.thresholds,
        )


class FeatureCache:
    """Parsed features of candidate source records, shared by the records of one batch."""

    def __init__(self) -> None:
        self._parsed: dict[str, Features] = {}

    def candidates(self, rows: Iterable[CandidateRow]) -> list[Candidate]:
        """One Candidate per distinct source record among `rows`."""
        out: dict[str, Candidate] = {}
        for row in rows:
            if row.source_id in out:
                continue
            features = self._parsed.get(row.source_id)
            if features is None:
                features = self._parsed[row.source_id] = Features.from_json(row.features)
            out[row.source_id] = Candidate(
                contactpoint_id=row.contactpoint_id,
                organisation=row.source.organisation,
                source_system=row.source.source_system,
                source_record_id=row.source.source_record_id,
                features=features,
                shielded=row.shielded,
            )
        return list(out.values())
