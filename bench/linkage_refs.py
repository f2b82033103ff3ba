"""The batch references for `linkage_quality.py`: the source records flattened into one table, and
two offline Fellegi-Sunter deduplications of it with parameters estimated by EM, each configured
as its documentation recommends: splink (DuckDB) and recordlinkage (ECMClassifier).

Both see the same cleaned columns (case, accents and punctuation removed, postcodes in one
format, phonetic codes precomputed) and end in connected components of their predicted links,
so that their output is a clustering like the registry's. Each returns one cluster label per row."""

from __future__ import annotations

import logging
import re
import time
import unicodedata
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import jellyfish

from contactpoint.records.v1 import records_service_pb2 as records_pb

_NOT_LETTER = re.compile(r"[^a-z ]+")
_SEPARATOR = re.compile(r"[\s\-\u2010-\u2015]+")
_NUMBERED = re.compile(r"^\s*(\d+[A-Za-z]?)\s+(.*\S)")
GENDERS = {1: "m", 2: "f"}  # child_pb2.GENDER_MALE, GENDER_FEMALE; anything else is unknown


def _fold(value: str) -> str:
    decomposed = unicodedata.normalize("NFKD", value.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def name_tokens(value: str) -> list[str]:
    """Each part of a name, lower case, without accents or punctuation: "Mary-Jane O'Neil" →
    mary, jane, oneil."""
    return [t for part in _SEPARATOR.split(_fold(value)) if (t := _NOT_LETTER.sub("", part))]


def family_key(value: str) -> str | None:
    """A family name as one token: "Smith-Jones", "SMITH JONES" → smithjones."""
    return "".join(name_tokens(value)) or None


def postcode_parts(value: str) -> tuple[str | None, str | None, str | None]:
    """The postcode as "AB1 2CD", its sector ("AB1 2") and its district ("AB1")."""
    compact = "".join(value.split()).upper()
    if len(compact) < 5:
        return None, None, None
    outward, inward = compact[:-3], compact[-3:]
    return f"{outward} {inward}", f"{outward} {inward[0]}", outward


def flatten(records: Iterable[records_pb.SourceRecord]) -> list[dict[str, Any]]:
    """One row per source record, cleaned; `unique_id` is the record's position."""
    rows: list[dict[str, Any]] = []
    for i, r in enumerate(records):
        given = name_tokens(r.name.given_names)
        family = family_key(r.name.family_name)
        former = sorted({k for n in r.former_names if (k := family_key(n.family_name)) and k != family})
        d = r.date_of_birth
        dob = f"{d.year:04d}-{d.month:02d}-{d.day:02d}"
        postcode, sector, district = postcode_parts(r.address.postcode)
        number = street = None
        for line in r.address.lines:  # the numbered line is the street; "Flat 2" is not
            if (m := _NUMBERED.match(line)) and not line.lower().startswith(("flat", "apartment")):
                number, street = m.group(1).upper(), " ".join(name_tokens(m.group(2))) or None
        first = given[0] if given else None
        rows.append(
            {
                "unique_id": i,
                "first_given": first,
                "given_names": " ".join(given) or None,
                "given_tokens": given,
                "family_name": family,
                "family_all": ([family] if family else []) + former,
                "former_family": " ".join(former) or None,
                "first_given_dm": [jellyfish.metaphone(first)] if first else [],
                "family_dm": [jellyfish.metaphone(family)] if family else [],
                "family_soundex": jellyfish.soundex(family) if family else None,
                "dob": dob,
                "birth_year": f"{d.year:04d}",
                "birth_month": f"{d.month:02d}",
                "birth_day": f"{d.day:02d}",
                "gender": GENDERS.get(int(r.gender)),
                "postcode": postcode,
                "postcode_sector": sector,
                "postcode_district": district,
                "house_number": number,
                "street": street,
                "address": f"{number} {street}" if number and street else street,
                "town": " ".join(name_tokens(r.address.town)) or None,
                "nhs": "".join(ch for ch in r.nhs_number if ch.isdigit()) or None,
            }
        )
    return rows


@dataclass(frozen=True)
class RefResult:
    """One reference's clustering (a label per row), its wall time and how it was configured."""

    labels: list[int]
    seconds: float
    note: str


def components(n: int, edges: Iterable[tuple[int, int]]) -> list[int]:
    """Connected components of rows 0..n-1 under `edges`: the smallest row of each as its label."""
    parent = list(range(n))

    def root(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return [root(x) for x in range(n)]


def run_splink(rows: Sequence[dict[str, Any]], *, thresholds: Sequence[float], seed: int) -> list[RefResult]:
    """splink 5 on DuckDB: blocking rules on dob, postcode + year, phonetic family name + year,
    names + year, NHS number; comparison-library comparisons with term-frequency adjustments on
    names; λ from deterministic rules, u by random sampling, m by EM on two blocking rules; predict,
    then connected components at each match probability of `thresholds` (one result each; the
    seconds of each include training and prediction, done once)."""
    import pandas as pd
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    started = time.perf_counter()
    for name in ("splink", "duckdb"):
        logging.getLogger(name).setLevel(logging.ERROR)

    def name_levels(col: str, dm: str, extra: list[Any]) -> list[Any]:
        return [
            cll.NullLevel(col),
            cll.ExactMatchLevel(col).configure(tf_adjustment_column=col),
            cll.JaroWinklerLevel(col, 0.92),
            cll.JaroWinklerLevel(col, 0.88),
            cll.ArrayIntersectLevel(dm, 1).configure(label_for_charts=f"metaphone of {col}"),
            *extra,
            cll.JaroWinklerLevel(col, 0.7),
            cll.ElseLevel(),
        ]

    comparisons = [
        cl.CustomComparison(
            name_levels(
                "first_given",
                "first_given_dm",
                [
                    cll.ArrayIntersectLevel("given_tokens", 1).configure(
                        label_for_charts="a given name shared"
                    )
                ],
            ),
            output_column_name="first_given",
        ),
        cl.CustomComparison(
            name_levels(
                "family_name",
                "family_dm",
                [cll.ArrayIntersectLevel("family_all", 1).configure(label_for_charts="a former family name")],
            ),
            output_column_name="family_name",
        ),
        cl.CustomComparison(
            [
                cll.NullLevel("dob"),
                cll.ExactMatchLevel("dob"),
                cll.CustomLevel(
                    "birth_year_l = birth_year_r"
                    " AND birth_month_l = birth_day_r AND birth_day_l = birth_month_r",
                    label_for_charts="day and month swapped",
                ),
                cll.LevenshteinLevel("dob", 1),
                cll.AbsoluteDateDifferenceLevel("dob", threshold=1, metric="month", input_is_string=True),
                cll.AbsoluteDateDifferenceLevel("dob", threshold=1, metric="year", input_is_string=True),
                cll.ElseLevel(),
            ],
            output_column_name="dob",
        ),
        cl.ExactMatch("gender"),
        cl.PostcodeComparison("postcode"),
        cl.CustomComparison(
            [
                cll.NullLevel("street"),
                cll.And(cll.ExactMatchLevel("street"), cll.ExactMatchLevel("house_number")),
                cll.ExactMatchLevel("street"),
                cll.JaroWinklerLevel("street", 0.9),
                cll.ElseLevel(),
            ],
            output_column_name="street",
        ),
        cl.ExactMatch("nhs"),
    ]
    settings = SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        blocking_rules_to_generate_predictions=[
            block_on("dob"),
            block_on("postcode", "birth_year"),
            block_on("family_soundex", "birth_year"),
            block_on("first_given", "family_name"),
            block_on("first_given", "birth_year", "birth_month"),
            block_on("nhs"),
        ],
        comparisons=comparisons,
        retain_intermediate_calculation_columns=False,
    )
    db_api = DuckDBAPI()
    table = db_api.register(pd.DataFrame(list(rows)), table_name="records")
    linker = Linker(table, settings, log_level=None)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("first_given", "family_name", "dob"), block_on("nhs", "dob")], recall=0.7
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=1e7, seed=seed)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("dob"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("first_given", "family_name"))
    predictions = linker.inference.predict(threshold_match_probability=0.2, warning_mode="never")
    trained = time.perf_counter() - started
    results = []
    for threshold in thresholds:
        clustering = time.perf_counter()
        clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
            predictions, threshold_match_probability=threshold
        ).as_pandas_dataframe()
        by_id = dict(zip(clusters["unique_id"].astype(int), clusters["cluster_id"].astype(str), strict=True))
        index: dict[str, int] = {}
        labels = [index.setdefault(by_id[i], len(index)) for i in range(len(rows))]
        seconds = trained + time.perf_counter() - clustering
        results.append(RefResult(labels, seconds, f"connected components at match probability ≥ {threshold}"))
    return results


