"""The Fellegi-Sunter model: for each level of each comparison, m (how often two records of the
same child are at that level) and u (how often two records of different children are), and the
prior λ. A pair's match weight is log2 of its odds of being the same child, and is the sum of one
weight per field, so that every decision can be explained field by field."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import cache, cached_property, lru_cache

from services.records.linkage import comparisons as c
from services.records.linkage import frequencies
from services.records.linkage.defaults import PARAMETERS, PRIOR, PRIOR_CHILDREN
from services.records.linkage.features import Features

# The u of an exact name never goes below this, however rare the name looks: one child in a
# thousand. A name missing from the shipped table may still be common in one town or community;
# `em.name_frequencies` gives a registry's own figures.
TF_FLOOR = 1e-3
# An initial agrees with about one child in twenty, whatever the name table says.
INITIAL_U = 0.05


@dataclass(frozen=True, slots=True)
class FieldResult:
    """One field's level and weight in a comparison, in bits (0.0 when missing)."""

    field: str
    level: str
    weight: float


@dataclass(frozen=True, slots=True)
class Score:
    """The total match weight of a pair (prior plus fields), and each field's level and weight
    (in `comparisons.FIELDS` order)."""

    weight: float
    levels: tuple[str, ...] = ()
    weights: tuple[float, ...] = ()

    @property
    def fields(self) -> tuple[FieldResult, ...]:
        """How each field contributed (built only for the pair a decision reports)."""
        parts = zip(c.FIELDS, self.levels, self.weights, strict=False)  # none at all for a bare Score
        return tuple(FieldResult(field, level, weight) for field, level, weight in parts)

    @property
    def probability(self) -> float:
        """The match probability the weight stands for: 2^w / (1 + 2^w)."""
        return 1.0 / (1.0 + math.exp2(min(-self.weight, 1000.0)))

    def reasons(self) -> list[str]:
        """One line per field for a data manager, e.g. "given_names: nickname (+4.2)"."""
        return list(map(_reason, c.FIELDS, self.levels, self.weights))


@lru_cache(maxsize=8192)
def _reason(field: str, level: str, weight: float) -> str:
    # Every decision writes its eight lines, and they come from a few hundred (field, level,
    # weight) triples: formatting each float again was 2% of the records service's time.
    return f"{field}: {level} ({weight:+.1f})"


