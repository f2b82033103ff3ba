"""`contactpoint seed` counts the registry again as it grows it, so that the match model's prior
is scaled for the registry being built (as the records service counts on every model refresh),
not for the empty one it started from; on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from contactpoint.cli import seeding
from contactpoint.cli.embedded import embedded_defaults
from services.records import admin
from services.records.matching import Matcher
from tests.conftest import DatabaseFactory


def test_seed_counts_the_registry_again_as_it_grows(
    databases: DatabaseFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = embedded_defaults(tmp_path / "data")
    if databases.backend == "postgresql":
        env["CONTACTPOINT_RECORDS_DATABASE_URL"] = databases.new("records")
    counts: list[int] = []
    counted = admin.current_matcher

    def counting(db: object, matcher: Matcher) -> Matcher:
        found = counted(db, matcher)  # type: ignore[arg-type]
        counts.append(found.children)
        return found

    monkeypatch.setattr(admin, "current_matcher", counting)
    used: list[int] = []  # the registry size each batch is matched with
    ingest = admin.ingest

    def ingesting(*args: Any, matcher: Matcher, **kwargs: Any) -> Any:
        used.append(matcher.children)
        return ingest(*args, matcher=matcher, **kwargs)

    monkeypatch.setattr(admin, "ingest", ingesting)
    monkeypatch.setattr(seeding, "RECOUNT", 100)
    monkeypatch.setattr(seeding, "BATCH", 20)
    report = seeding.seed(env, children=150, seed_value=4)
    assert report.records > 250
    assert counts[0] == 0  # counted before the first record: empty
    assert len(counts) >= report.records // 100 - 1  # and again every hundred records or so
    assert counts == sorted(counts) and counts[-1] > counts[0]
    assert counts[-1] <= report.children
    # Each new count is the one the following batches are matched with.
    assert used[0] == 0 and set(counts) <= set(used) and used[-1] == counts[-1] > 0
