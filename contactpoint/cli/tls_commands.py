"""`contactpoint tls make-local-ca` and `contactpoint health`: certificates for running the suite
with TLS where no real CA is at hand (docker-compose on one host), and the health check that works
whether a service speaks plaintext, TLS or mutual TLS (docker-compose's healthcheck)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

SERVICES = ("identity", "records", "audit", "witness", "gateway")
CLIENTS = ("council-system", "operator")


def register(app: typer.Typer) -> None:
    """Add `tls make-local-ca` and `health` to the command."""
    tls = typer.Typer(help="Certificates for TLS and mutual TLS.", no_args_is_help=True)
    app.add_typer(tls, name="tls")

    @tls.command("make-local-ca")
    def make_local_ca_command(
        folder: Annotated[Path, typer.Argument(help="Where to write the CA and the certificates.")],
        host: Annotated[
            list[str] | None,
            typer.Option("--host", help="Another name or address every service is reached by (repeatable)."),
        ] = None,
        ca_key: Annotated[
            bool,
            typer.Option(
                "--ca-key/--no-ca-key", help="Also write the CA's key (ca.key), to issue more later."
            ),
        ] = True,
        owner: Annotated[
            str | None,
            typer.Option("--owner", help="UID:GID to give the files (when run as root for another user)."),
        ] = None,
    ) -> None:
        """Write a new local CA (ca.pem; its key ca.key, to be kept apart, unless --no-ca-key) and a
        certificate and key for each service (identity, records, audit, witness, gateway: reached
        by that name, localhost and 127.0.0.1) and for two clients (council-system, operator).
        Keys are 0600."""
        from contactpoint.platform.local_ca import make_local_ca

        if (folder / "ca.pem").exists():
            typer.echo(f"contactpoint: {folder / 'ca.pem'} exists; choose an empty folder", err=True)
            raise typer.Exit(2)
        extra = tuple(host or ())
        try:
            make_local_ca(
                folder,
                {s: (s, "localhost", "127.0.0.1", *extra) for s in SERVICES},
                CLIENTS,
                keep_ca_key=ca_key,
            )
        except OSError as exc:  # a file where the folder should be, no permission: one line
            typer.echo(f"contactpoint: cannot write to {folder}: {exc.strerror or exc}", err=True)
            raise typer.Exit(2) from None
        if owner:
            uid, _, gid = owner.partition(":")
            for path in [folder, *folder.iterdir()]:
                os.chown(path, int(uid), int(gid or uid))
        typer.echo(f"wrote ca.pem and {len(SERVICES) + len(CLIENTS)} certificates to {folder}")

    @app.command("health")
    def health(
        service: Annotated[
            str | None,
            typer.Argument(
                help="identity, records, audit, witness or gateway; default: the one whose LISTEN is set"
            ),
        ] = None,
    ) -> None:
        """Exit 0 when the service configured in this environment (its LISTEN address, on this host)
        answers its health check SERVING, over TLS with its own certificate when it serves TLS."""
        from contactpoint.cli.health import check_credentials, health_problem
        from contactpoint.platform.settings import ConfigurationError
        from contactpoint.platform.tls import tls_from_env

        env = dict(os.environ)
        if service is None:
            configured = [s for s in SERVICES if f"CONTACTPOINT_{s.upper()}_LISTEN" in env]
            service = configured[0] if len(configured) == 1 else ""
        if service not in SERVICES:
            typer.echo(
                "contactpoint: name the service (identity, records, audit, witness, gateway)", err=True
            )
            raise typer.Exit(2)
        variable = f"CONTACTPOINT_{service.upper()}_LISTEN"
        listen = env.get(variable, "")
        if not listen:
            # Found by probing: it asked 127.0.0.1:50051 (identity's port under `up`) for any
            # service, and said nothing.
            typer.echo(f"contactpoint: {variable} is not set: nothing to check", err=True)
            raise typer.Exit(2)
        try:
            tls_from_env(env, service)
        except ConfigurationError as exc:
            typer.echo(f"contactpoint: {exc}", err=True)  # the reason the service itself gives
            raise typer.Exit(2) from None
        host, _, port = listen.rpartition(":")
        target = listen if listen.startswith("unix") else f"{_local(host)}:{port}"
        problem = health_problem(target, check_credentials(env, service))
        if problem is not None:
            typer.echo(f"contactpoint: {service} at {target} is not SERVING: {problem}", err=True)
            raise typer.Exit(1)


def _local(host: str) -> str:
    """The address to reach a service listening on `host` from the same host."""
    return "localhost" if host in ("", "0.0.0.0", "::", "[::]") else host  # noqa: S104 — compared, not bound
