"""The candidates of a batch's new records, read in two stages (`linkage.cascade`).

First every record's strong-key candidates are read, in one query for the batch, and each record
whose weak keys found many more (`SETTLE_MIN_WEAK`) is decided on them alone. A record whose
decision `settles` needs from its weak keys only the records of children it already has as
candidates (found through the child index, without reading anyone's features); the others need
all their weak-key candidates, read in a second query. At decision time, with the batch's own
earlier records added, a settled record is checked again, and read in full if it no longer
settles. So every decision is the one the full candidate list gives.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace

from sqlalchemy import Connection

from services.records.linkage import Action, Decision
from services.records.linkage.cascade import is_strong, settles, unblocked_bound
from services.records.linkage.judging import same_source_links
from services.records.linkage.verdicts import RULE_EITHER_KEPT_APART, RULE_NHS, RULE_SAME_SOURCE
from services.records.matching import FeatureCache, Matcher, candidate_rows
from services.records.model import AgeLimits
from services.records.placement import Batch, Prepared, with_locals
from services.records.repository import candidates as candidate_repo
from services.records.repository.rows import CandidateRow
from services.records.same_source import SystemsHeld
from services.records.task_upkeep import kept_apart

# A record tries to settle on its strong candidates only when its weak keys found at least this
# many records besides. Trying costs a decision on the strong candidates, which a record that does
# not settle (three in four) makes again with the rest, so it pays only when it may save reading
# and scoring several: at 1,000,000 children with key scheme 2 (0.75 weak-key records a record),
# trying for every record cost 7 to 11% of the CPU (`docs/benchmarks.md`). The weak keys' share
# grows with the registry, and so does this stage's worth.
SETTLE_MIN_WEAK = 8
# A record fits one of two children kept apart rather than the other when it scores at least this
# much more against it (log2 odds: a thousand to one).
EITHER_MARGIN = 10.0


@dataclass
class _Plan:
    """One new record's candidates: every source id its keys found, in key order, and which of
    them are read."""

    order: list[str]
    strong: set[str]
    weak: set[str]  # found by weak keys only
    bound: float = 0.0
    first: Decision | None = None  # its decision on the strong candidates, when that settles
    children: set[str] = field(default_factory=set)  # the children of its strong candidates
    extra: set[str] = field(default_factory=set)  # weak-only records of those children

    @property
    def settled(self) -> bool:
        return self.first is not None


class StagedCandidates:
    """Reads the candidates of a batch's new records, and decides each record among them."""

    def __init__(
        self,
        conn: Connection,
        records: Sequence[Prepared],
        by_key: dict[str, list[str]],
        *,
        matcher: Matcher,
        limits: AgeLimits,
        today: dt.date,
    ) -> None:
        self._conn = conn
        self._matcher = matcher
        self._limits, self._today = limits, today
        self._plans: dict[int, _Plan] = {}
        self._systems = SystemsHeld(conn)
        # Candidate rows read in each stage, records settled on the first, and settled records
        # read in full after all (for the benchmark and the tests).
        self.stats: Counter[str] = Counter()
        for p in records:
            order: list[str] = []
            strong: set[str] = set()
            for k in p.blocking:
                hits = by_key.get(k, ())
                order.extend(hits)
                if is_strong(k):
                    strong.update(hits)
            order = list(dict.fromkeys(order))
            self._plans[id(p)] = _Plan(order, strong, set(order) - strong)
        plans = list(self._plans.values())
        first = {sid for plan in plans for sid in plan.strong}
        first_rows = self._rows(first)
        self._cache = FeatureCache(first_rows)
        self.stats["first"] = len(first)
        for p in records:
            plan = self._plans[id(p)]
            if len(plan.weak) >= SETTLE_MIN_WEAK:
                self._settle(p, plan)
        settled = [plan for plan in plans if plan.settled]
        records_of = candidate_repo.source_ids_of(conn, {c for plan in settled for c in plan.children})
        for plan in settled:
            held = set().union(*(records_of.get(c, ()) for c in plan.children))
            plan.extra = plan.weak & held
        second = {sid for plan in plans for sid in (plan.extra if plan.settled else plan.weak)}
        second_rows = self._rows(second)
        self._cache.add(second_rows)
        # The children the batch's records may join, for the same-source rule (`_same_source`).
        rows = [*first_rows.values(), *second_rows.values()]
        self._systems.prefetch({r.contactpoint_id for r in rows}, {p.key.organisation for p in records})
        self.stats.update(
            second=len(second),
            settled=len(settled),
            skipped=len({sid for plan in settled for sid in plan.weak - plan.extra} - second),
        )

    def _rows(self, source_ids: Collection[str]) -> dict[str, CandidateRow]:
        return candidate_rows(self._conn, source_ids, limits=self._limits, today=self._today)

    def _settle(self, p: Prepared, plan: _Plan) -> None:
        candidates = self._cache.candidates(sid for sid in plan.order if sid in plan.strong)
        decision = self._matcher.decide(p.features, key=p.key, candidates=candidates)
        plan.bound = unblocked_bound(p.features, self._matcher.scoring)
        if settles(decision, plan.bound):
            plan.first = decision
            plan.children = {c.contactpoint_id for c in candidates}

    def decide(self, p: Prepared, batch: Batch) -> Decision:
        """LINK, REVIEW or CREATE for a new record of the batch, its earlier records included."""
        return self._same_source(p, batch, self._either_kept_apart(self._decide(p, batch)))

    def _same_source(self, p: Prepared, batch: Batch, decision: Decision) -> Decision:
        # Two records of one source system are never joined automatically, whichever of the
        # child's records blocking found (found by review: a system's second record of a child,
        # its name changed and moved, found only another system's record of that child by its NHS
        # number and joined it, though the child held the system's first record).
        if decision.action != Action.LINK or decision.candidate is None:
            return decision
        if same_source_links(self._matcher.thresholds, decision.score, RULE_NHS in decision.reasons):
            return decision
        if not self._systems.holds_another(decision.candidate.contactpoint_id, p.key, batch):
            return decision
        reasons = (*decision.reasons, RULE_SAME_SOURCE)
        return replace(decision, action=Action.REVIEW, reasons=reasons, also=())

    def _either_kept_apart(self, decision: Decision) -> Decision:
        # A record that fits, about as well (within `EITHER_MARGIN`), two children a data manager
        # kept apart does not say which one it is: a data manager decides (found by probing: a
        # third record like both joined the one that happened to score first, silently, as the
        # pair's split task is never raised). Any two of the children it fits count, the one it
        # would join or not, so the answer does not turn on which of them scored first (found by
        # re-probing: a record like both and like a new child made from them joined that child).
        if decision.action != Action.LINK or decision.candidate is None or not decision.also:
            return decision
        close = [
            a.candidate.contactpoint_id for a in decision.also if a.score > decision.score - EITHER_MARGIN
        ]
        fitting = [decision.candidate.contactpoint_id, *close]
        pairs = [(a, b) for i, a in enumerate(fitting) for b in fitting[i + 1 :] if a != b]
        if not any(kept_apart(self._conn, a, b) for a, b in pairs):
            return decision
        reasons = (*decision.reasons, RULE_EITHER_KEPT_APART)
        return replace(decision, action=Action.REVIEW, reasons=reasons, also=())

    def _decide(self, p: Prepared, batch: Batch) -> Decision:
        plan = self._plans[id(p)]
        if plan.first is None:
            return self._decide_among(p, plan.order, batch)
        ids = [sid for sid in plan.order if sid in plan.strong or sid in plan.extra]
        candidates = self._cache.candidates(ids)
        everything = with_locals(p, candidates, batch)
        locals_ = everything[len(candidates) :]
        if not locals_ and not plan.extra:
            decision = plan.first  # the same candidates as when it settled
        else:
            decision = self._matcher.decide(p.features, key=p.key, candidates=everything)
        # A local record of an existing child other than the strong candidates' may bring that
        # child's weak-only records into play: read them all then.
        known = batch.new_children | plan.children
        if settles(decision, plan.bound) and all(c.contactpoint_id in known for c in locals_):
            return decision
        self._cache.add(self._rows(plan.weak - plan.extra))
        plan.first = None
        self.stats["reread"] += 1
        return self._decide_among(p, plan.order, batch)

    def _decide_among(self, p: Prepared, ids: list[str], batch: Batch) -> Decision:
        candidates = with_locals(p, self._cache.candidates(ids), batch)
        return self._matcher.decide(p.features, key=p.key, candidates=candidates)
