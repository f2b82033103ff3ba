"""What every service's `main` does: settings → logging → migrations → server → wait for a signal."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import grpc
import uvloop

from contactpoint.platform import heap, migrate
from contactpoint.platform.logging import configure_logging, get_logger
from contactpoint.platform.metrics import Metrics, serve_metrics
from contactpoint.platform.readiness import CHECK_SECONDS, Check
from contactpoint.platform.server import RunningServer, ServiceSpec, run_until_signalled, start_server
from contactpoint.platform.settings import DatabaseSettings, ServiceSettings
from contactpoint.platform.tls import load_tls
from contactpoint.platform.token_verifier import TokenVerifier
from contactpoint.platform.tracing import Tracing

log = get_logger(__name__)


class Built:
    """A service assembled from its settings, ready to be started."""

    def __init__(
        self,
        services: Sequence[ServiceSpec],
        verifier: TokenVerifier | None,
        on_stop: Sequence[Callable[[], Awaitable[None]]] = (),
        on_drain: Sequence[Callable[[], Awaitable[None]]] = (),
        on_last_call: Sequence[Callable[[], None]] = (),
        metrics: Metrics | None = None,
        tracing: Tracing | None = None,
        checks: Sequence[Check] = (),
    ) -> None:
        self.services = services
        # The service's metrics (the interceptor adds the RPCs'); served when configured.
        self.metrics = metrics or Metrics()
        # Its tracing (off unless configured): the server's spans, exported until it stops.
        self.tracing = tracing or Tracing()
        self.verifier = verifier
        self.on_stop = list(on_stop)
        # Run when shutdown begins, before in-flight calls are waited for (e.g. end open streams).
        self.on_drain = list(on_drain)
        # Called once most of the shutdown's grace has gone (`RunningServer.on_last_call`).
        self.on_last_call = list(on_last_call)
        # What must pass for its health to say SERVING, asked every few seconds (its database).
        self.checks = list(checks)
        self.health_interval = CHECK_SECONDS


async def start_built(
    built: Built,
    listen: str,
    credentials: grpc.ServerCredentials | None = None,
    *,
    settings: ServiceSettings | None = None,
) -> RunningServer:
    """Start a built service: first token verification state, then the server (over TLS with
    `credentials`), and its metrics endpoint when `settings` asks for one."""
    if built.verifier is not None:
        try:
            # Have keys before reporting SERVING when identity is already up; else the poller catches up.
            await built.verifier.refresh()
        except Exception as exc:  # identity not up yet: requests fail closed until the first poll succeeds
            log.info("auth.state_not_yet_available", error=type(exc).__name__)
        built.verifier.start()
    stops = list(built.on_stop)
    if built.verifier is not None:
        stops.insert(0, built.verifier.stop)
    stops.append(lambda: asyncio.to_thread(built.tracing.close))
    running = await start_server(
        built.services,
        listen=listen,
        verifier=built.verifier,
        on_stop=stops,
        credentials=credentials,
        metrics=built.metrics,
        tracing=built.tracing,
        checks=built.checks,
        health_interval=built.health_interval,
    )
    running.on_drain.extend(built.on_drain)
    running.on_last_call.extend(built.on_last_call)
    try:
        endpoint = serve_metrics(built.metrics, settings) if settings is not None else None
    except BaseException:
        await running.stop(0)
        raise
    if endpoint is not None:
        running.on_stop.append(lambda: asyncio.to_thread(endpoint.close))
        running.metrics_port = endpoint.port
        log.info("service.metrics", port=endpoint.port)
    return running


def run_service(
    name: str,
    settings: ServiceSettings,
    migrations_dir: Path | None,
    build: Callable[[], Awaitable[Built]],
) -> None:
    """Run one service in this process until SIGTERM/SIGINT."""
    configure_logging(level=settings.log_level, fmt=settings.log_format, service=name)
    # TLS files are checked before anything else: a broken one stops the service with its reason.
    credentials = load_tls(settings).server_credentials()
    if isinstance(settings, DatabaseSettings) and migrations_dir is not None and settings.migrate_on_start:
        migrate.upgrade(name, migrations_dir, settings.database_url)

    async def main() -> None:
        built = await build()
        running = await start_built(built, settings.listen, credentials, settings=settings)
        heap.settle()  # what start-up built lives as long as the process: out of the collector's walks
        await run_until_signalled(running, grace=settings.shutdown_grace_seconds, name=name)

    if settings.event_loop == "uvloop":
        uvloop.run(main())
    else:
        asyncio.run(main())
