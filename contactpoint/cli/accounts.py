"""Account administration from the command line, straight on identity's database."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

import typer
from pydantic import ValidationError
from sqlalchemy import Connection

from contactpoint.cli.auditlog import operator
from contactpoint.platform import migrate
from contactpoint.platform.db import Database
from contactpoint.platform.errors import ContactPointError, InvalidArgument
from contactpoint.platform.settings import ConfigurationError, load_settings
from services.identity import domain, operator_log, totp_key
from services.identity.main import MIGRATIONS
from services.identity.settings import IdentitySettings

T = TypeVar("T")
# Roles whose grant is logged as a high-severity event: they read the log, manage accounts, or
# see shielded children's addresses.
PRIVILEGED = frozenset({"admin", "auditor", "shield-override"})


def identity_settings(env: Mapping[str, str]) -> IdentitySettings:
    """Identity's settings from `env`, or a clear message and exit 2."""
    try:
        return load_settings(IdentitySettings, env)
    except ValidationError as exc:
        problems = ", ".join(
            f"CONTACTPOINT_IDENTITY_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()
        )
        typer.echo(f"contactpoint: bad identity configuration: {problems}", err=True)
        raise typer.Exit(2) from None


@dataclass(frozen=True)
class Noted:
    """What a command changes, for the audit log: the action (as the RPC doing the same is
    named), what it was done to and why, and how loudly (`services.identity.operator_log`)."""

    action: str
    detail: str
    severity: str = "WARNING"


def in_identity_db(env: Mapping[str, str], fn: Callable[[Connection], T], *, noted: Noted | None = None) -> T:
    """Run `fn` in one transaction on identity's (migrated) database; domain errors exit 1. A
    change `noted` is written in that transaction for the identity service to put in the audit
    log, as done by the operating-system user running the command."""
    settings = identity_settings(env)
    migrate.upgrade("identity", MIGRATIONS, settings.database_url)
    db = Database(settings.database_url)

    notes: list[int] = []

    def change(conn: Connection) -> T:
        result = fn(conn)
        if noted is not None:
            notes.append(
                operator_log.record(
                    conn, action=noted.action, actor=operator(), detail=noted.detail, severity=noted.severity
                )
            )
        return result

    try:
        result = db.run_sync(change)
        for note in notes:
            # While the suite runs, the change's record is in the audit log before the command
            # returns; otherwise it waits in identity's database for the service's next start.
            waited = operator_log.wait_forwarded(db, note)
            if waited is not True:
                typer.echo(f"contactpoint: note: {waited}", err=True)
        return result
    except ConfigurationError as exc:
        typer.echo(f"contactpoint: {exc}", err=True)
        raise typer.Exit(2) from None
    except InvalidArgument as exc:
        for v in exc.violations:
            typer.echo(f"contactpoint: --{v.field}: {v.description}", err=True)
        raise typer.Exit(1) from None
    except ContactPointError as exc:
        typer.echo(f"contactpoint: {exc.message}", err=True)
        raise typer.Exit(1) from None
    finally:
        db.dispose()


def create_user(
    env: Mapping[str, str], *, username: str, org: str, roles: list[str], password: str
) -> domain.NewUser:
    """`admin create-user`."""
    settings = identity_settings(env)

    def create(conn: Connection) -> domain.NewUser:
        # The secret is sealed with the key the service opens it with, or not at all: configured
        # by environment alone, the key's default path may not be the service's (found by review:
        # a new key was made beside the working directory, and the user's logins were INTERNAL).
        sealer = totp_key.open_totp_sealer(conn, settings.totp_key_path)
        return domain.create_user(
            conn,
            username=username,
            organisation=org,
            roles=roles,
            password=password,
            issuer=settings.totp_issuer,
            sealer=sealer,
        )

    return in_identity_db(
        env,
        create,
        noted=Noted(
            "CreateUser",
            f"account: {username}; organisation: {org}; roles: {', '.join(sorted(roles))}",
            "HIGH" if PRIVILEGED.intersection(roles) else "WARNING",
        ),
    )


def create_service_account(
    env: Mapping[str, str], *, name: str, org: str, role: str
) -> domain.NewServiceAccount:
    """`admin create-service-account`."""
    return in_identity_db(
        env,
        lambda c: domain.create_service_account(c, name=name, organisation=org, role=role),
        noted=Noted("CreateServiceAccount", f"machine account: {name}; organisation: {org}; role: {role}"),
    )


# The suite's own machine accounts, given fresh secrets on every `contactpoint up` (nothing on disk).
SUITE_ORG = "contactpoint"
SUITE_ACCOUNTS = {
    "gateway": "gateway",
    "records": "records-service",
    "identity": "identity-service",
    "audit": "audit-service",
}


def suite_credentials(env: Mapping[str, str], service: str) -> domain.NewServiceAccount:
    """The embedded `service`'s machine account, with a fresh secret for this run."""
    return in_identity_db(
        env,
        lambda c: domain.create_service_account(
            c, name=service, organisation=SUITE_ORG, role=SUITE_ACCOUNTS[service], rotate_if_exists=True
        ),
    )
