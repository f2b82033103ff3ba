"""Real services started in-process on port 0, for tests across one or more services."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import grpc

from contactpoint.platform import migrate
from contactpoint.platform.db import Database
from contactpoint.platform.server import RunningServer
from contactpoint.platform.service import start_built
from services.identity import domain as identity_domain
from services.identity.main import MIGRATIONS as IDENTITY_MIGRATIONS
from services.identity.main import build as build_identity
from services.identity.settings import IdentitySettings


def identity_settings(database_url: str, tmp_path: Path, **overrides: object) -> IdentitySettings:
    """Identity settings for a test."""
    values: dict[str, object] = {
        "database_url": database_url,
        "signing_key_file": tmp_path / "keys" / "identity.pem",
        "listen": "127.0.0.1:0",
        **overrides,
    }
    return IdentitySettings.model_validate(values)


@asynccontextmanager
async def running_identity(settings: IdentitySettings) -> AsyncIterator[tuple[RunningServer, str]]:
    """Identity serving on a free port: (server, target)."""
    migrate.upgrade("identity", IDENTITY_MIGRATIONS, settings.database_url)
    running = await start_built(await build_identity(settings), settings.listen)
    try:
        yield running, f"127.0.0.1:{running.port}"
    finally:
        await running.stop(0)


def create_user(database_url: str, username: str, *roles: str, org: str = "E08000003",
                password: str = "correct horse battery staple 9") -> identity_domain.NewUser:
    """Create a person straight in identity's database (as `admin create-user` does)."""
    db = Database(database_url)
    try:
        return db.run_sync(
            lambda c: identity_domain.create_user(
                c, username=username, organisation=org, roles=list(roles), password=password, issuer="ContactPoint"
            )
        )
    finally:
        db.dispose()


def create_service_account(database_url: str, name: str, role: str, org: str = "E08000003"
                           ) -> identity_domain.NewServiceAccount:
    """Create a machine account straight in identity's database."""
    db = Database(database_url)
    try:
        return db.run_sync(
            lambda c: identity_domain.create_service_account(c, name=name, organisation=org, role=role)
        )
    finally:
        db.dispose()


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    """Call metadata carrying `token`."""
    return (("authorization", f"Bearer {token}"),)


def code_of(exc: BaseException) -> grpc.StatusCode:
    """The status code of a failed call."""
    assert isinstance(exc, grpc.aio.AioRpcError), exc
    return exc.code()
