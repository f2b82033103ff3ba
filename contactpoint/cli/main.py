"""The `contactpoint` command (CONTRACT.md §1)."""

from __future__ import annotations

import json
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from contactpoint.cli import embedded
from contactpoint.cli.embedded import DEFAULT_BASE_PORT, PORTS_USED
from contactpoint.cli.options import DATABASE_EXIT, DataDir

app = typer.Typer(
    help="ContactPoint: the national registry of contact details for children.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # a traceback's locals may hold a record or a secret
)
admin = typer.Typer(help="Manage accounts (identity's database).", no_args_is_help=True)
audit = typer.Typer(help="Check the audit log.", no_args_is_help=True)
records = typer.Typer(help="Run the records service's own jobs (lifecycle, matching).", no_args_is_help=True)
app.add_typer(admin, name="admin")
app.add_typer(audit, name="audit")
app.add_typer(records, name="records")


def command_env(data_dir: Path | None, service: str, *, existing: bool = False) -> dict[str, str]:
    """The environment of a command on `service`'s database (`--data-dir` beneath os.environ);
    a one-line message and exit 2 where there is no suite's data (it would create an empty one),
    or, with `existing`, no database yet (`embedded.command_env`)."""
    try:
        return embedded.command_env(os.environ, data_dir, service, existing=existing)
    except embedded.NoEmbeddedDatabase as exc:
        typer.echo(f"contactpoint: {exc}", err=True)
        raise typer.Exit(2) from None


class Service(StrEnum):
    """The four services, and the audit log's witness."""

    identity = "identity"
    records = "records"
    audit = "audit"
    gateway = "gateway"
    witness = "witness"


def fail(message: str, code: int = 1) -> None:
    """Print `message` to stderr and exit with `code`."""
    typer.echo(f"contactpoint: {message}", err=True)
    raise typer.Exit(code)


@app.command()
def serve(service: Service) -> None:
    """Start one service, configured from environment variables only."""
    from contactpoint.cli.launch import run_one

    run_one(service.value, dict(os.environ))


@app.command()
def up(
    data_dir: Annotated[Path, typer.Option("--data-dir", help="Where SQLite files and keys live.")] = Path(
        "var"
    ),
    base_port: Annotated[
        int,
        typer.Option(
            "--base-port",
            min=1024,
            max=65535 - PORTS_USED,
            help="Gateway port; identity, records and audit follow (metrics up to base + 9, where they fit).",
        ),
    ] = DEFAULT_BASE_PORT,
) -> None:
    """Start identity, records, audit and gateway as four processes on the embedded default."""
    from contactpoint.cli.launch import run_suite

    raise typer.Exit(run_suite(data_dir, base_port, dict(os.environ)))


