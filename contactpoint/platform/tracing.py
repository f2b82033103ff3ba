"""OpenTelemetry traces across the hops (gateway → records, gateway → audit, … ), off by default.

With `CONTACTPOINT_<SERVICE>_OTLP_ENDPOINT` set, a service gets its own tracer provider (service
name `contactpoint-<service>`) exporting to that OTLP/gRPC collector in batches; its server
starts a span for each RPC from the caller's `traceparent`, its channels to peers carry it on
(opentelemetry-instrumentation-grpc's interceptors), and the interceptor binds the trace id into
every log line of the request. Unset, no interceptor is installed and nothing is exported: the only
cost left is the log binding's look at the (invalid) current span.

Spans carry RPC names and status codes only, never a request's fields; an exception recorded on
a span (a refusal's) is exported by its type alone (`ExceptionTypesOnly`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.grpc import aio_client_interceptors, aio_server_interceptor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import Status, StatusCode

from contactpoint.platform.settings import ServiceSettings


def exporter_for(settings: ServiceSettings) -> SpanExporter:
    """Where spans go: the OTLP/gRPC collector at `settings.otlp_endpoint` (plaintext for an
    http:// endpoint, TLS otherwise)."""
    endpoint = settings.otlp_endpoint
    return OTLPSpanExporter(endpoint=endpoint, insecure=endpoint.startswith("http://"))


class ExceptionTypesOnly(SpanExporter):
    """Spans as `inner` exports them, with each recorded exception cut to its type. gRPC's
    instrumentation records the exception a refused RPC ends with, its message and its stack
    with every exception chained to it: an SQL statement, a library's words about a caller's
    token, the values a driver was given (found by probing: logs leave those out, traces did
    not)."""

    def __init__(self, inner: SpanExporter) -> None:
        self._inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self._inner.export([_types_only(span) for span in spans])

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._inner.force_flush(timeout_millis)


_KEPT_OF_AN_EXCEPTION = ("exception.type", "exception.escaped")


def _types_only(span: ReadableSpan) -> ReadableSpan:
    if not any(event.name == "exception" for event in span.events):
        return span
    events = [
        Event(
            "exception",
            {k: v for k, v in (event.attributes or {}).items() if k in _KEPT_OF_AN_EXCEPTION},
            event.timestamp,
        )
        if event.name == "exception"
        else event
        for event in span.events
    ]
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=span.attributes,
        events=events,
        links=span.links,
        kind=span.kind,
        status=span.status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


def span_processor(exporter: SpanExporter) -> SpanProcessor:
    """How spans reach the exporter: in batches, off the request path."""
    return BatchSpanProcessor(exporter)


class Tracing:
    """One service's tracing: a tracer provider when configured, else nothing at all."""

    def __init__(self, provider: TracerProvider | None = None) -> None:
        self.provider = provider

    @property
    def enabled(self) -> bool:
        return self.provider is not None

    def server_interceptors(self) -> list[Any]:
        """Interceptors that start a server span per RPC (to run before the service's own)."""
        return [aio_server_interceptor(tracer_provider=self.provider)] if self.provider else []  # type: ignore[no-untyped-call]

    def client_interceptors(self) -> Sequence[Any]:
        """Interceptors for channels to peers: a client span per call, `traceparent` sent on."""
        return aio_client_interceptors(tracer_provider=self.provider) if self.provider else []  # type: ignore[no-untyped-call]

    def close(self) -> None:
        """Export what is pending and stop."""
        if self.provider is not None:
            self.provider.shutdown()


def tracing_for(settings: ServiceSettings, service: str) -> Tracing:
    """The tracing `settings` ask for (none unless `otlp_endpoint` is set)."""
    if not settings.otlp_endpoint:
        return Tracing()
    provider = TracerProvider(resource=Resource.create({"service.name": f"contactpoint-{service}"}))
    provider.add_span_processor(span_processor(ExceptionTypesOnly(exporter_for(settings))))
    return Tracing(provider)


def mark_span_failed(code: grpc.StatusCode) -> None:
    """Record a refused or failed RPC on the span being served (when tracing is on): the status
    code and an error status, which the answer's own abort does not set."""
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attribute("rpc.grpc.status_code", code.value[0])
        span.set_status(Status(StatusCode.ERROR, code.name))


def current_trace_id() -> str | None:
    """The trace id of the span being served (32 hex digits), or None outside a trace."""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None
