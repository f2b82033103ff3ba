"""`contactpoint records …`: the records service's own admin functions on its database."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, TypeVar

import typer
from pydantic import ValidationError

from contactpoint.platform import migrate
from contactpoint.platform.db import Database
from contactpoint.platform.settings import load_settings

if TYPE_CHECKING:
    from services.records.admin import TrainReport
    from services.records.lifecycle import LifecycleReport

T = TypeVar("T")


def _with_records_db(env: Mapping[str, str], fn: Callable[[Database], T]) -> T:
    from services.records.main import MIGRATIONS
    from services.records.settings import RecordsSettings

    try:
        settings = load_settings(RecordsSettings, env)
    except ValidationError as exc:
        problems = ", ".join(
            f"CONTACTPOINT_RECORDS_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()
        )
        typer.echo(f"contactpoint: bad records configuration: {problems}", err=True)
        raise typer.Exit(2) from None
    migrate.upgrade("records", MIGRATIONS, settings.database_url)
    db = Database(settings.database_url)
    try:
        return fn(db)
    finally:
        db.dispose()


def lifecycle(env: Mapping[str, str], *, today: str | None) -> LifecycleReport:
    """`records lifecycle`: archive and purge what is due as of `today`."""
    from services.records import admin
    from services.records.children import today_utc

    try:
        day = dt.date.fromisoformat(today) if today else today_utc()
    except ValueError:
        typer.echo(f"contactpoint: --today must be a date, YYYY-MM-DD (got {today!r})", err=True)
        raise typer.Exit(2) from None
    return _with_records_db(env, lambda db: admin.run_lifecycle(db, today=day))


def train(env: Mapping[str, str], *, iterations: int, sample: int, activate: bool) -> TrainReport:
    """`records train-matching`."""
    from services.records import admin

    return _with_records_db(
        env, lambda db: admin.train_matching(db, iterations=iterations, sample=sample, activate=activate)
    )