@admin.command("create-user")
def create_user(
    username: Annotated[str, typer.Option("--username")],
    org: Annotated[str, typer.Option("--org")],
    role: Annotated[list[str], typer.Option("--role", help="Repeat for several roles.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    data_dir: DataDir = None,
) -> None:
    """Create a person's account; prints the TOTP secret and otpauth:// URI."""
    from contactpoint.cli import accounts

    if not password_stdin:
        fail("the password is read from stdin: pass --password-stdin")
    env = command_env(data_dir, "identity")
    password = sys.stdin.readline().rstrip("\r\n")
    user = accounts.create_user(env, username=username, org=org, roles=role, password=password)
    if as_json:
        typer.echo(
            json.dumps(
                {"username": user.username, "totp_secret": user.totp_secret, "otpauth_uri": user.otpauth_uri}
            )
        )
    else:
        typer.echo(f"created {user.username}\nTOTP secret: {user.totp_secret}\n{user.otpauth_uri}")


@admin.command("create-service-account")
def create_service_account(
    name: Annotated[str, typer.Option("--name")],
    org: Annotated[str, typer.Option("--org")],
    role: Annotated[str, typer.Option("--role")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
    data_dir: DataDir = None,
) -> None:
    """Create a machine account; the secret is shown once and stored only as a hash."""
    from contactpoint.cli import accounts

    env = command_env(data_dir, "identity")
    account = accounts.create_service_account(env, name=name, org=org, role=role)
    if as_json:
        typer.echo(json.dumps({"client_id": account.client_id, "client_secret": account.client_secret}))
    else:
        typer.echo(
            f"client_id: {account.client_id}\nclient_secret: {account.client_secret}\n"
            "(the secret is shown once; store it now)"
        )


@app.command("seed")
def seed_command(
    children: Annotated[int, typer.Option("--children", min=1, max=2_000_000, help="How many children.")],
    seed: Annotated[
        int, typer.Option("--seed", help="Random seed: the same seed and day give the same records.")
    ] = 1,
    today: Annotated[
        str | None,
        typer.Option(
            "--today",
            help="Make the feeds as of this date (YYYY-MM-DD, not after today; default: today): "
            "ages, moves and renamings are counted back from it.",
        ),
    ] = None,
    truth: Annotated[
        Path | None,
        typer.Option("--truth", help="Write which source records are the same child (CSV) to this file."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The report as one JSON object.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Feed synthetic children from several councils' systems through the real ingestion path
    (no real person's data), and report what matching made of them."""
    from contactpoint.cli import seeding

    report = seeding.seed(
        command_env(data_dir, "records"), children=children, seed_value=seed, truth=truth, today=today
    )
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "records": report.records,
                    "children": report.children,
                    "seconds": round(report.seconds, 2),
                    **{k.lower(): v for k, v in sorted(report.outcomes.items())},
                }
            )
        )
    else:
        counts = ", ".join(f"{name.lower()}: {count}" for name, count in sorted(report.outcomes.items()))
        typer.echo(
            f"{report.records} source records in {report.seconds:.1f} s ({counts}); "
            f"the registry holds {report.children} children"
        )
    if report.reused:
        # Found by probing: the same seed on another day made other children under the same
        # record ids, and the registry refused them all, with no word of why.
        typer.echo(
            f"contactpoint seed: {report.reused} records' ids are held for other children: an "
            f"earlier seed with --seed {seed} was made as of another day; pass that day as "
            "--today, or another --seed",
            err=True,
        )
    if any(name.startswith("rejected") for name in report.outcomes):
        raise typer.Exit(1)


@audit.command("verify")
def audit_verify(
    as_json: Annotated[bool, typer.Option("--json")] = False,
    trusted_checkpoint: Annotated[
        Path | None,
        typer.Option(
            "--trusted-checkpoint",
            help="A checkpoint kept outside the log (GetTreeHead's checkpoint text): the log must "
            "still hold its entries, unchanged.",
        ),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Recompute the audit log's Merkle tree and check every signed tree head."""
    from contactpoint.cli import auditlog

    env = command_env(data_dir, "audit", existing=True)
    ok = auditlog.verify(env, as_json=as_json, trusted_checkpoint=trusted_checkpoint)
    raise typer.Exit(0 if ok else 1)


@audit.command("rotate-key")
def audit_rotate_key(
    as_json: Annotated[bool, typer.Option("--json")] = False,
    audit_stopped: Annotated[
        bool,
        typer.Option(
            "--audit-stopped",
            help="Say that every audit service on this database is stopped (required when the "
            "database is not the embedded default, whose `up` lock is checked instead).",
        ),
    ] = False,
    data_dir: DataDir = None,
) -> None:
    """Give the audit log a new signing key; the rotation is an entry of the log, signed with the
    old key and endorsed by the new one, that its witness and `audit verify` follow. Run it with
    the audit service stopped: a running one would go on signing with the old key."""
    from contactpoint.cli import auditlog

    env = command_env(data_dir, "audit")
    on_embedded = "CONTACTPOINT_AUDIT_DATABASE_URL" not in os.environ
    if not on_embedded and not audit_stopped:
        fail("stop every audit service on this database first, then run this with --audit-stopped", 2)
    embedded_dir = (data_dir or embedded.DEFAULT_DATA_DIR) if on_embedded else None
    auditlog.rotate_key(env, embedded_dir, as_json=as_json)


@audit.command("keys")
def audit_keys(as_json: Annotated[bool, typer.Option("--json")] = False, data_dir: DataDir = None) -> None:
    """Print the public keys to pin: the audit log's and its witness's (those whose key files are here)."""
    from contactpoint.cli import auditlog

    auditlog.keys(embedded.layered_env(os.environ, data_dir), as_json=as_json)


@audit.command("report")
def audit_report(
    child: Annotated[str, typer.Option("--child", help="The child's ContactPoint ID.")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array of accesses.")] = False,
    actor: Annotated[
        str | None,
        typer.Option(
            "--actor",
            help="Whom the report is for, recorded in the log's detail (the actor recorded is the OS user).",
        ),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Subject-access report: every recorded access to one child, oldest first. Running it is
    itself recorded in the audit log."""
    from contactpoint.cli import auditlog

    auditlog.check_child(child)  # a mistyped id is named before anything else is looked at
    auditlog.report(command_env(data_dir, "audit", existing=True), child=child, actor=actor, as_json=as_json)


def _register_account_chores() -> None:
    from contactpoint.cli.account_commands import register, register_key_rotation

    register(admin, command_env)
    register_key_rotation(admin, command_env)


def _register_records_jobs() -> None:
    from contactpoint.cli.records_commands import register

    register(records, command_env)


def _register_tls() -> None:
    from contactpoint.cli.tls_commands import register

    register(app)


_register_account_chores()
_register_records_jobs()
_register_tls()


def unexpected(exc: BaseException) -> str:
    """One line for an error no command expected: its type and where it was raised, never its
    message or a traceback's locals (either may quote a record or a secret)."""
    import traceback

    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    return f"unexpected {type(exc).__name__}{where} (a fault in ContactPoint; its message is not shown)"


def run() -> None:
    """The `contactpoint` command: `app`, with a mistyped or missing option said in one line
    (`contactpoint: Missing option '--reason'. (see contactpoint admin suspend --help)`, exit 2)
    rather than a box of usage."""
    from typer.exceptions import TyperException

    try:
        code = app(standalone_mode=False)
    except TyperException as exc:  # a usage error (exit 2), or another the command line raised
        ctx = getattr(exc, "ctx", None)
        hint = f" (see {ctx.command_path} --help)" if ctx is not None else ""
        if message := exc.format_message():  # none when the help was shown for no arguments
            typer.echo(f"contactpoint: {message}{hint}", err=True)
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.echo("contactpoint: aborted", err=True)
        sys.exit(1)
    except Exception as exc:  # a bug: one line, where it happened, and nothing it held
        from sqlalchemy.exc import InterfaceError, OperationalError

        if isinstance(exc, OperationalError | InterfaceError):
            # The database down or refusing connections, met before a command's own handling
            # (its migrations, say): the operator's problem, said as `serve` says it (found by
            # probing: it was called a fault in ContactPoint).
            from contactpoint.platform.db import failure_line

            typer.echo(f"contactpoint: cannot use the database: {failure_line(exc)}", err=True)
            sys.exit(DATABASE_EXIT)
        typer.echo(f"contactpoint: {unexpected(exc)}", err=True)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
