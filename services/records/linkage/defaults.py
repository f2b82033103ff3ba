"""Hand-set m and u for English children's records, before a registry has trained its own.

m: of pairs of records of the same child, the share at each level, allowing for typing and OCR
errors, nicknames, moves (about one pair in six) and changes of family name. u: of pairs of
records of different children drawn at random, the share at each level. The "else" levels take
what is left, so that each field's m and u sum to one. Weights, log2(m/u), in bits: given names
exact +8 to +10 by rarity, else -10; family name exact +6 to +10, else -5; date of birth exact
+12.6, one part wrong +2.6, else -11.7; postcode +8.1 / -2.9; NHS number +19.9 / -7.6.

Three deliberate departures from the raw statistics, because the fields are not independent:
- postcode, address and town all say "same household", which siblings and twins share, so
  together they count for less than a date of birth (+11), not the 30 bits the raw u would give;
- given names and date of birth are what tell siblings apart, so their "else" levels are strong
  negatives (two records of one child rarely disagree on either, let alone both);
- a move changes postcode, address and town at once, so only the postcode's "else" is a real
  negative, and a mild one: a moved child still links on names and date of birth."""

from __future__ import annotations

# λ: the chance that a candidate found by blocking is the same child (2^-7, one in 128), in a
# registry of PRIOR_CHILDREN active children, where the default thresholds were chosen
# (`bench/linkage_quality.py`: precision 0.9994 at 20,000 children). A record's keys bring other
# children in proportion to the registry, so in a larger one λ is scaled down in proportion
# (`Model.for_registry`); in a smaller one it is left as it is, which only makes the thresholds
# more cautious there.
PRIOR = 2.0**-7
PRIOR_CHILDREN = 20_000

# field -> level -> (m, u); the "else" level is filled in as 1 - the others.
PARAMETERS: dict[str, dict[str, tuple[float, float]]] = {
    "given_names": {
        "exact": (0.75, 0.003),
        "reordered": (0.05, 0.0008),
        "joined": (0.01, 0.00005),
        "first": (0.02, 0.001),
        "dropped": (0.02, 0.0005),
        "nickname": (0.045, 0.0008),
        "jaro_winkler_0.92": (0.04, 0.003),
        "one_edit": (0.02, 0.001),
        "jaro_winkler_0.85": (0.01, 0.015),
        "phonetic": (0.01, 0.003),
        "initial": (0.018, 0.003),
        "middle": (0.003, 0.0003),
        "swapped": (0.003, 0.00001),
    },
    "family_name": {
        "exact": (0.847, 0.001),
        "former": (0.03, 0.00005),
        "part": (0.02, 0.0003),
        "jaro_winkler_0.92": (0.04, 0.002),
        "one_edit": (0.015, 0.0005),
        "jaro_winkler_0.85": (0.01, 0.008),
        "phonetic": (0.005, 0.003),
        "swapped": (0.003, 0.00001),
    },
    "date_of_birth": {
        "exact": (0.93, 0.00015),
        "day_month_swapped": (0.015, 0.00005),
        "one_part": (0.0547, 0.009),
    },
    "gender": {"same": (0.98, 0.5)},
    "postcode": {
        "full": (0.80, 0.003),
        "sector": (0.03, 0.003),
        "near": (0.01, 0.001),
        "district": (0.03, 0.01),
    },
    "address": {
        "house_street": (0.55, 0.12),
        "street": (0.10, 0.05),
    },
    "town": {"same": (0.75, 0.5)},
    "nhs_number": {"same": (0.995, 0.000001)},
    # A carer named alike on both records says "same household", like an address, and siblings
    # share it (so it counts only after a move: `model.compare`); one system may name the mother,
    # another the father or a foster carer, so no carer in common is only a mild negative.
    "carers": {"name": (0.70, 0.09)},
}
