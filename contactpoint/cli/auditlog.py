"""`contactpoint audit verify` and `contactpoint audit report`."""

from __future__ import annotations

import base64
import json
import os
import pwd
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from contactpoint.platform.convert import timestamp
from contactpoint.platform.errors import ContactPointError, InvalidArgument
from contactpoint.platform.ids import contactpoint_id_problem
from contactpoint.platform.settings import load_settings

if TYPE_CHECKING:
    from contactpoint.platform.checkpoints import Checkpoint
    from services.audit.report import Access
    from services.audit.settings import AuditSettings

# The report's columns, in order: the JSON keys, and the table's headings.
REPORT_KEYS = ("time", "actor", "organisation", "roles", "action", "purpose", "outcome")
PURPOSE_PREFIX = "ACCESS_PURPOSE_"


def _settings(env: Mapping[str, str]) -> AuditSettings:
    """The audit service's settings from `env`, or a one-line message and exit 2."""
    from services.audit.settings import AuditSettings

    try:
        return load_settings(AuditSettings, env)
    except ValidationError as exc:
        problems = ", ".join(
            f"CONTACTPOINT_AUDIT_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()
        )
        typer.echo(f"contactpoint: bad audit configuration: {problems}", err=True)
        raise typer.Exit(2) from None


# A kept checkpoint (a signed note with a few signatures) is far smaller than this.
MAX_CHECKPOINT_BYTES = 64 * 1024


