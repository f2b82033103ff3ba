"""Real services started in-process on port 0, for tests across one or more services."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import grpc

from contactpoint.platform import migrate
from contactpoint.platform.db import Database
from contactpoint.platform.server import RunningServer
from contactpoint.platform.service import Built, start_built
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
async def running_service(
    name: str, migrations: Path | None, build: Callable[[Any], Awaitable[Built]], settings: Any
) -> AsyncIterator[tuple[RunningServer, str]]:
    """Any service (its `main.build`) migrated and serving on a free port: (server, target)."""
    if migrations is not None:
        migrate.upgrade(name, migrations, settings.database_url)
    running = await start_built(await build(settings), settings.listen)
    try:
        yield running, f"127.0.0.1:{running.port}"
    finally:
        await running.stop(0)


def running_identity(settings: IdentitySettings) -> AbstractAsyncContextManager[tuple[RunningServer, str]]:
    """Identity serving on a free port: (server, target)."""
    return running_service("identity", IDENTITY_MIGRATIONS, build_identity, settings)


def create_user(
    database_url: str,
    username: str,
    *roles: str,
    org: str = "E08000003",
    password: str = "correct horse battery staple 9",
) -> identity_domain.NewUser:
    """Create a person straight in identity's database (as `admin create-user` does)."""
    db = Database(database_url)
    try:
        return db.run_sync(
            lambda c: identity_domain.create_user(
                c,
                username=username,
                organisation=org,
                roles=list(roles),
                password=password,
                issuer="ContactPoint",
            )
        )
    finally:
        db.dispose()


def create_service_account(
    database_url: str, name: str, role: str, org: str = "E08000003"
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
