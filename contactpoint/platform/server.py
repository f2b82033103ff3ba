"""The server factory: grpc.aio with health checking, reflection, the service interceptor and
graceful shutdown on SIGTERM/SIGINT. `create_server` builds; `serve` runs until a signal."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf.descriptor import ServiceDescriptor
from grpc_health.v1 import health, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from contactpoint.platform.auth import Access
from contactpoint.platform.calls import Calls
from contactpoint.platform.interceptor import RefusalHook, ServiceInterceptor
from contactpoint.platform.logging import get_logger
from contactpoint.platform.metrics import Metrics
from contactpoint.platform.readiness import CHECK_SECONDS, Check, Readiness
from contactpoint.platform.token_verifier import TokenVerifier
from contactpoint.platform.tracing import Tracing

log = get_logger(__name__)

# The share of a shutdown's grace after which streams still open are asked to end where they can
# (`RunningServer.on_last_call`): a stream of a few seconds still finishes within a 10 s grace,
# and a longer one ends after the batch it is storing rather than cut off in a write.
LAST_CALL_SHARE = 0.7
# How long a stopping server gives the last answers to leave once no call is under way, before it
# closes its connections (`calls`).
FLUSH_SECONDS = 0.2

SERVER_OPTIONS = [
    ("grpc.max_receive_message_length", 4 * 1024 * 1024),
    ("grpc.so_reuseport", 0),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    # Connections that do not finish their TLS and HTTP/2 handshake within 10 s are closed, and
    # ones with no call for a minute (clients connect again as they need): found by probing,
    # 20,000 silent connections took every file descriptor of the gateway for two minutes, and new
    # clients could not connect.
    ("grpc.server_handshake_timeout_ms", 10_000),
    ("grpc.max_connection_idle_ms", 60_000),
    # No cap on calls at once, on a connection or in all: a cap of 256 a connection failed a
    # peer multiplexing more (the gateway's one channel to records or audit under load), and one
    # on the whole service let a flood of calls that never send their message take every slot,
    # practitioners then refused instead of served. A proxy in front must time such calls out
    # (docs/operations.md).
]


@dataclass(frozen=True)
class ServiceSpec:
    """One gRPC service to host: its servicer, the generated `add_…_to_server`, its descriptor and
    the access rule of each of its RPCs (by method name)."""

    servicer: Any
    add_to_server: Callable[[Any, grpc.aio.Server], None]
    descriptor: ServiceDescriptor
    access: Mapping[str, Access]
    on_refused: RefusalHook | None = None

    def full_access(self) -> dict[str, Access]:
        """Access rules by full method path; every RPC in the descriptor must have one."""
        missing = [m.name for m in self.descriptor.methods if m.name not in self.access]
        if missing:
            raise RuntimeError(f"{self.descriptor.full_name}: no access rule for {missing}")
        return {
            f"/{self.descriptor.full_name}/{m.name}": self.access[m.name] for m in self.descriptor.methods
        }


@dataclass
class RunningServer:
    """A started server, the port it is bound to and its health servicer."""

    server: grpc.aio.Server
    port: int
    health: HealthServicer
    services: Sequence[ServiceSpec]
    on_stop: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    # Run as shutdown begins, before in-flight RPCs are waited for (long-lived streams end here).
    on_drain: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    # Called once most of the grace has gone (`LAST_CALL_SHARE`), if RPCs are still in flight:
    # streams that may run on (a council's feed) end where they can, before the grace cuts them off.
    on_last_call: list[Callable[[], None]] = field(default_factory=list)
    # Where the service's Prometheus metrics are served (None: not served).
    metrics_port: int | None = None
    # The service's own calls under way (the interceptor's), waited for by `stop`.
    calls: Calls = field(default_factory=Calls)

    async def stop(self, grace: float) -> None:
        """Report NOT_SERVING, end long-lived streams, let in-flight RPCs finish within `grace`
        seconds (with a last call at `LAST_CALL_SHARE` of it), then clean up."""
        await self.health.enter_graceful_shutdown()
        for drain in self.on_drain:
            await drain()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        last_calls = [loop.call_later(grace * LAST_CALL_SHARE, hook) for hook in self.on_last_call]
        try:
            # New calls are refused (UNAVAILABLE), those under way answered, and their answers
            # given a moment to leave: gRPC's stop closes the connections as soon as the last
            # handler returns, and an answer not yet written was lost (`calls`).
            self.calls.close()
            if await self.calls.idle(grace):
                await asyncio.sleep(FLUSH_SECONDS)
            await self.server.stop(max(deadline - loop.time(), FLUSH_SECONDS))
        finally:
            for handle in last_calls:
                handle.cancel()
        for hook in self.on_stop:
            await hook()


async def start_server(
    services: Sequence[ServiceSpec],
    *,
    listen: str,
    verifier: TokenVerifier | None,
    on_stop: Sequence[Callable[[], Awaitable[None]]] = (),
    credentials: grpc.ServerCredentials | None = None,
    metrics: Metrics | None = None,
    tracing: Tracing | None = None,
    checks: Sequence[Check] = (),
    health_interval: float = CHECK_SECONDS,
) -> RunningServer:
    """Build, bind and start a server hosting `services` (plus health and reflection), over TLS
    with `credentials`, else plaintext. Its health is SERVING once `verifier` has a state and
    while every one of `checks` passes (`Readiness`)."""
    access: dict[str, Access] = {}
    hooks: dict[str, RefusalHook] = {}
    for spec in services:
        rules = spec.full_access()
        access.update(rules)
        if spec.on_refused is not None:
            hooks.update(dict.fromkeys(rules, spec.on_refused))
    interceptor = ServiceInterceptor(access, verifier, hooks, metrics=metrics or Metrics())
    # Tracing's interceptor (when on) runs first, so the service's own sees the request's span.
    traced = tracing.server_interceptors() if tracing is not None else []
    server = grpc.aio.server(interceptors=[*traced, interceptor], options=SERVER_OPTIONS)
    health_servicer = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for spec in services:
        spec.add_to_server(spec.servicer, server)
    names = [spec.descriptor.full_name for spec in services]
    reflection.enable_server_reflection([*names, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    port = server.add_secure_port(listen, credentials) if credentials else server.add_insecure_port(listen)
    if port == 0:
        raise OSError(f"cannot listen on {listen}")
    await server.start()
    everything = ["", *names]
    readiness = Readiness(
        health_servicer, everything, port=port, verifier=verifier, checks=checks, interval=health_interval
    )
    await readiness.start()
    stops = [readiness.stop, *on_stop]
    return RunningServer(server, port, health_servicer, services, stops, calls=interceptor.calls)


async def run_until_signalled(running: RunningServer, *, grace: float, name: str) -> None:
    """Serve until SIGTERM or SIGINT, then shut down gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # Listening, and SERVING or not as its health says: "service.serving" is logged when it is.
    log.info("service.listening", service=name, port=running.port)
    await stop.wait()
    log.info("service.stopping", service=name, grace_seconds=grace)
    await running.stop(grace)
    log.info("service.stopped", service=name)
