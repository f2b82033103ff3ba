"""Training: expectation-maximisation of m, u and λ from candidate pairs (as splink does), and
name frequencies for term-frequency adjustment, from a registry's own records."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence

from services.records.linkage import comparisons as c
from services.records.linkage.blocking import blocking_keys
from services.records.linkage.features import Features
from services.records.linkage.model import Model, levels_of
from services.records.linkage.twins import siblings

# m and u stay inside [CLIP, 1 - CLIP]: a level never seen in training is rare, not impossible.
CLIP = 1e-6
_PRIOR_CLIP = 1e-9


def _vectors(pairs: Iterable[tuple[Features, Features]]) -> list[tuple[int, ...]]:
    """Each pair as the index of its level in each field (-1 when missing): compared once."""
    index = [{level: i for i, level in enumerate(levels)} for levels in c.LEVELS.values()]
    return [
        tuple(-1 if lv == c.MISSING else index[f][lv] for f, lv in enumerate(levels_of(a, b)))
        for a, b in pairs
    ]


def _shares(counts: list[list[float]]) -> list[list[float]]:
    out = []
    for row in counts:
        total = sum(row)
        if total <= 0:
            out.append([1.0 / len(row)] * len(row))
            continue
        clipped = [min(max(x / total, CLIP), 1.0 - CLIP) for x in row]
        norm = sum(clipped)
        out.append([x / norm for x in clipped])
    return out


def _level_shares(vectors: list[tuple[int, ...]], weights: list[float]) -> list[list[float]]:
    counts = [[0.0] * len(levels) for levels in c.LEVELS.values()]
    for vector, weight in zip(vectors, weights, strict=True):
        for f, level in enumerate(vector):
            if level >= 0:
                counts[f][level] += weight
    return _shares(counts)


def _table(shares: list[list[float]]) -> dict[str, dict[str, float]]:
    return {
        field: dict(zip(levels, row, strict=True))
        for (field, levels), row in zip(c.LEVELS.items(), shares, strict=True)
    }


def _known(a: Features, b: Features) -> float | None:
    """What the rules already say of a pair: 0 for children of one household whose given names
    cannot be one name (siblings, twins) and for different NHS numbers, 1 for the same NHS
    number; None when only the model can tell."""
    if siblings(a, b):
        return 0.0
    if a.nhs and b.nhs:
        return 1.0 if a.nhs == b.nhs else 0.0
    return None


def estimate(
    model: Model,
    pairs: Sequence[tuple[Features, Features]],
    *,
    iterations: int = 20,
    fix_u_from: Sequence[tuple[Features, Features]] | None = None,
) -> Model:
    """A model re-estimated from candidate pairs (pairs found by blocking), starting from `model`.

    Expectation-maximisation, so that a registry can learn its own error rates without labelled
    pairs: each pair's match probability under the current model (E), then m as the level shares
    among pairs weighted by that probability, u likewise by its complement, and λ as its mean (M);
    repeated `iterations` times. λ is thus the share of matches among `pairs` (within blocks).
    Pairs the rules already decide are held at that answer, which anchors the two classes: the
    same NHS number (a match), different NHS numbers or two children of one household with
    names that cannot be one (not). Term frequencies are left out while training, as in splink.

    Given `fix_u_from` (pairs of records drawn at random: nearly all of different children), u is
    counted from those pairs once and held fixed, as splink does; λ is then scaled to random pairs
    too (the share of matches among `pairs` times the share of random pairs that blocking would
    have found), so that λ and u describe the same pairs.

    Caution: siblings share a family name, a postcode, an address and a town, which random pairs
    almost never do, so the model's assumption that fields are independent fails for them and EM
    weighs those fields far above the shipped defaults (see `defaults`). Check a trained model
    on labelled pairs, and choose its thresholds again, before linking with it."""
    if not pairs:
        return model
    vectors = _vectors(pairs)
    m = [[model.m[f][lv] for lv in levels] for f, levels in c.LEVELS.items()]
    u = [[model.u[f][lv] for lv in levels] for f, levels in c.LEVELS.items()]
    known = [_known(a, b) for a, b in pairs]
    blocked = 1.0  # the share of the pairs u describes that blocking would bring together
    if fix_u_from:
        u = _level_shares(_vectors(fix_u_from), [1.0] * len(fix_u_from))
        shared = sum(not set(blocking_keys(a)).isdisjoint(blocking_keys(b)) for a, b in fix_u_from)
        blocked = (shared + 0.5) / (len(fix_u_from) + 1.0)
    prior = model.prior
    for _ in range(iterations):
        log_m = [[math.log(x) for x in row] for row in m]
        log_u = [[math.log(x) for x in row] for row in u]
        prior_logit = math.log(prior / (1.0 - prior))
        posteriors = []
        for vector, label in zip(vectors, known, strict=True):
            if label is not None:
                posteriors.append(label)
                continue
            logit = prior_logit
            for f, level in enumerate(vector):
                if level >= 0:
                    logit += log_m[f][level] - log_u[f][level]
            posteriors.append(1.0 / (1.0 + math.exp(-logit)) if logit > -700 else 0.0)
        m = _level_shares(vectors, posteriors)
        if not fix_u_from:
            u = _level_shares(vectors, [1.0 - p for p in posteriors])
        prior = min(max(sum(posteriors) / len(posteriors) * blocked, _PRIOR_CLIP), 1.0 - _PRIOR_CLIP)
    return Model(
        prior=prior,
        m=_table(m),
        u=_table(u),
        family_frequency=model.family_frequency,
        given_frequency=model.given_frequency,
    )


def name_frequencies(features: Iterable[Features]) -> tuple[dict[str, float], dict[str, float]]:
    """The share of records bearing each family name and each first given name, as (family,
    given), for `Model.family_frequency` and `Model.given_frequency`. Count one record per child
    when you can, or a child held by many systems counts many times."""
    family: Counter[str] = Counter()
    given: Counter[str] = Counter()
    for f in features:
        if f.family:
            family["".join(f.family)] += 1
        if f.given:
            given[f.given[0]] += 1
    total_family, total_given = sum(family.values()), sum(given.values())
    return (
        {name: n / total_family for name, n in family.items()},
        {name: n / total_given for name, n in given.items()},
    )