def run_recordlinkage(rows: Sequence[dict[str, Any]]) -> RefResult:
    """recordlinkage 0.16: a union of blocks (dob, postcode + year, soundex of the family name +
    year, names, NHS number); binary comparison features (Jaro-Winkler ≥ 0.85 on names and the
    street, exact on gender, postcode and NHS number, the date exact or day/month swapped, the
    date's string within one edit); ECMClassifier (EM Fellegi-Sunter); connected components."""
    import pandas as pd
    import recordlinkage

    started = time.perf_counter()
    df = pd.DataFrame(list(rows)).set_index("unique_id")
    df["dob_date"] = pd.to_datetime(df["dob"], format="%Y-%m-%d")
    indexer = recordlinkage.Index()
    indexer.block("dob")
    indexer.block(["postcode", "birth_year"])
    indexer.block(["family_soundex", "birth_year"])
    indexer.block(["first_given", "family_name"])
    indexer.block("nhs")
    pairs = indexer.index(df)
    compare = recordlinkage.Compare()
    compare.string("first_given", "first_given", method="jarowinkler", threshold=0.85, label="first_given")
    compare.string("family_name", "family_name", method="jarowinkler", threshold=0.85, label="family")
    compare.date("dob_date", "dob_date", label="dob")
    compare.string("dob", "dob", method="levenshtein", threshold=0.85, label="dob_close")
    compare.exact("gender", "gender", label="gender")
    compare.exact("postcode", "postcode", label="postcode")
    compare.string("address", "address", method="jarowinkler", threshold=0.85, label="address")
    compare.exact("nhs", "nhs", label="nhs")
    with warnings.catch_warnings():  # its date feature writes 0.5 into an int64 column
        warnings.simplefilter("ignore", FutureWarning)
        features = compare.compute(pairs, df)
    features["dob"] = (features["dob"] >= 0.5).astype(int)  # exact, or day and month swapped
    features = features.astype(int)
    classifier = recordlinkage.ECMClassifier()
    links = classifier.fit_predict(features)
    edges = [(int(a), int(b)) for a, b in links]
    labels = components(len(rows), edges)
    note = f"{len(pairs):,} candidate pairs, {len(links):,} links"
    return RefResult(labels, time.perf_counter() - started, note)
