"""Options and types the command groups share."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Embedded default: SQLite files and keys here (default ./var)."),
]
# The environment of a command on a service's database: (--data-dir, service) -> variables.
EnvOf = Callable[[Path | None, str], dict[str, str]]
