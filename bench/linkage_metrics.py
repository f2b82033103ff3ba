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
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def as_json(self) -> dict[str, Any]:
        out = {k: v for k, v in vars(self).items() if not k.startswith("kind_")}
        out |= {"precision": self.precision, "recall": self.recall, "f1": self.f1}
        out["by_kind"] = {
            k: {"truth_pairs": self.kind_truth[k], "tp": self.kind_tp[k], "fp": self.kind_fp[k]} for k in KINDS
        }
        return out


def score(method: str, labels: Sequence[Hashable], items: Sequence[SyntheticRecord], seconds: float) -> Scores:
    """Pairwise scores of `labels` (one cluster label per record) against the truth."""
    persons = [it.person for it in items]
    cells = list(zip(labels, persons, strict=True))
    tp, predicted, truth = _pairs(cells), _pairs(labels), _pairs(persons)
    same_home = _pairs(list(zip(labels, (it.household for it in items), strict=True)))
    s = Scores(method, tp, predicted - tp, truth - tp, same_home - tp, seconds, len(items))
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
        "| seconds | records/s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in scores:
        possible = "—" if s.possible is None else f"{s.possible:,} ({s.possible_true:,})"
        rate = s.records / s.seconds if s.seconds else 0.0
        lines.append(
            f"| {s.method} | {s.precision:.5f} | {s.recall:.5f} | {s.f1:.5f} | {s.tp:,} | {s.fp:,} | {s.fn:,} "
            f"| {s.fp_household:,} | {possible} | {s.seconds:,.1f} | {rate:,.0f} |"
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


def explain(
    items: Sequence[SyntheticRecord],
    rows: Sequence[Mapping[str, Any]],
    labels: Sequence[Hashable],
    decided: Mapping[tuple[str, str, str], tuple[str, float | None, list[str]]],
    *,
    examples: int,
) -> str:
    """Our missed pairs (same person, different children) and false pairs (different persons, one
    child): counts by corruption kinds and by differing fields, and `examples` of each, with the
    pair's own score under the default model, whether it shares a blocking key, and what the
    later record's own decision was."""
    from services.records.linkage import blocking_keys, compare, default_model, features_of
    from services.records.validation import normalise_record

    model = default_model()
    by_person: dict[int, list[int]] = defaultdict(list)
    by_label: dict[Hashable, list[int]] = defaultdict(list)
    for i, it in enumerate(items):
        by_person[it.person].append(i)
        by_label[labels[i]].append(i)
    missed = [
        (a, b)
        for group in by_person.values()
        for x, a in enumerate(group)
        for b in group[x + 1 :]
        if labels[a] != labels[b]
    ]
    false = [
        (a, b)
        for group in by_label.values()
        if len({items[i].person for i in group}) > 1
        for x, a in enumerate(group)
        for b in group[x + 1 :]
        if items[a].person != items[b].person
    ]
    out: list[str] = []
    for title, pairs in (("missed pairs (same child, not linked)", missed), ("false pairs (linked)", false)):
        kinds: Counter[str] = Counter()
        diffs: Counter[str] = Counter()
        for a, b in pairs:
            union = (set(items[a].corruptions) | set(items[b].corruptions)) - COSMETIC
            kinds["+".join(sorted(union)) or "(none)"] += 1
            diff = [f for f in DIFF_FIELDS if rows[a][f] != rows[b][f]]
            diffs[", ".join(diff) or "(none)"] += 1
        out.append(f"\n### Ours: {len(pairs):,} {title}\n")
        out.append("| corruption kinds of the two records | pairs |\n|---|---:|")
        out += [f"| {k} | {n:,} |" for k, n in kinds.most_common(15)]
        out.append("\n| fields that differ (after cleaning) | pairs |\n|---|---:|")
        out += [f"| {k} | {n:,} |" for k, n in diffs.most_common(12)]
        if examples:
            out.append("")
        for a, b in pairs[:examples]:
            ra, rb = items[a].record, items[b].record
            fa, fb = (features_of(normalise_record(r)) for r in (ra, rb))
            pair = compare(fa, fb, model)
            shared = bool(set(blocking_keys(fa)) & set(blocking_keys(fb)))
            later = items[max(a, b)]
            key = (later.organisation, later.record.source_system, later.record.source_record_id)
            outcome, best, _ = decided.get(key, ("?", None, []))
            fields = "; ".join(
                f"{f}: {_show(rows[a][f])} / {_show(rows[b][f])}"
                for f in DIFF_FIELDS
                if rows[a][f] != rows[b][f]
            )
            levels = ", ".join(f"{r.field}={r.level}({r.weight:+.1f})" for r in pair.fields if r.level != "exact")
            home = " same household" if items[a].household == items[b].household else ""
            out.append(
                f"- kinds {sorted(items[a].corruptions)} / {sorted(items[b].corruptions)}{home}; {fields}; "
                f"pair weight {pair.weight:+.1f} [{levels}], shared blocking key: {shared}; "
                f"later record {outcome} (best {best if best is None else round(best, 1)})"
            )
    return "\n".join(out)
