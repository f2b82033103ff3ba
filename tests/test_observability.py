"""Issue 8: each service serves Prometheus metrics on its own port, and one GetChild is one trace
across the gateway, records and audit (an in-memory span exporter sees it), with its trace id in
the request's log lines; with TLS on, the metrics port is HTTPS and asks for a client certificate."""

from __future__ import annotations

import asyncio
import ssl
import urllib.error
import urllib.request
from contextlib import AsyncExitStack
from pathlib import Path

import grpc
import pytest
import structlog
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

from contactpoint.common.v1 import child_pb2
from contactpoint.gateway.v1 import gateway_service_pb2 as pb
from contactpoint.platform import tracing
from contactpoint.platform.logging import configure_logging
from contactpoint.platform.metrics import Metrics, serve_metrics
from contactpoint.platform.settings import ServiceSettings
from tests.conftest import DatabaseFactory
from tests.gateway.test_servicer import _world
from tests.harness import bearer, create_user
from tests.tls_pki import make_pki

SAFEGUARDING = child_pb2.ACCESS_PURPOSE_SAFEGUARDING


def scrape(port: int | None) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a metrics endpoint: (name, sorted labels) → value."""
    assert port is not None, "metrics are not served"
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_and_one_trace_across_three_services(
    databases: DatabaseFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    exporter = InMemorySpanExporter()
    monkeypatch.setattr(tracing, "exporter_for", lambda _settings: exporter)
    monkeypatch.setattr(tracing, "span_processor", SimpleSpanProcessor)
    everywhere = {"otlp_endpoint": "http://collector.invalid:4317", "metrics_listen": "127.0.0.1:0"}
    async with AsyncExitStack() as stack:
        world = await _world(stack, databases, tmp_path, everywhere=everywhere, rate_per_minute=4)
        cp = await world.submit("obs-1")
        user = create_user(world.identity_url, "olive.observer", "practitioner")
        token = await world.login("olive.observer", user.totp_secret)
        exporter.clear()
        # Info lines, whatever an earlier test in this process configured; captured with the
        # request's bound context, as every service's renderer gets it.
        configure_logging(level="info")
        with structlog.testing.capture_logs([structlog.contextvars.merge_contextvars]) as lines:
            await world.gateway.GetChild(
                pb.GetChildRequest(contactpoint_id=cp, purpose=SAFEGUARDING, justification="visit"),
                metadata=bearer(token),
            )
        spans = exporter.get_finished_spans()
        [read] = [s for s in spans if s.name.endswith("GatewayService/GetChild")]
        trace_id = read.context.trace_id
        in_trace = [s for s in spans if s.context.trace_id == trace_id]
        services = {s.resource.attributes["service.name"] for s in in_trace}
        assert {"contactpoint-gateway", "contactpoint-records", "contactpoint-audit"} <= services
        served = {s.name.rsplit("/", 1)[-1] for s in in_trace if s.kind.name == "SERVER"}
        assert {"GetChild", "GetChildRecord"} <= served and served & {"AppendEvent", "AppendEvents"}
        # The trace id is in the request's log lines, in every service it crossed.
        hex_id = format(trace_id, "032x")
        traced = {line["rpc"] for line in lines if line.get("trace_id") == hex_id and "rpc" in line}
        assert {"GetChild", "GetChildRecord"} <= traced and traced & {"AppendEvent", "AppendEvents"}, lines

        # Over the rate: refused, and counted.
        refused = 0
        for _ in range(6):
            try:
                await world.gateway.GetChild(
                    pb.GetChildRequest(contactpoint_id=cp, purpose=SAFEGUARDING, justification="visit"),
                    metadata=bearer(token),
                )
            except grpc.aio.AioRpcError as exc:
                assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                refused += 1
        assert refused >= 1

        # A refusal is an error on its server span, with its code. The server ends its span just
        # after the client has the answer, so the last one may take a moment to arrive.
        def refusals() -> list[ReadableSpan]:
            return [
                s
                for s in exporter.get_finished_spans()
                if s.name.endswith("GatewayService/GetChild") and s.status.status_code.name == "ERROR"
            ]

        for _ in range(250):  # up to 5 s
            if len(refusals()) >= refused:
                break
            await asyncio.sleep(0.02)
        failed = refusals()
        assert len(failed) == refused
        assert {s.attributes.get("rpc.grpc.status_code") for s in failed} == {8}  # RESOURCE_EXHAUSTED
        # A refusal's exception is exported by its type alone: no message, no stack with the
        # exceptions chained to it (found by probing: an SQL statement, and a library's message
        # about a caller's token, reached the collector that logs never show).
        events = [e for s in failed for e in s.events if e.name == "exception"]
        assert events, "the refusals' exceptions were not recorded"
        assert all(dict(e.attributes or {}).keys() <= {"exception.type", "exception.escaped"} for e in events)

        gateway = scrape(world.servers["gateway"].metrics_port)
        assert value(gateway, "contactpoint_rpc_requests_total", method="GetChild", code="OK") >= 1
        assert (
            value(gateway, "contactpoint_rpc_requests_total", method="GetChild", code="RESOURCE_EXHAUSTED")
            == refused
        )
        assert value(gateway, "contactpoint_gateway_limit_refusals_total", limit="rate") == refused
        assert value(gateway, "contactpoint_token_verifications_total", result="valid") >= 1
        assert value(gateway, "contactpoint_rpc_duration_seconds_count", method="GetChild") >= 1 + refused
        assert ("contactpoint_rpc_in_flight", ()) in gateway
        assert any(name == "contactpoint_db_connections_checked_out" for name, _ in gateway)

        records = scrape(world.servers["records"].metrics_port)
        assert value(records, "contactpoint_rpc_requests_total", method="GetChildRecord", code="OK") >= 1
        assert value(records, "contactpoint_rpc_requests_total", method="SubmitSourceRecord", code="OK") >= 1
        assert ("contactpoint_records_review_queue", ()) in records

        audit = scrape(world.servers["audit"].metrics_port)
        assert value(audit, "contactpoint_audit_tree_size") >= 2
        assert value(audit, "contactpoint_audit_batch_events_count") >= 1

        identity = scrape(world.servers["identity"].metrics_port)
        assert value(identity, "contactpoint_rpc_requests_total", method="IssueServiceToken", code="OK") >= 1


async def test_without_an_endpoint_nothing_is_traced_or_served(
    databases: DatabaseFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Off by default: no exporter is made, no interceptor installed, no metrics port opened."""
    made: list[object] = []
    monkeypatch.setattr(tracing, "exporter_for", lambda settings: made.append(settings))
    async with AsyncExitStack() as stack:
        world = await _world(stack, databases, tmp_path)
        await world.submit("quiet-1")
        assert made == []
        assert all(server.metrics_port is None for server in world.servers.values())


def test_with_tls_the_metrics_port_is_https_with_client_certificates(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    settings = ServiceSettings.model_validate({**pki.settings(), "metrics_listen": "127.0.0.1:0"})
    metrics = Metrics()
    metrics.in_flight.set(0)
    endpoint = serve_metrics(metrics, settings)
    assert endpoint is not None
    try:
        url = f"https://localhost:{endpoint.port}/metrics"
        with pytest.raises((urllib.error.URLError, ConnectionError)):  # plaintext is refused
            urllib.request.urlopen(f"http://127.0.0.1:{endpoint.port}/metrics", timeout=5)
        anonymous = ssl.create_default_context(cafile=str(pki.ca))
        with pytest.raises((urllib.error.URLError, ssl.SSLError, ConnectionError)):  # no client certificate
            urllib.request.urlopen(url, timeout=5, context=anonymous)
        client = ssl.create_default_context(cafile=str(pki.ca))
        client.load_cert_chain(str(pki.client_cert), str(pki.client_key))
        with urllib.request.urlopen(url, timeout=5, context=client) as resp:
            assert b"contactpoint_rpc_in_flight" in resp.read()
    finally:
        endpoint.close()
