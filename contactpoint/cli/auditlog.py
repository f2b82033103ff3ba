"""`contactpoint audit verify`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict

import typer

from contactpoint.platform.settings import load_settings


def verify(env: Mapping[str, str], *, as_json: bool) -> bool:
    """Recompute the tree from the stored entries and check every signed tree head."""
    from services.audit.settings import AuditSettings
    from services.audit.verify import verify_from_settings

    report = verify_from_settings(load_settings(AuditSettings, env))
    if as_json:
        typer.echo(json.dumps(asdict(report), default=str))
    else:
        typer.echo(("audit log intact: " if report.ok else "audit log NOT intact: ") + report.message)
    return bool(report.ok)
