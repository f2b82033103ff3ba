"""Pairwise scores of a clustering against the truth, the markdown tables of `linkage_quality.py`,
and the explanation of our matcher's missed and false pairs.

Pairs are counted from cluster sizes, never listed, except in `explain`, which lists the pairs of
the few people split across clusters and of the few clusters holding several people."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from contactpoint.cli.synthetic import KINDS, SyntheticRecord

# Kinds that normalisation undoes entirely: left out of the corruption combinations.
COSMETIC = frozenset({"upper_case", "postcode_format"})
DIFF_FIELDS = ("first_given", "given_names", "family_name", "dob", "gender", "postcode", "address", "nhs")


def _c2(n: int) -> int:
    return n * (n - 1) // 2


def _pairs(keys: Sequence[Hashable]) -> int:
    return sum(_c2(n) for n in Counter(keys).values())


@dataclass
class Scores:
    """Pairwise confusion counts of one clustering, overall and by corruption kind."""

    method: str
    tp: int
    fp: int
    fn: int
    fp_household: int  # false pairs of two children of one household (twins, siblings)
    seconds: float
    records: int
    possible: int | None = None  # POSSIBLE_MATCH outcomes (ours only) …
    possible_true: int | None = None  # … of which the candidate was truly the same child
    note: str = ""
    same_system_truth: int = 0  # truth pairs of two records of one child in one source system …
    same_system_tp: int = 0  # … and how many of them were linked
    kind_tp: dict[str, int] = field(default_factory=dict)
    kind_truth: dict[str, int] = field(default_factory=dict)
    kind_fp: dict[str, int] = field(default_factory=dict)

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def recall_across_systems(self) -> float:
        """Recall of the truth pairs from two different source systems (a system's own duplicates,
        which our matcher sends for review by design, left out)."""
        truth = self.tp + self.fn - self.same_system_truth
        return (self.tp - self.same_system_tp) / truth if truth else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def as_json(self) -> dict[str, Any]:
        out = {k: v for k, v in vars(self).items() if not k.startswith("kind_")}
        out |= {"precision": self.precision, "recall": self.recall, "f1": self.f1}
        out["recall_across_systems"] = self.recall_across_systems
        out["by_kind"] = {
            k: {"truth_pairs": self.kind_truth[k], "tp": self.kind_tp[k], "fp": self.kind_fp[k]}
            for k in KINDS
        }
        return out


def score(
    method: str, labels: Sequence[Hashable], items: Sequence[SyntheticRecord], seconds: float
) -> Scores:
    """Pairwise scores of `labels` (one cluster label per record) against the truth."""
    persons = [it.person for it in items]
    cells = list(zip(labels, persons, strict=True))
    tp, predicted, truth = _pairs(cells), _pairs(labels), _pairs(persons)
    same_home = _pairs(list(zip(labels, (it.household for it in items), strict=True)))
    s = Scores(method, tp, predicted - tp, truth - tp, same_home - tp, seconds, len(items))
    systems = [(it.organisation, it.record.source_system) for it in items]
    s.same_system_truth = _pairs(list(zip(persons, systems, strict=True)))
    s.same_system_tp = _pairs(list(zip(cells, systems, strict=True)))
    for kind in KINDS:  # pairs where either record has the kind = all pairs - pairs of two without
        plain = [kind not in it.corruptions for it in items]

        def touching(keys: Sequence[Hashable], plain: list[bool] = plain) -> int:
            return _pairs(keys) - _pairs([k for k, p in zip(keys, plain, strict=True) if p])

        s.kind_tp[kind], s.kind_truth[kind] = touching(cells), touching(persons)
        s.kind_fp[kind] = touching(labels) - s.kind_tp[kind]
    return s


def results_table(scores: Sequence[Scores]) -> str:
    """The headline table, one row per method."""
    lines = [
        "| method | precision | recall | F1 | TP | FP | FN | FP in household | possible matches (true) "
        "| recall across systems | seconds | records/s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in scores:
        possible = "—" if s.possible is None else f"{s.possible:,} ({s.possible_true:,})"
        rate = s.records / s.seconds if s.seconds else 0.0
        lines.append(
            f"| {s.method} | {s.precision:.5f} | {s.recall:.5f} | {s.f1:.5f} "
            f"| {s.tp:,} | {s.fp:,} | {s.fn:,} | {s.fp_household:,} | {possible} "
            f"| {s.recall_across_systems:.5f} | {s.seconds:,.1f} | {rate:,.0f} |"
        )
    return "\n".join(lines)


def kind_table(scores: Sequence[Scores]) -> str:
    """Recall of the truth pairs touching each corruption kind, per method, and false pairs."""
    head = " | ".join(f"recall {s.method}" for s in scores)
    fps = " | ".join(f"FP {s.method}" for s in scores)
    lines = [
        f"| corruption | truth pairs | {head} | {fps} |",
        "|---|---:|" + "---:|" * (2 * len(scores)),
    ]
    base = scores[0]
    for kind in sorted(KINDS, key=lambda k: -base.kind_truth[k]):
        truth = base.kind_truth[kind]
        recalls = " | ".join(f"{s.kind_tp[kind] / truth:.4f}" if truth else "—" for s in scores)
        lines.append(
            f"| {kind} | {truth:,} | {recalls} | " + " | ".join(f"{s.kind_fp[kind]:,}" for s in scores) + " |"
        )
    return "\n".join(lines)


def _show(value: Any) -> str:
    return "∅" if value in (None, "", []) else str(value)


SPLIT = "joined another of its child's earlier records (the child was already split)"


def _cause(action: str, reasons: Sequence[str], shared: bool) -> str:
    if not shared:
        return "no blocking key shared with any earlier record of the child"
    rules = [r.removeprefix("rule: ").split(" (")[0] for r in reasons if r.startswith("rule:")]
    if action == "CREATE":
        return "weight below the review threshold" + (f" ({'; '.join(rules)})" if rules else "")
    if action == "REVIEW":
        return "review: " + ("; ".join(rules) if rules else "weight between review and link thresholds")
    return "would link alone, but another child was chosen" + (f" ({'; '.join(rules)})" if rules else "")


def explain(
    items: Sequence[SyntheticRecord],
    rows: Sequence[Mapping[str, Any]],
    labels: Sequence[Hashable],
    order: Sequence[int],
    decided: Mapping[tuple[str, str, str], tuple[str, float | None, list[str]]],
    *,
    examples: int,
    children: int = 0,
    same_source: float | None = None,
) -> str:
    """Our errors as events, in the order records were decided: a *miss* is a record that did not
    join its child although one or more of the child's records came before it; a *wrong link* is a
    record that joined a child none of whose earlier records was its person. For a miss, the
    decision against the true child alone is recomputed (default model, for a registry of
    `children`, and thresholds) to say why:
    no shared blocking key, a weight too low, a rule, or another child preferred. Counted by cause,
    with the corruption kinds of the record and of its closest earlier true record, and `examples`
    of each cause."""
    from services.records.linkage import (
        Candidate,
        Thresholds,
        blocking_keys,
        compare,
        decide,
        default_model,
        features_of,
    )
    from services.records.validation import normalise_record

    model, thresholds = default_model().for_registry(children), Thresholds(same_source=same_source)
    features = {i: features_of(normalise_record(items[i].record)) for i in order}
    seen_person: dict[int, list[int]] = defaultdict(list)
    seen_label: dict[Hashable, list[int]] = defaultdict(list)
    misses: list[tuple[str, set[str], str]] = []
    wrong: list[tuple[str, set[str], str]] = []
    # Truth pairs across systems that ended in two children, each counted at its later record: by
    # that record's cause when it missed its child, else (it joined another of its child's
    # earlier records) under SPLIT.
    lost: Counter[str] = Counter()
    for i in order:
        it, f = items[i], features[i]
        key = (it.organisation, it.record.source_system, it.record.source_record_id)
        outcome, best, reasons = decided.get(key, ("REJECTED", None, []))
        earlier = seen_person[it.person]
        kinds_i = "+".join(sorted(set(it.corruptions) - COSMETIC)) or "(none)"
        cause: str | None = None
        if earlier and labels[i] not in {labels[j] for j in earlier}:
            keys = set(blocking_keys(f))
            shared = [j for j in earlier if keys & set(blocking_keys(features[j]))]
            j = max(shared or earlier, key=lambda j: compare(f, features[j], model).weight)
            pair = compare(f, features[j], model)
            candidates = [
                Candidate("true", items[k].organisation, items[k].record.source_system,
                          items[k].record.source_record_id, features[k])
                for k in shared
            ]  # fmt: skip
            alone = decide(
                f, organisation=key[0], source_system=key[1], source_record_id=key[2],
                candidates=candidates, kept_apart=(), model=model, thresholds=thresholds,
            )  # fmt: skip
            cause = _cause(alone.action.value, alone.reasons, bool(shared))
            kinds_j = "+".join(sorted(set(items[j].corruptions) - COSMETIC)) or "(none)"
            diff = "; ".join(
                f"{n}: {_show(rows[j][n])} → {_show(rows[i][n])}"
                for n in DIFF_FIELDS
                if rows[i][n] != rows[j][n]
            )
            levels = ", ".join(
                f"{r.field}={r.level}({r.weight:+.1f})" for r in pair.fields if r.level != "exact"
            )
            line = (
                f"- [{kinds_j}] → [{kinds_i}]: {diff or 'no difference'}; pair weight {pair.weight:+.1f} "
                f"[{levels}]; {outcome} (best {_show(best and round(best, 1))}); {cause}"
            )
            kinds = (set(it.corruptions) | set(items[j].corruptions)) - COSMETIC
            misses.append((cause, kinds, line))
        system = (it.organisation, it.record.source_system)
        apart = sum(
            labels[j] != labels[i] and (items[j].organisation, items[j].record.source_system) != system
            for j in earlier
        )
        if apart:
            lost[cause or SPLIT] += apart
        mates = seen_label[labels[i]]
        if outcome == "LINKED" and mates and all(items[k].person != it.person for k in mates):
            other = mates[0]
            home = "same household" if items[other].household == it.household else "other household"
            diff = "; ".join(f"{n}: {_show(rows[other][n])} → {_show(rows[i][n])}" for n in DIFF_FIELDS)
            line = (
                f"- {home}, [{kinds_i}]: {diff}; best {_show(best and round(best, 1))}; {'; '.join(reasons)}"
            )
            wrong.append((home, set(it.corruptions) - COSMETIC, line))
        seen_person[it.person].append(i)
        seen_label[labels[i]].append(i)
    out: list[str] = []
    for title, events, heading in (
        ("records that missed their child", misses, "cause (the decision against the true child alone)"),
        ("wrong links", wrong, "the wrong child"),
    ):
        out.append(f"\n### Ours: {len(events):,} {title}\n")
        out.append(
            f"| {heading} | records | corruption kinds most involved (either record) |\n|---|---:|---|"
        )
        groups: dict[str, list[tuple[str, set[str], str]]] = defaultdict(list)
        for e in events:
            groups[e[0]].append(e)
        ranked = sorted(groups.items(), key=lambda g: -len(g[1]))
        for group, members in ranked:
            kinds = Counter(k for e in members for k in e[1] or {"(none)"})
            top = ", ".join(f"{k} {n}" for k, n in kinds.most_common(5))
            out.append(f"| {group} | {len(members):,} | {top} |")
        everything = Counter(k for e in events for k in e[1] or {"(none)"})
        out.append(
            f"\nKinds over all {len(events):,}: " + ", ".join(f"{k} {n}" for k, n in everything.most_common())
        )
        for group, members in ranked if examples else ():
            out.append(f"\n{group}:")
            out += [e[2] for e in members[:examples]]
    out.append(f"\n### Ours: {sum(lost.values()):,} truth pairs across systems in two children, by cause\n")
    out.append("| cause (of the pair's later record) | pairs |\n|---|---:|")
    out += [f"| {cause} | {n:,} |" for cause, n in lost.most_common()]
    return "\n".join(out)