@dataclass(frozen=True)
class Model:
    """m and u per field and level, λ, and name frequencies for term-frequency adjustment."""

    prior: float
    m: Mapping[str, Mapping[str, float]]
    u: Mapping[str, Mapping[str, float]]
    family_frequency: Mapping[str, float]
    given_frequency: Mapping[str, float]
    # The registry size (active children) `prior` was set for; 0: any size (`for_registry`).
    children: int = 0

    def __post_init__(self) -> None:
        if not 0.0 < self.prior < 1.0:
            raise ValueError("prior must be between 0 and 1")
        for field, levels in c.LEVELS.items():
            for level in levels:
                for name, table in (("m", self.m), ("u", self.u)):
                    value = table.get(field, {}).get(level)
                    if value is None or not 0.0 < value < 1.0:
                        raise ValueError(f"{name}[{field}][{level}] must be between 0 and 1")

    def for_registry(self, children: int) -> Model:
        """The model for a registry of `children` active children: in one larger than the prior
        was set for, λ scaled down in proportion. A new record's keys bring other children as
        candidates in proportion to the registry, so without it the chance that one of them
        scores past a threshold by coincidence grows with the registry (at 100,000 children
        precision fell to 0.998 against 0.9994 at 20,000); scaled, a link needs log2(children /
        self.children) bits more evidence, and the expected wrong links a record stay as set.
        Never raised for a smaller registry (the thresholds are only more cautious there)."""
        if self.children <= 0 or children <= self.children:
            return self
        odds = self.prior / (1.0 - self.prior) * self.children / children
        return replace(self, prior=odds / (1.0 + odds), children=children)

    @cached_property
    def prior_weight(self) -> float:
        """log2 of the prior odds, λ / (1 - λ)."""
        return math.log2(self.prior / (1.0 - self.prior))

    @cached_property
    def weights(self) -> dict[str, dict[str, float]]:
        """log2(m/u) for every field and level, computed once per model."""
        return {
            field: {level: math.log2(self.m[field][level] / self.u[field][level]) for level in levels}
            for field, levels in c.LEVELS.items()
        }

    @cached_property
    def field_weights(self) -> tuple[dict[str, float], ...]:
        """`weights` in `comparisons.FIELDS` order, each with `comparisons.MISSING` at 0.0 (a
        field empty on either side carries no weight)."""
        return tuple({**self.weights[field], c.MISSING: 0.0} for field in c.FIELDS)

    @cached_property
    def _tf_cache(self) -> dict[tuple[str, str], float]:
        return {}

    def exact_weight(self, field: str, key: str) -> float:
        """The weight of an exact name, with u the name's own frequency (splink's term-frequency
        adjustment): "smith" = "smith" is weaker evidence than "okonkwo" = "okonkwo"."""
        cache = self._tf_cache
        weight = cache.get((field, key))
        if weight is None:
            table = self.given_frequency if field == "given_names" else self.family_frequency
            u = max(table.get(key, 0.0), TF_FLOOR if len(key) > 1 else INITIAL_U)
            weight = cache[(field, key)] = math.log2(self.m[field]["exact"] / u)
        return weight

    def to_json(self) -> str:
        """The model as JSON with sorted keys, for a settings file or a database row."""
        return json.dumps(
            {
                "prior": self.prior,
                "m": {field: dict(levels) for field, levels in self.m.items()},
                "u": {field: dict(levels) for field, levels in self.u.items()},
                "family_frequency": dict(self.family_frequency),
                "given_frequency": dict(self.given_frequency),
                **({"children": self.children} if self.children else {}),
            },
            sort_keys=True,
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> Model:
        """A model back from `to_json`; checked, so a bad file fails at start-up, not mid-ingest."""
        data = json.loads(text)
        m = {f: {lv: float(x) for lv, x in levels.items()} for f, levels in data["m"].items()}
        u = {f: {lv: float(x) for lv, x in levels.items()} for f, levels in data["u"].items()}
        shipped = default_model()
        for field in c.LEVELS:  # a field compared since the model was trained: the shipped m and u
            if field not in m or field not in u:
                m[field], u[field] = dict(shipped.m[field]), dict(shipped.u[field])
        return cls(
            prior=float(data["prior"]),
            m=m,
            u=u,
            family_frequency={k: float(v) for k, v in data["family_frequency"].items()},
            given_frequency={k: float(v) for k, v in data["given_frequency"].items()},
            children=int(data.get("children", 0)),  # models stored before it: any size
        )


def levels_of(a: Features, b: Features) -> tuple[str, ...]:
    """The level of each field (in `comparisons.FIELDS` order) for a pair of records."""
    given = c.given_level(a.given, b.given)
    family = c.family_level(a.family, b.family, a.former_family, b.former_family)
    if family == "else" and c.sikh_name_as_family(a.given, a.family, b.given, b.family):
        family = "part"
    if given == family == "else" and c.names_swapped(a.given, a.family, b.given, b.family):
        given = family = "swapped"
    elif given != c.MISSING and (c.placeholder(a.given) or c.placeholder(b.given)):
        given = c.MISSING  # "Baby" is no name: it says nothing either way
    return (
        given,
        family,
        c.dob_level(a.dob, b.dob),
        c.gender_level(a.gender, b.gender),
        c.postcode_level(a.postcode, b.postcode),
        c.address_level(a.house, a.street, b.house, b.street),
        c.town_level(a.town, b.town),
        c.nhs_level(a.nhs, b.nhs),
        c.carers_level(a.carers, b.carers),
    )


_POSTCODE, _CARERS = c.FIELDS.index("postcode"), c.FIELDS.index("carers")
_weight_of: Callable[[dict[str, float], str], float] = dict.__getitem__


def compare(a: Features, b: Features, model: Model) -> Score:
    """How strongly two records look like the same child: the prior plus one weight per field,
    where exact names are weighted by how rare the name is. Symmetric in `a` and `b`."""
    levels = levels_of(a, b)
    # One C-level lookup a field: this runs for every candidate of every ingested record.
    weights = list(map(_weight_of, model.field_weights, levels))
    if levels[0] == "exact":
        weights[0] = model.exact_weight("given_names", a.given[0])
    if levels[1] == "exact":
        weights[1] = model.exact_weight("family_name", "".join(a.family))
        if c.share_former(a.former_family, b.former_family):
            # The same name now and a former name in common: no weaker than the former name alone
            # (a common name now, "smith", must not make a record match itself less well than a
            # record that bears its rarer former name).
            weights[1] = max(weights[1], model.field_weights[1]["former"])
    if levels[_CARERS] == "name" and levels[_POSTCODE] in c.HOUSEHOLD_POSTCODES:
        # A carer in common says "same household", which the postcode already said (twins and
        # siblings share both): counted only where the address does not say it, after a move.
        weights[_CARERS] = 0.0
    total = model.prior_weight  # added in order, as always (sum() compensates on Python 3.12+)
    for weight in weights:
        total += weight
    return Score(total, levels, tuple(weights))


@cache
def default_model() -> Model:
    """The shipped model: hand-set m and u (`defaults`) and the shipped name frequencies, good
    enough to link English children's records before a registry has trained its own with `em`.
    One instance, so that its weights and name weights are worked out once per process."""
    m: dict[str, dict[str, float]] = {}
    u: dict[str, dict[str, float]] = {}
    for field, levels in c.LEVELS.items():
        given = PARAMETERS[field]
        *named, rest = levels
        m[field] = {level: given[level][0] for level in named}
        u[field] = {level: given[level][1] for level in named}
        m[field][rest] = 1.0 - sum(m[field].values())
        u[field][rest] = 1.0 - sum(u[field].values())
    return Model(
        prior=PRIOR,
        m=m,
        u=u,
        family_frequency=frequencies.FAMILY,
        given_frequency=frequencies.GIVEN,
        children=PRIOR_CHILDREN,
    )
