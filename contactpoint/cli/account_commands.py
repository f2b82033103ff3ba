"""`contactpoint admin suspend|reinstate|set-password|rotate-secret|disable-service-account|
enable-service-account`: the platform operator's account chores, run on identity's database
through identity's own administration functions (an administrator in an organisation uses
identity's SuspendAccount, ReinstateAccount and ResetTotp instead, which are scoped). Each change
is audited: written with the change, and put in the audit log by the identity service
(`services.identity.operator_log`)."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Annotated

import typer

from contactpoint.cli.options import DataDir, EnvOf
from services.identity import administration, password_change


def register(admin: typer.Typer, command_env: EnvOf) -> None:
    """Add the account chores to the `admin` command group."""
    from contactpoint.cli.accounts import Noted, in_identity_db

    @admin.command("suspend")
    def suspend(
        username: Annotated[str, typer.Option("--username")],
        reason: Annotated[str, typer.Option("--reason")],
        data_dir: DataDir = None,
    ) -> None:
        """Suspend a person: their tokens stop working within 2 s and they cannot log in."""
        env = command_env(data_dir, "identity")
        in_identity_db(
            env,
            lambda c: administration.suspend(c, username=username, reason=reason, scope=None),
            noted=Noted("SuspendAccount", f"account: {username}; reason: {reason}"),
        )
        typer.echo(f"suspended {username}")

    @admin.command("reinstate")
    def reinstate(
        username: Annotated[str, typer.Option("--username")],
        reason: Annotated[str, typer.Option("--reason")],
        data_dir: DataDir = None,
    ) -> None:
        """Lift a person's suspension or lockout (they log in again; old tokens stay dead)."""
        env = command_env(data_dir, "identity")
        in_identity_db(
            env,
            lambda c: administration.reinstate(c, username=username, reason=reason, scope=None),
            noted=Noted("ReinstateAccount", f"account: {username}; reason: {reason}"),
        )
        typer.echo(f"reinstated {username}")

    @admin.command("set-password")
    def set_password(
        username: Annotated[str, typer.Option("--username")],
        reason: Annotated[str, typer.Option("--reason")],
        password_stdin: Annotated[
            bool, typer.Option("--password-stdin", help="Read the new password from stdin.")
        ] = False,
        data_dir: DataDir = None,
    ) -> None:
        """Give a person who has forgotten their password a new one (they change it themselves
        next, with IdentityService.ChangePassword); their tokens stop working within 2 s and a
        lockout is lifted."""
        if not password_stdin:
            typer.echo("contactpoint: the password is read from stdin: pass --password-stdin", err=True)
            raise typer.Exit(2)
        password = sys.stdin.readline().rstrip("\r\n")
        env = command_env(data_dir, "identity")
        in_identity_db(
            env,
            lambda c: password_change.set_password(
                c, username=username, password=password, reason=reason, now=datetime.now(UTC)
            ),
            noted=Noted("SetPassword", f"account: {username}; reason: {reason}"),
        )
        typer.echo(f"set a new password for {username}")

    @admin.command("rotate-secret")
    def rotate_secret(
        name: Annotated[str, typer.Option("--name", help="The machine account's name.")],
        as_json: Annotated[bool, typer.Option("--json")] = False,
        keep_tokens: Annotated[
            bool,
            typer.Option(
                "--keep-tokens",
                help="Let tokens already issued run out (planned rotation); by default they stop within 2 s.",
            ),
        ] = False,
        data_dir: DataDir = None,
    ) -> None:
        """Give a machine account a new client secret; the old one stops working at once, and the
        tokens issued with it within 2 s (unless --keep-tokens)."""
        env = command_env(data_dir, "identity")
        new = in_identity_db(
            env,
            lambda c: administration.rotate_service_secret(c, name=name, end_tokens=not keep_tokens),
            noted=Noted(
                "RotateServiceSecret",
                f"machine account: {name}; tokens {'kept' if keep_tokens else 'ended'}",
            ),
        )
        if as_json:
            typer.echo(json.dumps({"client_id": new.client_id, "client_secret": new.client_secret}))
        else:
            typer.echo(
                f"client_id: {new.client_id}\nclient_secret: {new.client_secret}\n"
                "(the secret is shown once; store it now)"
            )

    @admin.command("disable-service-account")
    def disable(name: Annotated[str, typer.Option("--name")], data_dir: DataDir = None) -> None:
        """Disable a machine account: its tokens stop working within 2 s and it gets no new ones."""
        env = command_env(data_dir, "identity")
        in_identity_db(
            env,
            lambda c: administration.set_service_account_disabled(c, name=name, disabled=True),
            noted=Noted("DisableServiceAccount", f"machine account: {name}"),
        )
        typer.echo(f"disabled {name}")

    @admin.command("enable-service-account")
    def enable(name: Annotated[str, typer.Option("--name")], data_dir: DataDir = None) -> None:
        """Enable a disabled machine account again (tokens from before it was disabled stay dead)."""
        env = command_env(data_dir, "identity")
        in_identity_db(
            env,
            lambda c: administration.set_service_account_disabled(c, name=name, disabled=False),
            noted=Noted("EnableServiceAccount", f"machine account: {name}"),
        )
        typer.echo(f"enabled {name}")


def register_key_rotation(admin: typer.Typer, command_env: EnvOf) -> None:
    """Add `admin rotate-signing-key` to the `admin` command group."""
    from contactpoint.cli.accounts import Noted, identity_settings, in_identity_db
    from services.identity import repository, signing_keys

    @admin.command("rotate-signing-key")
    def rotate_signing_key(
        as_json: Annotated[bool, typer.Option("--json")] = False, data_dir: DataDir = None
    ) -> None:
        """Sign new tokens with a new key; the old key still verifies until its tokens expire."""
        env = command_env(data_dir, "identity")
        path = identity_settings(env).signing_key_file
        old, new = signing_keys.rotate(path)
        # Tell every verifier to fetch the keys again now.
        in_identity_db(
            env, repository.bump_version, noted=Noted("RotateSigningKey", f"new key {new}; retired {old}")
        )
        if as_json:
            typer.echo(json.dumps({"retired_key_id": old, "key_id": new}))
        else:
            typer.echo(f"new signing key {new}; {old} verifies until the tokens it signed expire")
