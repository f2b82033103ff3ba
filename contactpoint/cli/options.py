"""Options and types the command groups share."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Protocol

import typer

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Embedded default: SQLite files and keys here (default ./var)."),
]
# The exit status of a command, or `serve`, that could not use its database.
DATABASE_EXIT = 4


class EnvOf(Protocol):
    """The environment of a command on a service's database: (--data-dir, service) -> variables;
    with `existing`, the service's SQLite database must already be there."""

    def __call__(self, data_dir: Path | None, service: str, *, existing: bool = False) -> dict[str, str]: ...


_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def day_option(option: str, value: str | None, default: Callable[[], dt.date]) -> dt.date:
    """A YYYY-MM-DD option's date (`default()` when not given), or a one-line error and exit 2."""
    try:
        if value is not None and not _ISO_DAY.fullmatch(value):
            raise ValueError(value)  # "", "20261204", "2026-W49-5": ISO, but not the form asked for
        return dt.date.fromisoformat(value) if value is not None else default()
    except ValueError:
        typer.echo(f"contactpoint: {option} must be a date, YYYY-MM-DD (got {value!r})", err=True)
        raise typer.Exit(2) from None
