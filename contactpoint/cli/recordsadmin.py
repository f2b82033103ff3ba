"""`contactpoint records …`: the records service's own admin functions on its database."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, TypeVar

import typer
from pydantic import ValidationError

from contactpoint.cli.options import day_option
from contactpoint.platform import migrate
from contactpoint.platform.db import Database
from contactpoint.platform.errors import ContactPointError
from contactpoint.platform.settings import ConfigurationError, load_settings

if TYPE_CHECKING:
    from services.records.admin import TrainReport
    from services.records.data_keys import KeyStatus
    from services.records.lifecycle import LifecycleReport
    from services.records.settings import RecordsSettings

T = TypeVar("T")


def _records_settings(env: Mapping[str, str]) -> RecordsSettings:
    from services.records.settings import RecordsSettings

    try:
        settings = load_settings(RecordsSettings, env)
    except ValidationError as exc:
        problems = ", ".join(
            f"CONTACTPOINT_RECORDS_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()
        )
        typer.echo(f"contactpoint: bad records configuration: {problems}", err=True)
        raise typer.Exit(2) from None
    return settings


def _with_records_db(env: Mapping[str, str], fn: Callable[[Database], T]) -> T:
    from services.records.main import MIGRATIONS

    settings = _records_settings(env)
    migrate.upgrade("records", MIGRATIONS, settings.database_url)
    from services.records import admin

    try:
        db = admin.open_database(settings)
    except ConfigurationError as exc:
        typer.echo(f"contactpoint: {exc}", err=True)
        raise typer.Exit(2) from None
    try:
        return fn(db)
    except ContactPointError as exc:  # the database busy or down: one line, never a traceback
        typer.echo(f"contactpoint: {exc.message}", err=True)
        raise typer.Exit(1) from None
    finally:
        db.dispose()


# The earliest date `records lifecycle --today` runs as of (no child on the register was born before).
EARLIEST_TODAY = dt.date(1900, 1, 1)


def lifecycle(env: Mapping[str, str], *, today: str | None, dry_run: bool = False) -> LifecycleReport:
    """`records lifecycle`: archive and purge what is due as of `today`."""
    from services.records import admin
    from services.records.values import today_in_england

    day = day_option("--today", today, today_in_england)
    if day < EARLIEST_TODAY:
        # The purge looks six years back from it: year 1 has no six years before it.
        typer.echo(
            f"contactpoint: --today must be {EARLIEST_TODAY.isoformat()} or later (got {today!r})", err=True
        )
        raise typer.Exit(2)
    from services.records.model import AgeLimits

    ahead = (day - today_in_england()).days
    if ahead > 0 and not dry_run:
        # Archiving cannot be undone: a mistyped year archives every child that date would.
        typer.echo(
            f"contactpoint: running as of {day.isoformat()}, {ahead} days ahead of today; what this "
            "archives stays archived (--dry-run counts it first)",
            err=True,
        )
    settings = _records_settings(env)
    limits = AgeLimits(settings.max_age_years, settings.extended_max_age_years)
    return _with_records_db(
        env, lambda db: admin.run_lifecycle(db, today=day, limits=limits, dry_run=dry_run)
    )


def train(env: Mapping[str, str], *, iterations: int, sample: int, activate: bool) -> TrainReport:
    """`records train-matching`."""
    from services.records import admin

    return _with_records_db(
        env, lambda db: admin.train_matching(db, iterations=iterations, sample=sample, activate=activate)
    )


def data_keys_status(env: Mapping[str, str]) -> KeyStatus:
    """`records data-keys`: the key ring, and how many rows each key seals."""
    from services.records import admin

    return _with_records_db(env, admin.data_key_status)


def rotate_data_key(env: Mapping[str, str], *, standby: bool) -> int:
    """`records rotate-data-key`: a new seal key in the key file; its id."""
    from services.records import admin

    settings = _records_settings(env)
    try:
        return admin.rotate_data_key(settings, standby=standby)
    except ConfigurationError as exc:
        typer.echo(f"contactpoint: {exc}", err=True)
        raise typer.Exit(2) from None


def retire_data_key(env: Mapping[str, str], key_id: int) -> None:
    """`records retire-data-key ID`: drop a seal key no row is sealed with any more."""
    from services.records import admin

    settings = _records_settings(env)

    def retire(db: Database) -> None:
        try:
            admin.retire_data_key(db, settings, key_id)
        except ConfigurationError as exc:
            typer.echo(f"contactpoint: {exc}", err=True)
            raise typer.Exit(1) from None

    _with_records_db(env, retire)
