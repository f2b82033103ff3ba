"""Record linkage for ingestion (Fellegi-Sunter, in the style of splink): pure functions, no I/O.

A new source record's `features_of` are filed under its `blocking_keys`; the records sharing a
key are its candidates; `compare` scores each pair field by field under a `Model`; `decide`
links the record to the best candidate child, sends it for review, or creates a new child.
`estimate` trains a model by expectation-maximisation; `name_frequencies` counts names."""

from __future__ import annotations

from services.records.linkage.blocking import blocking_keys
from services.records.linkage.decide import decide
from services.records.linkage.em import estimate, name_frequencies
from services.records.linkage.features import Features, features_of
from services.records.linkage.model import FieldResult, Model, Score, compare, default_model
from services.records.linkage.verdicts import Action, Also, Candidate, Decision, Thresholds

__all__ = [
    "Action",
    "Also",
    "Candidate",
    "Decision",
    "Features",
    "FieldResult",
    "Model",
    "Score",
    "Thresholds",
    "blocking_keys",
    "compare",
    "decide",
    "default_model",
    "estimate",
    "features_of",
    "name_frequencies",
]
