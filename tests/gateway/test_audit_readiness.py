"""A gateway says it serves only while its audit service does: no request can be answered without
the audit log (audit first), so none should be sent to it. Found by probing: a gateway whose audit
service could not be reached reported SERVING on grpc.health.v1 and failed every read UNAVAILABLE;
a load balancer would have kept sending people to it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.conftest import DatabaseFactory
from tests.gateway.test_servicer import World, _world
from tests.harness import eventually


@pytest.fixture
async def world(databases: DatabaseFactory, tmp_path: Path) -> AsyncIterator[World]:
    async with AsyncExitStack() as stack:
        yield await _world(stack, databases, tmp_path)


async def _status(world: World) -> int:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{world.gateway_server.port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        reply = await stub.Check(
            health_pb2.HealthCheckRequest(service="contactpoint.gateway.v1.GatewayService")
        )
    return int(reply.status)


async def test_a_gateway_without_its_audit_service_is_not_serving(world: World) -> None:
    async def serving() -> bool:
        return await _status(world) == health_pb2.HealthCheckResponse.SERVING

    await eventually(serving, within=10.0)
    await world.audit_server.server.stop(grace=None)

    async def not_serving() -> bool:
        return await _status(world) == health_pb2.HealthCheckResponse.NOT_SERVING

    # Within two checks (a moment's stall is ridden out).
    await eventually(not_serving, within=15.0)
