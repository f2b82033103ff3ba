"""What an RPC logs: every line names the service (the interceptor clears the per-RPC context
on each call, but never that), and the suite's routine polls are quiet at the default level."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
import structlog
from grpc_health.v1 import health_pb2, health_pb2_grpc

from contactpoint.identity.v1 import identity_service_pb2 as identity_pb
from contactpoint.identity.v1 import identity_service_pb2_grpc as identity_grpc
from contactpoint.platform.logging import configure_logging, get_logger
from contactpoint.records.v1 import records_service_pb2 as pb
from tests.harness import identity_settings, platform_metadata, running_identity
from tests.platform.logs import json_lines, reset_logging  # noqa: F401 - a fixture
from tests.platform.probe import ECHO, STREAM, WATCH, running_probe


@pytest.mark.usefixtures("reset_logging")
async def test_every_line_names_the_service(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(level="info", fmt="json", service="records")
    request = pb.SubmitSourceRecordRequest(request_id="r-1")
    async with running_probe() as probe:
        await probe.typed(ECHO)(request, metadata=probe.metadata())
        assert len([a async for a in probe.typed(WATCH)(request, metadata=probe.metadata())]) == 3
        assert len([a async for a in probe.typed(STREAM)(iter([request]), metadata=probe.metadata())]) == 1
        with pytest.raises(grpc.aio.AioRpcError):
            await probe.typed(ECHO)(request)  # no token: refused
    # Outside any RPC, and after the per-RPC context was cleared, too.
    structlog.contextvars.clear_contextvars()
    get_logger("test").info("test.after_rpcs")

    events = json_lines(capsys.readouterr().err)
    rpc_events = [(e["rpc"], e["event"]) for e in events if e["event"].startswith("rpc.")]
    assert rpc_events == [
        ("Echo", "rpc.ok"),
        ("Watch", "rpc.ok"),
        ("Stream", "rpc.ok"),
        ("Echo", "rpc.refused"),
    ]
    assert events[-1]["event"] == "test.after_rpcs"
    assert all(e.get("service") == "records" for e in events), events
    # Each RPC's own context is still bound to its lines, and only to them.
    assert all(e["request_id"] for e in events if e["event"].startswith("rpc."))
    assert "request_id" not in events[-1]


@pytest.mark.usefixtures("reset_logging")
async def test_routine_polls_are_debug_and_everything_else_info(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every service asks identity for its keys and revocations twice a second, and health
    checks come as often: at the default level (info) an idle suite logs none of it."""
    configure_logging(level="info", fmt="json", service="identity")
    async with (
        running_identity(identity_settings(database_url, tmp_path)) as (_, target),
        grpc.aio.insecure_channel(target) as channel,
    ):
        identity = identity_grpc.IdentityServiceStub(channel)
        health = health_pb2_grpc.HealthStub(channel)
        platform = await platform_metadata(target, database_url, "records")
        capsys.readouterr()  # the platform account's token request is not a poll
        known = 0
        for _ in range(10):  # five seconds of one service's polling
            state = await identity.GetVerificationState(
                identity_pb.GetVerificationStateRequest(known_version=known), metadata=platform
            )
            known = state.version
            await health.Check(health_pb2.HealthCheckRequest())
        # A call that is not routine is logged at info as before.
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await identity.IssueServiceToken(
                identity_pb.IssueServiceTokenRequest(client_id="nobody", client_secret="wrong")
            )
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        info = json_lines(capsys.readouterr().err)

        # At debug, the polls are there.
        configure_logging(level="debug", fmt="json", service="identity")
        await identity.GetVerificationState(
            identity_pb.GetVerificationStateRequest(known_version=known), metadata=platform
        )
        debug = json_lines(capsys.readouterr().err)

    assert [(e["rpc"], e["event"], e["level"]) for e in info if e["event"].startswith("rpc.")] == [
        ("IssueServiceToken", "rpc.refused", "info")
    ]
    assert all(e["service"] == "identity" for e in info + debug)
    polls = [e for e in debug if e["event"] == "rpc.ok" and e["rpc"] == "GetVerificationState"]
    assert polls and all(e["level"] == "debug" for e in polls)
