"""Records' matching settings: thresholds in order, and the matcher built from them."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from services.records.admin import configured_matcher
from tests.services.records.conftest import offline_settings


def test_the_same_source_threshold_is_unset_by_default(tmp_path: Path) -> None:
    settings = offline_settings("sqlite://", tmp_path / "keys")
    assert settings.match_same_source_link_threshold is None
    assert configured_matcher(settings).thresholds.same_source is None


@pytest.mark.parametrize(("value", "threshold"), [("20", 20.0), ("", None), ("  ", None)])
def test_the_same_source_threshold_reaches_the_matcher(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str, threshold: float | None
) -> None:
    monkeypatch.setenv("CONTACTPOINT_RECORDS_MATCH_SAME_SOURCE_LINK_THRESHOLD", value)
    settings = offline_settings("sqlite://", tmp_path / "keys")
    assert configured_matcher(settings).thresholds.same_source == threshold


@pytest.mark.parametrize(
    "overrides",
    [
        {"match_review_threshold": 12.0, "match_link_threshold": 11.0},
        {"match_same_source_link_threshold": 10.0},  # below the link threshold of 11
        {"match_same_source_link_threshold": float("nan")},  # never reached, and nothing would say so
        {"match_same_source_link_threshold": float("inf")},
    ],
)
def test_thresholds_out_of_order_are_refused(tmp_path: Path, overrides: dict[str, float]) -> None:
    with pytest.raises(ValidationError):
        offline_settings("sqlite://", tmp_path / "keys", **overrides)