def verify(env: Mapping[str, str], *, as_json: bool, trusted_checkpoint: Path | None = None) -> bool:
    """Recompute the tree from the stored entries and check every signed tree head (and the
    checkpoint in `trusted_checkpoint`, one an auditor kept, when given)."""
    from contactpoint.platform.checkpoints import Checkpoint
    from services.audit.verify_configured import verify_from_settings
    from services.audit.witness_view import witness_view

    trusted = None
    if trusted_checkpoint is not None:
        try:
            # At most a checkpoint's worth (found by probing: /dev/urandom was read for ever).
            with trusted_checkpoint.open("rb") as kept:
                trusted = Checkpoint.parse(kept.read(MAX_CHECKPOINT_BYTES).decode("utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            problem = f"cannot read {trusted_checkpoint} ({type(exc).__name__})"
            raise _fail(f"--trusted-checkpoint: {problem}", 2) from None
        except ValueError as exc:
            raise _fail(f"--trusted-checkpoint: {exc}", 2) from None
    settings = _settings(env)  # a one-line message, not a traceback (found by probing)
    try:
        report = verify_from_settings(settings, trusted, witness_view(env, settings))
    except SQLAlchemyError as exc:  # a malformed URL, a database that is not there
        raise _fail(
            f"the audit database cannot be read ({type(exc).__name__}); nothing was checked", 2
        ) from None
    if as_json:
        typer.echo(json.dumps(asdict(report), default=str))
    elif report.unreadable:
        typer.echo(f"audit log not checked: {report.message}")
    else:
        typer.echo(("audit log intact: " if report.ok else "audit log NOT intact: ") + report.message)
    if report.unreadable:
        raise typer.Exit(2)
    return bool(report.ok)


def operator() -> str:
    """Who is running the command: the name of the process's real user id (or the uid when it has
    none). Not $USER or $LOGNAME, which anyone can set (found by re-probing: `USER=alice
    contactpoint admin suspend …` was logged as alice's)."""
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return f"uid {os.getuid()}"


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"contactpoint: {message}", err=True)
    return typer.Exit(code)


def _witnessed(env: Mapping[str, str], settings: AuditSettings) -> Checkpoint | None:
    """The witness's newest checkpoint, for a command that appends to the log (None when there is
    no witness, or it cannot be read or trusted: the command then goes on, as the service does)."""
    from services.audit.witness_view import witness_view

    return witness_view(env, settings).checkpoint


def check_child(child: str) -> None:
    """A one-line message and exit 2 unless `child` is a valid ContactPoint ID."""
    if problem := contactpoint_id_problem(child):
        raise _fail(f"--child: {problem}", 2)


def report(env: Mapping[str, str], *, child: str, actor: str | None, as_json: bool) -> None:
    """`audit report --child ID`: every recorded access to that child, oldest first. Running it is
    recorded in the log (action AuditReport) before anything is shown: by the OS user, with
    `actor`, if given, named in the detail as whom it was asked for."""
    from services.audit import admin
    from services.audit.events import Reader

    check_child(child)
    reader = Reader(operator(), "", (), uuid.uuid4().hex)
    settings = _settings(env)
    try:
        found = admin.subject_access_report(
            settings,
            contactpoint_id=child,
            reader=reader,
            asked_by=actor,
            witnessed=_witnessed(env, settings),
        )
    except InvalidArgument as exc:
        # The only free input left is whom it was asked for.
        problems = "; ".join(f"{v.field.removeprefix('event.')}: {v.description}" for v in exc.violations)
        raise _fail(problems, 2) from None
    except ContactPointError as exc:
        raise _fail(exc.message, 1) from None
    if as_json:
        typer.echo(json.dumps([_as_json(a) for a in found], ensure_ascii=False))
    elif not found:
        typer.echo(f"no recorded accesses to child {child}")
    else:
        typer.echo(_table([_as_row(a) for a in found]))


def _as_json(access: Access) -> dict[str, object]:
    return {
        "time": timestamp(access.time).ToJsonString(),
        "actor": access.actor,
        "organisation": access.organisation,
        "roles": list(access.roles),
        "action": access.action,
        "purpose": access.purpose,
        "outcome": access.outcome,
    }


def _shown(text: str) -> str:
    # Events stored before text was checked may hold control characters: escaped, never printed.
    return "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in text)


def _as_row(access: Access) -> list[str]:
    purpose = access.purpose.removeprefix(PURPOSE_PREFIX)
    cells = [
        timestamp(access.time).ToJsonString(),
        access.actor,
        access.organisation,
        ",".join(access.roles),
        access.action,
        "-" if purpose == "UNSPECIFIED" else purpose.lower(),
        access.outcome,
    ]
    return [_shown(c) or "-" for c in cells]


def _table(rows: Sequence[Sequence[str]]) -> str:
    headings = [key.upper() for key in REPORT_KEYS]
    widths = [max(len(r[i]) for r in [headings, *rows]) for i in range(len(headings))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [headings, *rows]
    )


def rotate_key(env: Mapping[str, str], lock_dir: Path | None, *, as_json: bool) -> None:
    """`audit rotate-key`: a new signing key for the log, the rotation logged under the old one.
    Refused while `contactpoint up` runs on `lock_dir` (its audit service signs with the old key)."""
    from contactpoint.cli.data_dir import lock_data_dir
    from services.audit.rotation import rotate_signing_key

    lock = lock_data_dir(lock_dir) if lock_dir is not None and lock_dir.is_dir() else None
    if lock_dir is not None and lock_dir.is_dir() and lock is None:
        raise _fail(f"`contactpoint up` is running on {lock_dir.resolve()}: stop it first", 2)
    settings = _settings(env)
    try:
        rotated = rotate_signing_key(settings, witnessed=_witnessed(env, settings))
    except ContactPointError as exc:
        raise _fail(exc.message, 1) from None
    finally:
        if lock is not None:
            os.close(lock)
    new = base64.b64encode(rotated.new_key).decode()
    if as_json:
        old = base64.b64encode(rotated.old_key).decode()
        typer.echo(json.dumps({"old_public_key": old, "public_key": new, "leaf_index": rotated.leaf_index}))
    else:
        typer.echo(
            f"audit log signing key rotated (entry {rotated.leaf_index}); its public key is now {new}: "
            "set CONTACTPOINT_AUDIT_PUBLIC_KEY to it where it is pinned"
        )


def keys(env: Mapping[str, str], *, as_json: bool) -> None:
    """`audit keys`: the public keys to pin, of the log and of its witness, from whichever key
    files are at hand here (the audit container has the log's, the witness's container its own)."""
    from contactpoint.platform.keys import load_or_create_signing_key, raw_public_key

    found: dict[str, str] = {}
    for name, variable in (
        ("CONTACTPOINT_AUDIT_PUBLIC_KEY", "CONTACTPOINT_AUDIT_SIGNING_KEY_FILE"),
        ("CONTACTPOINT_AUDIT_WITNESS_PUBLIC_KEY", "CONTACTPOINT_WITNESS_SIGNING_KEY_FILE"),
    ):
        path = Path(env[variable]) if env.get(variable) else None
        if path is not None and path.exists():
            found[name] = base64.b64encode(raw_public_key(load_or_create_signing_key(path))).decode()
    if not found:
        raise _fail("no audit or witness signing key here (has the service started yet?)", 1)
    if as_json:
        typer.echo(json.dumps(found))
    else:
        for name, value in found.items():
            typer.echo(f"{name}={value}")
